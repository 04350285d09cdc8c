# ruff: noqa: F704  (a notebook cell may await at its top level: Jupyter runs it on its loop)
# %% [markdown]
# # 09 · From our event loop to asyncio
#
# Lesson 05 built an event loop from scratch: a selector, Futures, and Tasks that drive
# `async def` coroutines. `asyncio`, in the standard library, is the same design, grown up.
# We start from our loop and see what asyncio renames and what it adds.
#
# **After this lesson you can**
# * step an asyncio coroutine by hand, and say why `asyncio.run()` fails in Jupyter while a
#   top-level `await` works;
# * fetch pages with `asyncio.gather`, at most `limit` at once with a `Semaphore`;
# * handle failures, timeouts and cancellation with `TaskGroup` and `asyncio.timeout`, beside
#   our loop and gevent;
# * keep a fast producer from flooding memory (bounded queues, `await writer.drain()`);
# * find a call that blocks the loop (a timeline, debug mode) and move it to a thread;
# * compare echo servers on asyncio, uvloop, selectors and gevent by server CPU per round
#   trip, and explain it by the system calls each makes;
# * explain how a library with a synchronous core serves `await` callers with greenlets.
#
# **Time:** about 120 minutes: 90 reading and running, 30 exercises; sittings of 25 + 30 + 25 + 40.

# %%
import asyncio
import inspect
import subprocess
import sys
import types

import labkit
from labkit.eventloop import futures

# %% [markdown]
# ## The same protocol underneath
#
# In lesson 05 we stepped a coroutine by hand: `send(None)` runs it to its first `await`, and
# what comes up is the Future it waits for. Here is that again, as one function, then the very
# same function on an asyncio Future. asyncio's Futures belong to a loop; we make a loop only to
# make one, and never run it.

# %%
async def wants_answer(future):
    return await future

def step_by_hand(future):
    """Drive a coroutine as a Task does: run it to its first wait, set the result, resume."""
    coro = wants_answer(future)
    came_up = coro.send(None)              # run until it waits: what does it wait for?
    future.set_result(42)                  # the event it waited for happens
    try:
        coro.send(None)                    # resume it: the await returns
    except StopIteration as done:
        return came_up, done.value

ours = futures.Future()
loop = asyncio.new_event_loop()
theirs = loop.create_future()
for name, future in (("lesson 05", ours), ("asyncio", theirs)):
    came_up, result = step_by_hand(future)
    print(f"{name:>9}: up came a {type(came_up).__module__}.{type(came_up).__name__}, "
          f"then the result {result}")
    labkit.claim(f"{name}: what came up was the Future itself, and the await returned 42",
                 came_up is future and result == 42)
loop.close()

# %% [markdown]
# The same protocol: a coroutine is a generator underneath, `await x` runs `x.__await__()` and
# passes its yields up, and a Future yields *itself*: "resume me when I am done". asyncio's
# Future is written in C for speed, but it keeps a pure-Python twin; here are the two
# `__await__`s, lesson 05's first:

# %%
labkit.show(futures.Future.__await__)

# %%
labkit.show(asyncio.futures._PyFuture.__await__)

# %% [markdown]
# Whoever drives the coroutine receives that Future. Lesson 05's `Task.step` adds a done
# callback to it that resumes the coroutine; asyncio's Task does the same (its private
# `__step`, in `asyncio/tasks.py`):

# %%
labkit.show(futures.Task.step)

# %%
task_source = inspect.getsource(asyncio.tasks._PyTask)
labkit.claim("asyncio's Task also runs its coroutine with coro.send(None) ...",
             "coro.send(None)" in task_source)
_ = labkit.claim("... and adds a done callback to the Future that comes up",
                 "result.add_done_callback(" in task_source)

# %% [markdown]
# One difference matters: what the Task accepts. It takes two kinds of thing from a
# coroutine. One is a *future-like* object: it has an `_asyncio_future_blocking` attribute,
# as asyncio's Futures do, and belongs to the Task's loop. The other is a bare `yield`, which
# sends up `None`: "run me again on the next pass of the loop". `asyncio.sleep(0)` is exactly
# that:

# %%
labkit.show(asyncio.tasks.__sleep0)

# %% [markdown]
# Anything else, the Task refuses. Lesson 05's Future is not future-like to asyncio: our loop
# sets it, and asyncio knows nothing of our loop. A top-level `await` (next section) runs a
# coroutine as an asyncio Task, so we can try both:

# %%
@types.coroutine
def bare_yield():
    yield                                   # up comes None, as in asyncio.sleep(0)

async def awaits(awaitable):
    return await awaitable

refused = {}
for name, make in (("a bare yield", bare_yield), ("lesson 05's Future", futures.Future)):
    try:
        await awaits(make())
        refused[name] = ""
    except RuntimeError as err:
        refused[name] = str(err).split(":")[0]
print(refused)
labkit.claim("asyncio's Task took the bare yield and refused lesson 05's Future",
             refused == {"a bare yield": "", "lesson 05's Future": "Task got bad yield"})
_ = labkit.claim("its step looks for _asyncio_future_blocking, then for a bare yield (None)",
                 "_asyncio_future_blocking" in task_source and "result is None" in task_source)

# %% [markdown]
# ### `yield from` → `await` → `__await__`
#
# Anything with an `__await__` method that returns an iterator can be awaited. Written as a
# generator, `__await__` can delegate with `yield from` to an asyncio Future, and that is
# exactly what `await future` does inside an `async def`. Here is an awaitable of our own,
# written the generator way, awaited by asyncio:

# %%
class Reply:
    """An awaitable: the value arrives `delay` seconds later (a timer sets a Future)."""

    def __init__(self, delay, value):
        self.delay, self.value = delay, value

    def __await__(self):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_later(self.delay, future.set_result, self.value)
        return (yield from future)          # what `await future` means, spelled out

got = await Reply(0.01, "hello from a timer")
print(got)
_ = labkit.claim("asyncio ran our generator-based awaitable to its end",
                 got == "hello from a timer")

# %% [markdown]
# ## asyncio in Jupyter: `await` at the top, never `asyncio.run()`
#
# A script starts asyncio with `asyncio.run(main())`: it makes a loop, runs `main()` to its
# end on it, and closes the loop. In Jupyter this fails, and it is usually the first asyncio
# error a student meets: the kernel itself runs on an asyncio loop, in this very thread, and
# one thread runs one loop at a time.

# %%
async def main():
    await asyncio.sleep(0.01)
    return "done"

coro = main()
try:
    asyncio.run(coro)
except RuntimeError as err:
    print(f"RuntimeError: {err}")
    coro.close()                            # never started: close it, or Python warns
kernel_loop = asyncio.get_running_loop()
_ = labkit.claim("this cell already runs inside a loop (the kernel's)", kernel_loop.is_running())

# %% [markdown]
# The kernel's loop is running, so a cell can simply `await`: IPython sees the top-level
# `await` and runs the cell as a coroutine on that loop. The same `main()` in a plain script,
# where no loop runs yet, works with `asyncio.run`:

# %%
print("top-level await:", await main())
script = "import asyncio\nasync def main():\n    return 'done'\nprint(asyncio.run(main()))"
print(script)
ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
_ = labkit.claim("in a script, asyncio.run(main()) returned 'done'",
                 ran.returncode == 0 and ran.stdout.strip() == "done", measured=ran.stderr)

# %% [markdown]
# ### What asyncio renames, and what it adds
#
# | lesson 05 (`labkit.eventloop.futures`) | asyncio |
# |---|---|
# | `Loop` (a selector, a ready queue, timers) | the event loop (`asyncio.get_running_loop()`) |
# | `Future`, `Task`, `loop.create_task` | `asyncio.Future`, `asyncio.Task`, `asyncio.create_task` |
# | `loop.sleep(s)`, `loop.wait_for(sock, event)` | `asyncio.sleep(s)`, `loop.add_reader`, streams |
# | `gather(loop, coros)` | `asyncio.gather`, `asyncio.TaskGroup` |
# | `loop.run_until_complete(main())` | `asyncio.run(main())` |
#
# What it adds is what the rest of this lesson uses: libraries built on it (httpx, an HTTP
# client), limits (`Semaphore`), errors and cancellation that reach the right task, timeouts,
# bounded queues and flow control, threads for blocking calls, a debug mode, and a choice of
# loop.
#
# ## The page fetcher of lesson 04, on asyncio
#
# Lesson 04 fetched pages from the slow `latency_http` server one after another, with threads
# and with gevent, through one harness in which only `download_many` differed. The asyncio
# strategies keep those names and that shape. Each request is `fetch_one_async`: lesson 04's
# `fetch_one` (the same Span, status and SHA-256), awaited on `httpx.AsyncClient`, a
# well-kept HTTP client for asyncio, instead of `urlopen`:

# %%
import hashlib
from functools import partial

from labkit import asyncio_lab
from labkit.clients import pages
from labkit.runs import fetch_with
from labkit.timeline import compare_timelines, max_concurrent, plot_timeline

labkit.show(pages.fetch_one_async)

# %% [markdown]
# Three ways to await many of them: one after another (`await` in a loop), all at once
# (`asyncio.gather` wraps each coroutine in a Task and waits for all), and all at once but at
# most `limit` in flight (an `asyncio.Semaphore`: `async with semaphore:` waits while `limit`
# others hold it). The time a request spends waiting for its turn is drawn orange, as *queued*.

# %%
labkit.show(pages.download_many_gather)

# %%
labkit.show(pages.download_many_limited)

# %% [markdown]
# Ten pages of 0.2 s each, the three ways (`pages.timed_run_async` is lesson 04's `timed_run`
# for coroutines). The loop's run is awaited right in the cell. gather and the Semaphore run
# in `asyncio_lab.Rounds`, a `labkit.Timing`: they take turns, up to five rounds, and each
# claim about time is judged on each way's fastest run, since a busy machine only adds time.
# A Timing calls plain functions, so each of its runs gets a fresh loop in a worker thread
# (`run_in_new_loop`, as in lesson 04's harness).

# %%
PAGES = labkit.DATA / "pages"
EXPECTED = hashlib.sha256((PAGES / "page-48k.html").read_bytes()).hexdigest()
server = labkit.serve("latency_http", root=PAGES, delay=0.2)

def page_url(i, base=f"http://{server.host}:{server.port}", **query):
    params = "&".join(f"{k}={v}" for k, v in {"id": i, **query}.items())
    return f"{base}/pages/page-48k.html?{params}"

N, LATENCY, LIMIT = 10, 0.2, 3
urls = [page_url(i, delay=LATENCY) for i in range(1, N + 1)]
limited = partial(pages.download_many_limited, limit=LIMIT)
one_by_one = await pages.timed_run_async(pages.download_many_await, urls)
on_own_loop = partial(pages.run_in_new_loop, pages.timed_run_async)
together = asyncio_lab.Rounds(
    {"gather": partial(on_own_loop, pages.download_many_gather, urls),
     f"Semaphore({LIMIT})": partial(on_own_loop, limited, urls, "limited")},
    measure=lambda run: {"elapsed": run.elapsed}, rounds=5, seconds=12)
runs = {"await in a loop": one_by_one, **together.last}
labkit.claim(f"all {3 * N} downloads complete and verified (SHA-256)",
             all(r.statuses == {200: N} and all(p.sha256 == EXPECTED for p in r.results)
                 for r in runs.values()), measured=str({k: r.statuses for k, r in runs.items()}))
at_once = {name: max_concurrent(run.spans) for name, run in runs.items()}
print("requests in flight at once, at most:", at_once)
_ = labkit.claim(f"one at a time in a loop, all {N} with gather, {LIMIT} with the Semaphore",
                 list(at_once.values()) == [1, N, LIMIT])

# %%
rounds = -(-N // LIMIT)                     # 10 requests, 3 at a time: 4 rounds
def semaphore(t):
    return t[f"Semaphore({LIMIT})", "elapsed"]    # its fastest run

together.claim("gather took under two latencies", lambda t: t["gather", "elapsed"],
               below=2 * LATENCY)
together.claim(f"the Semaphore took at least {rounds} latencies ...", semaphore,
               above=rounds * LATENCY)
together.claim(f"... and under 0.6 times the loop's time ({rounds} latencies, not {N})",
               lambda t: semaphore(t) / one_by_one.elapsed, below=0.6)
compare_timelines({name: run.spans for name, run in runs.items()})

# %% [markdown]
# `await` alone overlaps nothing: a coroutine that awaits each request in turn waits for each
# in turn, exactly like blocking code, so it takes at least the sum of the latencies. The
# overlap comes from *tasks*: `gather` makes one per request, and the loop runs whichever can
# run. The Semaphore's run is a staircase of `LIMIT`-wide steps: the orange bars are requests
# waiting for a place.
#
# Now next to lesson 04's threads and gevent: the same ten URLs, the same `fetch_one`, only
# `download_many` differs (`fetch_with` runs gevent in a patched child process, as in
# lesson 04, and asyncio on a loop of its own in a worker thread):

# %%
side_by_side = {strategy: fetch_with(strategy, urls)
                for strategy in ("threads", "gevent", "asyncio")}
labkit.claim("every page verified, in every strategy",
             all(r.statuses == {200: N} and all(p.sha256 == EXPECTED for p in r.results)
                 for r in side_by_side.values()))
in_flight = {strategy: max_concurrent(run.spans) for strategy, run in side_by_side.items()}
labkit.claim(f"threads, gevent and asyncio: all {N} requests in flight together",
             list(in_flight.values()) == [N] * 3, measured=str(in_flight))
compare_timelines({name: run.spans for name, run in side_by_side.items()})

# %% [markdown]
# ## Sitting 2 of 4 (about 30 minutes) — a good place to stop
#
# The second of this lesson's four sittings starts here. Coming back to a fresh kernel?
# Select the cell below and choose **Run → Run All Above Selected Cell** first: this part
# uses the imports and servers of the cells above.

# %% [markdown]
# ## Errors, timeouts and cancellation: our loop, gevent and asyncio side by side
#
# Real requests fail and some never end. Three questions for each loop: when one task fails,
# does the failure reach whoever waits for it? What happens to the tasks still running? And
# how do we stop a task that takes too long?
#
# Lesson 05's Future can fail too: `set_exception` makes the `await` raise that exception,
# and `cancel` makes it raise `CancelledError`, where the task waits, so its `with` and
# `finally` blocks still run. A `TaskReport` (from `labkit.asyncio_lab`) notes how each task
# ended. Here, each "request" is a Future that a timer answers, or fails:

# %%
from labkit.asyncio_lab import TaskReport, plot_outcomes

async def request(loop, report, name, seconds, fails=False):
    """A stand-in request on our loop: its reply is a Future that a timer sets, or fails."""
    reply = futures.Future()

    def answer(_):
        if not reply.done():                   # cancelled meanwhile: nothing to answer
            if fails:
                reply.set_exception(RuntimeError(f"{name} failed on purpose"))
            else:
                reply.set_result(b"page")

    loop.sleep(seconds).add_done_callback(answer)
    with report.watching(name):                # notes how the await ended, and re-raises
        return await reply

# %% [markdown]
# All or nothing, by hand: Task 2 fails after 0.05 s; whoever awaited it catches the failure
# and cancels the two others, which would take 0.3 s:

# %%
async def all_or_nothing(loop, report):
    others = [loop.create_task(request(loop, report, f"Task {i}", 0.3)) for i in (1, 3)]
    try:
        await request(loop, report, "Task 2", 0.05, fails=True)
    except RuntimeError as err:
        report.raised = f"RuntimeError: {err}"
        for task in others:
            task.cancel()                      # CancelledError, raised where each waits
    for task in others:
        try:
            await task
        except futures.CancelledError:
            pass

def on_our_loop(scenario, *args):
    """Run `scenario(loop, report, *args)` on a fresh lesson-05 loop; return its report."""
    report = TaskReport()
    with futures.Loop() as our_loop:
        our_loop.run_until_complete(scenario(our_loop, report, *args))
    return report

print(on_our_loop(all_or_nothing).text())

# %% [markdown]
# asyncio does that bookkeeping for us: `asyncio.TaskGroup` (Python 3.11). Every task of the
# group runs at once; when one fails, the group cancels the others, waits for them, and raises
# an `ExceptionGroup` holding every failure. gevent's `joinall(raise_error=True)` raises the
# first failure but leaves the other greenlets running: `killall` stops them (with
# `GreenletExit`, raised where each waits). Here are the asyncio and gevent versions:

# %%
labkit.show(asyncio_lab.fetch_all_or_fail)

# %%
labkit.show(asyncio_lab.greenlets_all_or_fail)

# %% [markdown]
# The same three tasks on each loop (the asyncio requests go to the slow server: Request 2
# asks for `error_rate=1` and gets a 503 after 0.05 s, the others take 0.3 s). They run as the
# ways of `Rounds`, as the downloads did: even the outcome depends on timing here (a starved
# loop could see a 0.3 s answer before the 0.05 s one), so each loop gets a few tries.
# `after_failure` is the time from the failure to the last cancelled task's end.

# %%
failing = [page_url(1, delay=0.3), page_url(2, delay=0.05, error_rate=1), page_url(3, delay=0.3)]
def rest_cancelled(report):
    return list(report.outcomes.values()) == ["cancelled", "failed", "cancelled"]

all_or_fail = asyncio_lab.Rounds({
    "our loop": partial(on_our_loop, all_or_nothing),
    "gevent": partial(asyncio_lab.greenlets_all_or_fail, [0.3, 0.05, 0.3], fail=2),
    "asyncio TaskGroup": partial(pages.run_in_new_loop, asyncio_lab.fetch_all_or_fail, failing)},
    expect=rest_cancelled)
all_or_fail.claim("in each loop the second failed, and the other two were cancelled",
                  lambda t: min(t.most(way, "as expected") for way in t.ways), above=0.5)
for name, report in all_or_fail.last.items():
    print(f"-- {name}\n{report.text()}")
all_or_fail.claim("the other two ended within 0.1 s of the failure: cancelled, not waited for",
                  lambda t: max(t.best(way, "after the failure") for way in t.ways), below=0.1)
plot_outcomes(all_or_fail.last)

# %% [markdown]
# The choice is yours in each loop: cancel the rest (a page of results is useless without all
# of them) or keep going (each result stands alone). Keeping going is
# `gather(..., return_exceptions=True)` in asyncio, and not killing in gevent:

# %%
keep_going = {"gevent, no killall": asyncio_lab.greenlets_all_or_fail([0.3, 0.05, 0.3], fail=2,
                                                                      kill_rest=False),
              "asyncio gather": await asyncio_lab.fetch_all_keep_going(failing)}
for name, report in keep_going.items():
    print(f"-- {name}\n{report.text()}")
    labkit.claim(f"{name}: the second failed, the other two finished",
                 list(report.outcomes.values()) == ["done", "failed", "done"])

# %% [markdown]
# ### Timeouts
#
# `asyncio.timeout(seconds)` cancels the task where it waits when the time is up, and turns
# that `CancelledError` into a `TimeoutError` at the end of its block; `gevent.Timeout` raises
# in the greenlet where it waits. Our loop has no timeout of its own, but underneath a timeout
# is only a timer that cancels: we can write that with what we have.

# %%
async def within(loop, report, delays, seconds):
    tasks = [loop.create_task(request(loop, report, f"Task {i}", d))
             for i, d in enumerate(delays, 1)]
    for task in tasks:
        loop.sleep(seconds).add_done_callback(lambda _, t=task: t.done() or t.cancel())
    for task in tasks:
        try:
            await task
        except futures.CancelledError:
            pass

labkit.show(asyncio_lab.fetch_within)

# %% [markdown]
# Three tasks of 0.1, 0.5 and 0.1 s, each with 0.3 s to finish, on each loop. `stopped_after`
# is how long the stopped task ran before its timeout stopped it:

# %%
slow_one = [page_url(1, delay=0.1), page_url(2, delay=0.5), page_url(3, delay=0.1)]
def only_the_slow_one_stopped(report):
    ended = list(report.outcomes.values())
    return ended[::2] == ["done", "done"] and ended[1] != "done"

timeouts = asyncio_lab.Rounds({
    "our loop (a timer that cancels)": partial(on_our_loop, within, [0.1, 0.5, 0.1], 0.3),
    "gevent.Timeout": partial(asyncio_lab.greenlets_within, [0.1, 0.5, 0.1], 0.3),
    "asyncio.timeout": partial(pages.run_in_new_loop, asyncio_lab.fetch_within, slow_one, 0.3)},
    expect=only_the_slow_one_stopped)
timeouts.claim("in each loop only the 0.5 s task was stopped; the two others finished",
               lambda t: min(t.most(way, "as expected") for way in t.ways), above=0.5)
for name, report in timeouts.last.items():
    print(f"-- {name}\n{report.text()}")
labkit.claim("gevent and asyncio call it timed out; ours, plainly, cancelled",
             [list(r.outcomes.values())[1] for r in timeouts.last.values()]
             == ["cancelled", "timed out", "timed out"])
timeouts.claim("each stopped it at 0.3 s, give or take 0.1 s",
               lambda t: max(abs(t.best(w, "stopped after") - 0.3) for w in t.ways), below=0.1)
plot_outcomes(timeouts.last)

# %% [markdown]
# ## Back-pressure: a producer faster than its consumer
#
# A producer puts an item into a queue every millisecond; the consumer takes 5 ms per item.
# With an unbounded `asyncio.Queue`, nothing slows the producer down: the queue, and the
# memory it holds, grows for as long as the program runs. With `asyncio.Queue(maxsize=10)`,
# `await queue.put(item)` waits while the queue is full: the consumer's pace is pushed back to
# the producer. That push back is called *back-pressure*.

# %%
labkit.show(asyncio_lab.grow_queue)

# %% [markdown]
# Each run takes half a second; how far the queue grows depends on how often the loop gets
# the CPU, so the two run in turns (`Rounds` again) and the growth is judged on the run that
# grew most:

# %%
queues = asyncio_lab.Rounds({"Queue()": partial(asyncio_lab.queue_growth, bounded=None),
                             "Queue(maxsize=10)": partial(asyncio_lab.queue_growth, bounded=10)},
                            measure=asyncio_lab.growth, rounds=4, seconds=8)
queues.claim("unbounded: the queue grew past 100 items in half a second ...",
             lambda t: t.most("Queue()", "peak"), above=100)
queues.claim("... and was still growing at the end",
             lambda t: t.most("Queue()", "rise at the end"), above=0)
labkit.claim("bounded: it never held more than 10, in any run",
             max(queues.values("Queue(maxsize=10)", "peak")) <= 10)
asyncio_lab.plot_growth(queues.last, title="items waiting in the queue")

# %% [markdown]
# Streams have the same problem. `writer.write(data)` never waits: what the socket will not
# take now stays in the transport's buffer, in memory. The transport watches that buffer.
# When a write takes it above the *high-water mark* (64 KiB by default), it pauses the
# stream; it resumes it only once the buffer is down to the *low-water mark* (16 KiB by
# default). `await writer.drain()` returns at once while the stream is not paused, and waits
# while it is. A writer that drains therefore runs at its reader's pace. Here a writer sends
# 16 KiB every millisecond to a reader that takes 4 KiB every 10 ms:

# %%
labkit.show(asyncio_lab.grow_write_buffer)

# %%
buffers = asyncio_lab.Rounds(
    {"write() only": partial(asyncio_lab.writer_buffer_growth, drain=False),
     "write() + await drain()": partial(asyncio_lab.writer_buffer_growth, drain=True)},
    measure=lambda run: {"peak": max(n for _, n in run.series), "waits": len(run.after_waiting),
                         "resumed at most": max(run.after_waiting, default=0)},
    rounds=4, seconds=8)
labkit.claim("the limits: a low-water mark of 16 KiB, a high-water mark of 64 KiB",
             all(run.limits == (16 * 1024, 64 * 1024) for run in buffers.last.values()))
buffers.claim("without drain, over 1 MB piled up in the writer's buffer in half a second",
              lambda t: t.most("write() only", "peak"), above=1_000_000)
drained = partial(buffers.values, "write() + await drain()")
labkit.claim("with drain, it never held more than 64 KiB plus the write that crossed it",
             max(drained("peak")) <= 64 * 1024 + 16_384, measured=str(drained("peak")))
buffers.claim("drain() made the writer wait", lambda t: t.most("write() + await drain()",
                                                             "waits"), above=0)
labkit.claim("each time, it let the writer go on only at 16 KiB or less, not at 64 KiB",
             max(drained("resumed at most")) <= 16 * 1024, measured=str(drained("resumed at most")))
asyncio_lab.plot_growth({name: run.series for name, run in buffers.last.items()},
                        ylabel="bytes in the write buffer", title="the writer's transport buffer")

# %% [markdown]
# ## Blocking the loop
#
# An event loop runs one task at a time. It switches to another only when the running task
# reaches an `await` that *suspends* it: one whose awaitable sends something up to the Task
# (a Future not yet done, or a bare `yield`). Awaiting a coroutine that never waits switches
# nothing: it runs to its end like a plain call. Two tasks, each awaiting three times:

# %%
async def ready_now():                      # an async def that never waits for anything
    return "ready"

async def worker(name, log, step):
    for _ in range(3):
        await step()                        # does this await suspend the task?
        log.append(name)

async def two_workers(step):
    log = []
    await asyncio.gather(worker("A", log, step), worker("B", log, step))
    return " ".join(log)

turns = {"await ready_now()": await two_workers(ready_now),
         "await asyncio.sleep(0)": await two_workers(partial(asyncio.sleep, 0))}
print(turns)
labkit.claim("awaiting a coroutine that never waits switched nothing: A A A, then B B B",
             turns["await ready_now()"] == "A A A B B B")
_ = labkit.claim("asyncio.sleep(0) suspended each time: A and B took turns",
                 turns["await asyncio.sleep(0)"] == "A B A B A B")

# %% [markdown]
# `await writer.drain()` above is such an await while the stream is not paused: it returns
# without suspending. So a call that blocks (`time.sleep`, a blocking socket, a long
# computation) holds the one thread, and every other task stands still until it returns.
# Task 1 below waits 0.2 s three ways, while Tasks 2 and 3 ask to wake every 50 ms:

# %%
labkit.show(asyncio_lab.hog)

# %% [markdown]
# The loop runs in *debug mode*: asyncio times every step of every task, and logs a warning
# about any step that holds the loop longer than `slow_callback_duration` (here 0.1 s):

# %%
labkit.show(asyncio_lab.run_in_debug_mode)

# %%
blocked = asyncio_lab.Rounds(
    {block: partial(asyncio_lab.blocked_loop, block) for block in ("time.sleep", "cpu",
                                                                   "to_thread")},
    measure=lambda run: {"late": run.late_by, "slow steps": len(run.slow_callbacks),
                         "named Task 1": float(any(s.task == "Task 1"
                                                   for s in run.slow_callbacks))},
    rounds=4, seconds=8)
print("debug mode logged:", *[s for s in blocked.last["time.sleep"].slow_callbacks
                              if s.task == "Task 1"])
for block in ("time.sleep", "cpu"):
    blocked.claim(f"{block}: the other tasks woke over 0.15 s late",
                  lambda t, block=block: t.best(block, "late"), above=0.15)
    labkit.claim(f"{block}: debug mode named Task 1, in every run",
                 min(blocked.values(block, "named Task 1")) == 1)
blocked.claim("asyncio.to_thread: the others woke on time (under 0.1 s late) ...",
              lambda t: t.best("to_thread", "late"), below=0.1)
blocked.claim("... and debug mode logged no slow step",
              lambda t: t.best("to_thread", "slow steps"), below=1)
compare_timelines({f"Task 1 with {b}": run.spans for b, run in blocked.last.items()})

# %% [markdown]
# With `time.sleep` or the CPU loop, Task 1 is blue (running) for 0.2 s and the other rows
# show one long wait where they asked for 50 ms. `await asyncio.to_thread(time.sleep, 0.2)`
# runs the blocking call in a worker thread and awaits its end: the loop goes on meanwhile.
# For CPU work in CPython a thread still holds the interpreter lock most of the time, so the
# real fix for heavy computing is a process pool (`loop.run_in_executor` with a
# `ProcessPoolExecutor`). Turn debug mode on while developing (`asyncio.run(main(),
# debug=True)`, or `PYTHONASYNCIODEBUG=1`): it names the task that held the loop.

# %% [markdown]
# ## Sitting 3 of 4 (about 25 minutes) — a good place to stop
#
# The third of this lesson's four sittings starts here. Coming back to a fresh kernel?
# Select the cell below and choose **Run → Run All Above Selected Cell** first: this part
# uses the imports and servers of the cells above.

# %% [markdown]
# ## The echo server on asyncio, and on uvloop
#
# asyncio offers two ways to write a server. The **streams** API is one coroutine per client
# (`await reader.read()`, `writer.write()`, `await writer.drain()`): it reads like lesson 06's
# gevent server. The **protocol** API is the layer underneath: the loop calls
# `data_received` on an object, as our selectors server calls its handlers (lesson 07), and
# `transport.write` never blocks. **uvloop** is a drop-in replacement for asyncio's loop,
# written in Cython on libuv (the C event loop under Node.js): the same coroutines and
# protocols, a faster loop. `asyncio_echo` is both, on either loop:

# %%
labkit.show("asyncio_echo")

# %% [markdown]
# ## Why one loop is cheaper: count the system calls
#
# A system call (`recv`, `send`, `epoll_wait`, `epoll_ctl`) asks the kernel for something,
# and each one is a trip into the kernel and back. `selectors_echo`, the server of lesson 00,
# sends the echo right after the `recv` that brought it. The kernel's send buffer almost
# always has room, so it asks for EVENT_WRITE only when `send` could not take everything, as
# asyncio's transports do. Started with `wait_writable=True`, it asks the selector first,
# before every reply: register for EVENT_WRITE (`modify`, an `epoll_ctl`), wait for
# `select()` to say the socket is writable, `send`, then `modify` back.
#
# strace (`strace -c -f -p PID`) counts a process's system calls, but it may be missing, or
# not allowed to attach (ptrace), on a hosted notebook server. So each server counts its own
# with `count_calls=True`: every `recv`, `send`, `select` and `modify` it makes through
# Python's `socket` and `selectors` modules is one system call, named as strace names it (the
# course's tests check the two counts agree where strace runs). One client, 500 echoes of
# 1 KiB, on both selectors servers and on both asyncio APIs:

# %%
from labkit.server_cpu import plot_system_calls, system_calls_per_round_trip

calls = system_calls_per_round_trip({
    "selectors, asks first": ("selectors_echo", {"wait_writable": True}),
    "selectors, sends at once": ("selectors_echo", {}),
    "asyncio protocol": ("asyncio_echo", {"api": "protocol"}),
    "asyncio streams": ("asyncio_echo", {"api": "streams"}),
})
for label, per_round_trip in calls.items():
    print(f"{label:>25}:", ", ".join(f"{n:.1f} {call}" for call, n in per_round_trip.items()))

def about(counts, **expected):
    """Each call made that many times per round trip, give or take 0.1."""
    return all(abs(counts.get(call, 0) - n) < 0.1 for call, n in expected.items())

first, at_once = calls["selectors, asks first"], calls["selectors, sends at once"]
labkit.claim("asking first: two epoll_ctl and two epoll_wait per round trip",
             about(first, recvfrom=1, sendto=1, epoll_wait=2, epoll_ctl=2), measured=str(first))
labkit.claim("sending at once: one recv, one send, one epoll_wait, no epoll_ctl per message",
             about(at_once, recvfrom=1, sendto=1, epoll_wait=1, epoll_ctl=0), measured=str(at_once))
labkit.claim("asking first adds three system calls per round trip, to the three of sending at once",
             abs(sum(first.values()) - sum(at_once.values()) - 3) < 0.3, measured=str(calls))
labkit.claim("asyncio's protocol API: the same three calls as sending at once",
             about(calls["asyncio protocol"], recvfrom=1, sendto=1, epoll_wait=1, epoll_ctl=0))
labkit.claim("asyncio's streams API: the same recv and send, and two epoll_wait per round trip",
             about(calls["asyncio streams"], recvfrom=1, sendto=1, epoll_wait=2, epoll_ctl=0))
plot_system_calls(calls)

# %% [markdown]
# The protocol API makes the same three calls as `selectors_echo`: the loop calls
# `data_received` right after the `recv`, and `transport.write` sends at once. The streams API
# needs a second `epoll_wait` per message. Its `recv` only feeds the bytes to a
# `StreamReader`, which wakes the handler's task with `call_soon`. Each pass of asyncio's loop
# runs only the callbacks that were ready when the pass began. So the handler runs on the
# next pass, which starts with one more `epoll_wait` (timeout 0, since work is waiting).
#
# Two loops cannot be counted this way. uvloop and gevent wait in C (libuv, libev), below
# Python's `selectors`, and uvloop reads and writes there too. Where strace may attach, it
# shows uvloop making one `epoll_pwait`, one `read` and one `write` per round trip with either
# API: it runs ready callbacks before it polls again (the course's tests check this). gevent's
# count depends on timing. Its `recv` tries the socket first and waits only if that fails
# with EAGAIN. A message already there costs one call; one still on its way costs a failed
# `recv`, an `epoll_wait` and a second `recv`.

# %% [markdown]
# Which costs the server less CPU per round trip? Each server is started once; 20 clients send
# 200 messages of 1 KiB each and check every echo, the servers taking turns three times, and
# we read each server's CPU time from `/proc` (the median of the three runs). The servers and
# the clients share one core (`together=True`), as on a one-core machine: while a server waits
# for the core, the clients' next messages queue up, so each wake-up finds several sockets
# ready, as a busy server does. (In our runs with a core of its own, a server faster than its
# clients woke for every message, and the wake-ups hid the loops' differences.) uvloop is pinned in
# this course's requirements; where it cannot be installed, its servers are left out, and the
# cell says so.

# %%
import importlib.util

from labkit.server_cpu import cpu_per_round_trip, plot_cpu_per_round_trip

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None
ECHO_SERVERS = {"selectors, asks first": ("selectors_echo", {"wait_writable": True}),
                "selectors (00)": ("selectors_echo", {}), "gevent (06)": ("gevent_echo", {})}
for loop_name in ("asyncio", "uvloop"):
    if loop_name == "uvloop" and not HAVE_UVLOOP:
        print("uvloop is not installed here (pip install uvloop): its servers are skipped.")
        continue
    for api in ("streams", "protocol"):
        ECHO_SERVERS[f"{loop_name} {api}"] = ("asyncio_echo", {"api": api, "loop": loop_name})
cpu = cpu_per_round_trip(ECHO_SERVERS, together=True)
ratios = {label: round(us / cpu["selectors (00)"], 2) for label, us in cpu.items()}
labkit.claim("every server echoed every byte of every run (or this cell would have failed)",
             len(cpu) == len(ECHO_SERVERS) and all(us > 0 for us in cpu.values()))
labkit.claim("asking the selector first costs over 1.3x the CPU per round trip",
             ratios["selectors, asks first"] > 1.3, measured=str(ratios))
labkit.claim("all within a factor of 4 of the selectors server, per round trip",
             all(0.25 < r < 4 for r in ratios.values()), measured=str(ratios))
asyncio_servers = [label for label in cpu if label.endswith(("streams", "protocol"))]
labkit.claim("the cheapest asyncio server costs less per round trip than our gevent server",
             min(cpu[label] for label in asyncio_servers) < cpu["gevent (06)"],
             measured=str(ratios))
plot_cpu_per_round_trip(cpu, reference="selectors (00)")

# %% [markdown]
# The two selectors bars are the same server, but for the three system calls per round
# trip counted above. The asyncio streams bars pay for their extra loop pass per message and
# for the coroutine step that runs the handler; the protocol API skips both. gevent's handler
# switches to the hub and back whenever its `recv` has to wait. uvloop runs the same Python
# handlers on a loop written in C. This cell's claims do not rank those:
# `python -m benchmarks echo` does, with more runs (`benchmarks/results.md`). A few thousand
# round trips on a busy machine are a small sample: run the cell again and the order of close
# bars may change; the claims above hold only what holds by a wide margin.
#
# ## Seeing asyncio's tasks run
#
# Lesson 05 drew three tasks that compute a little, wait for the server, and compute again.
# `labkit.timeline.AsyncioTrace` records the same running and waiting for asyncio's tasks: it
# times each step the loop gives a task (from `send` to its next `await` that suspends).

# %%
from labkit.bench import compute
from labkit.timeline import AsyncioTrace

WAITS = {"Task 1": 0.3, "Task 2": 0.2, "Task 3": 0.1}

async def three_step_task(client, name):
    compute(0.02)                                    # CPU work: the loop runs nothing else
    reply = await client.get(page_url(name[-1], delay=WAITS[name]))
    compute(0.02)
    return reply.status_code

async with pages.open_async_client() as client:
    with AsyncioTrace() as trace:
        statuses = await asyncio.gather(*(asyncio.create_task(three_step_task(client, name),
                                                              name=name) for name in WAITS))
tasks_spans = [s for s in trace.spans if s.task in WAITS]   # httpx's own helper tasks left out
labkit.claim("all three got their page", statuses == [200, 200, 200])
labkit.claim("one task running at a time", max_concurrent(trace.spans, ["running"]) == 1)
labkit.claim("the waits overlapped: at one moment all three tasks were waiting",
             max_concurrent(tasks_spans, ["waiting"]) == 3)
others = {s.task for s in trace.spans} - set(WAITS)
labkit.claim("the trace also saw tasks we did not start: httpx connecting (through anyio)",
             others and all("connect" in name for name in others), measured=str(others))
plot_timeline(tasks_spans, title="three asyncio tasks (measured steps)")

# %% [markdown]
# The same figure as lesson 05's event loop row: one blue bar at a time, waits overlapping.
# (The trace records every task started inside the block, httpx's connecting tasks too; we
# draw only ours.)
#
# ## The greenlet bridge: synchronous code that awaits
#
# A library written as plain functions cannot `await`: only a coroutine can suspend, and only
# at its own level. Yet SQLAlchemy serves asyncio callers with its synchronous core. Its trick
# joins lesson 02 to this lesson: run the synchronous code in a greenlet, and where it needs
# I/O, *switch* back to the awaiting coroutine, handing it the awaitable; the coroutine awaits
# it (the loop runs other tasks meanwhile) and switches the result back in. In about 25 lines:

# %%
from greenlet import getcurrent

from labkit import bridge
from labkit.bridge import BridgeGreenlet, await_only, greenlet_spawn
from labkit.timeline import GreenletTrace

labkit.show(bridge.greenlet_spawn)

# %%
labkit.show(bridge.await_only)

# %% [markdown]
# A "library" with no `async` in it fetches pages two plain calls deep, and lesson 02's
# switch tracer watches, the kernel's loop greenlet on one side, the bridge's on the other:

# %%
def fetch_page(client, url):                         # plain code, two calls deep ...
    return await_only(client.get(url)).content       # ... waits for the event loop

def page_sizes(client, urls):
    sizes = []
    for url in urls:
        sizes.append(len(fetch_page(client, url)))
        compute(0.01)                                # the library's own work on each page
    return sizes

loop_greenlet = getcurrent()                         # the kernel's loop runs in this one

def who(g):
    if g is loop_greenlet:
        return "event loop"
    return "sync code" if isinstance(g, BridgeGreenlet) else None

async with pages.open_async_client() as client:
    with GreenletTrace(who) as traced:
        sizes = await greenlet_spawn(page_sizes, client, urls[:3])
switches = [(a, b) for a, b in traced.switches if a and b]
print("switches:", switches[:3], "...")
labkit.claim("three pages of 48 KB came back to the sync code",
             sizes == [(PAGES / "page-48k.html").stat().st_size] * 3)
labkit.claim("a switch into the sync code and one out, per await_only, and one more at the end",
             switches == [("event loop", "sync code"), ("sync code", "event loop")] * 4)
plot_timeline(traced.spans, title="greenlet switches carrying each await")

# %% [markdown]
# Each grey stretch of "sync code" is one `await_only`: its greenlet is suspended in the
# middle of `fetch_page`, two plain calls deep, while the loop awaits the request (the loop's
# greenlet is blue then: it holds the thread, though the loop mostly sleeps in `epoll`).
# Each blue slice of "sync code" is its own work between two requests. That `switch` is
# lesson 02's, carrying an `await`. And since the loop is free during each wait, three
# bridged calls overlap like any three tasks:

# %%
async with pages.open_async_client() as client:
    with AsyncioTrace() as bridged:
        groups = [urls[0:3], urls[3:6], urls[6:9]]
        all_sizes = await asyncio.gather(*(asyncio.create_task(
            greenlet_spawn(page_sizes, client, group), name=f"Task {i}")
            for i, group in enumerate(groups, 1)))
bridged_spans = [s for s in bridged.spans if s.task.startswith("Task ")]
labkit.claim("9 pages, 3 in a row per task, and the three tasks waiting at the same time",
             len(sum(all_sizes, [])) == 9 and max_concurrent(bridged_spans, ["waiting"]) == 3)
plot_timeline(bridged_spans, title="three bridged tasks (AsyncioTrace)")

# %% [markdown]
# ## Sitting 4 of 4 (about 40 minutes) — a good place to stop
#
# The fourth of this lesson's four sittings starts here. Coming back to a fresh kernel?
# Select the cell below and choose **Run → Run All Above Selected Cell** first: this part
# uses the imports and servers of the cells above.

# %% [markdown]
# ## Try it yourself
#
# `run_async_fetch` below is what the panel runs: `n_requests` pages from a fresh slow server,
# at most `limit` at once (the Semaphore strategy), on the event loop you choose, in a thread
# of its own (this kernel's thread already runs a loop).

# %%
from concurrent.futures import ThreadPoolExecutor

from ipywidgets import Dropdown, FloatSlider, IntSlider

from labkit.widgets import panel

LOOPS = {"asyncio": asyncio.new_event_loop}
if HAVE_UVLOOP:
    import uvloop
    LOOPS["uvloop"] = uvloop.new_event_loop

def run_async_fetch(n_requests=20, limit=5, latency=0.2, loop="asyncio", progress=None):
    download = partial(pages.download_many_limited, limit=limit)

    def on_its_own_loop(urls):
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            run = runner.run(pages.timed_run_async(download, urls, f"limit {limit}", progress))
            return run, type(runner.get_loop()).__module__.split(".")[0]

    with labkit.serve("latency_http", root=PAGES, delay=latency) as own, \
            ThreadPoolExecutor(1) as worker:
        base = f"http://{own.host}:{own.port}"
        run, run.loop = worker.submit(on_its_own_loop, [page_url(i, base) for i in
                                                         range(1, n_requests + 1)]).result()
    return run.raise_if_unanswered()

# %%
chosen = "uvloop" if HAVE_UVLOOP else "asyncio"
checked = run_async_fetch(n_requests=12, limit=4, latency=0.2, loop=chosen)
labkit.claim("12 pages, all verified", checked.statuses == {200: 12}
             and all(p.sha256 == EXPECTED for p in checked.results))
labkit.claim("at most 4 in flight, and 4 at some point", max_concurrent(checked.spans) == 4)
_ = labkit.claim("it ran on the loop asked for", checked.loop == chosen, measured=checked.loop)

# %%
# NBVAL_IGNORE_OUTPUT
panel(run_async_fetch,
      draw=lambda run: plot_timeline(run.spans, title=f"{run.summary()[:80]} ({run.loop})"),
      controls={"n_requests": IntSlider(20, min=1, max=500, description="requests"),
                "limit": IntSlider(5, min=1, max=100, description="limit"),
                "latency": FloatSlider(0.2, min=0.0, max=1.0, step=0.05,
                                       description="latency (s)"),
                "loop": Dropdown(options=list(LOOPS), value="asyncio", description="loop")},
      summary=lambda run: run.summary())

# %% [markdown]
# Try: 500 requests with a limit of 100, then of 10 (watch the orange steps grow); the same
# on uvloop.

# %%
server.stop()
_ = labkit.claim("the server stopped", not server.alive)

# %% [markdown]
# ## Summary
#
# * asyncio is lesson 05's design: a coroutine yields the Future it waits for, and a Task
#   resumes it once the loop has set that Future.
# * In Jupyter the kernel already runs a loop: `await` at the top of a cell, never
#   `asyncio.run()`.
# * `await` alone overlaps nothing; tasks do (`gather`, `TaskGroup`), and a `Semaphore` caps
#   how many are in flight.
# * A `TaskGroup` cancels the others when one task fails; `gather(return_exceptions=True)`
#   lets them finish; `asyncio.timeout` is a timer that cancels. gevent has the same tools
#   (`joinall`, `kill`, `Timeout`).
# * Bound what a fast producer can pile up: `Queue(maxsize=...)`, `await writer.drain()`.
# * A task gives the loop a turn only at an `await` that suspends, so one blocking call stops
#   every task: debug mode names it, `asyncio.to_thread` moves it off the loop.
# * Per echo, sending right after `recv` takes three system calls, asking first six; asyncio's
#   streams add a loop pass (an `epoll_wait`). All our echo servers cost the same order of CPU.
# * A greenlet lets synchronous code wait for the event loop: each `await_only` is a `switch`.

# %% [markdown]
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint (call
# it again for the next one), `check(n, your_answer)` tells you if you have it, and `answer(n)`
# shows a worked solution with a sentence on why it is right: try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(9)

# %% [markdown]
# **Exercise 1.** Write `async def fetch_all(urls, limit)`: fetch every URL with
# `httpx.AsyncClient`, with at most `limit` requests in flight at once, and return the bodies
# (bytes) in the order of `urls`. The check runs it against a local `latency_http` and reads
# the server's log to see how many requests it served at once.

# %%
async def fetch_all(urls, limit):
    ...   # your code here

check(1, fetch_all)

# %% [markdown]
# **Exercise 2.** Write `async def fetch_survivors(urls)`: fetch every URL at once, each in a
# task of one `asyncio.TaskGroup`, and return `{url: body}` for the requests answered with
# status 200. One failing request (refused, or answered 503) must not stop the others.

# %%
async def fetch_survivors(urls):
    ...   # your code here

check(2, fetch_survivors)

# %% [markdown]
# **Exercise 3.** Five coroutines each `await asyncio.sleep(0.2)` inside
# `async with semaphore:`, where `semaphore = asyncio.Semaphore(2)`, and are run with
# `asyncio.gather`. About how many seconds does it take?

# %%
check(3, ...)

# %% [markdown]
# **Exercise 4.** Which of these, inside a coroutine, stops every other task on the loop for a
# second? (a) `await asyncio.sleep(1)`, (b) `time.sleep(1)`,
# (c) `await asyncio.to_thread(time.sleep, 1)`. Answer `"a"`, `"b"` or `"c"`.

# %%
check(4, ...)

# %% [markdown]
# **Exercise 5.** Lesson 07's `select_echo` serves one client that sends 1 KiB messages, one at
# a time. How many system calls does it make per round trip? Predict, then measure with
# `system_calls_per_round_trip` and answer with the total.

# %%
check(5, ...)
