# ruff: noqa: F704  (a notebook cell may await at its top level: Jupyter runs it on its loop)
# %% [markdown]
# # 09 · From our event loop to asyncio
#
# Lesson 05 built an event loop from scratch: a selector, Futures, and Tasks that drive
# `async def` coroutines. `asyncio`, in Python's standard library, is that same design, grown
# up: the async that most Python programmers meet at work. This lesson starts from our loop and
# shows what asyncio merely renames and what it adds, with the page fetcher of lesson 04, the
# echo server of lesson 06 and the greenlets of lesson 02, all measured and drawn as before.
#
# **After this lesson you can**
# * step an asyncio coroutine by hand, and say why `asyncio.run()` fails in Jupyter while a
#   top-level `await` works;
# * fetch pages with `asyncio.gather`, and limit how many are in flight with a `Semaphore`;
# * handle failures, timeouts and cancellation with `TaskGroup` and `asyncio.timeout`, and
#   compare them with our loop's and gevent's;
# * keep a fast producer from flooding memory (bounded queues, `await writer.drain()`);
# * find a call that blocks the loop, with a timeline and asyncio's debug mode, and move it to
#   a thread;
# * compare echo servers on asyncio, uvloop, selectors and gevent by server CPU per round trip,
#   and explain the difference by the system calls each makes per round trip;
# * explain how a library with a synchronous core serves `await` callers with greenlets.
#
# **Time:** about 115 minutes: 85 reading and running, 30 exercises; sittings of 25 + 25 + 25 + 40.

# %%
import asyncio
import inspect
import subprocess
import sys

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
labkit.claim("... and adds a done callback to the Future that comes up",
             "result.add_done_callback(" in task_source)

# %% [markdown]
# One difference matters: asyncio's Task understands only asyncio Futures. Hand it one of
# ours and it refuses: our loop's Futures are set by our loop, which asyncio knows nothing of.
# A top-level `await` (next section) runs the coroutine as an asyncio Task:

# %%
async def awaits_ours():
    return await futures.Future()

try:
    await awaits_ours()
    refused = ""
except RuntimeError as err:
    refused = str(err)
print(refused.split(":")[0])
labkit.claim("asyncio's Task refused lesson 05's Future",
             refused.startswith("Task got bad yield"))

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
labkit.claim("asyncio ran our generator-based awaitable to its end",
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
labkit.claim("this cell already runs inside a loop (the kernel's)", kernel_loop.is_running())

# %% [markdown]
# The kernel's loop is running, so a cell can simply `await`: IPython sees the top-level
# `await` and runs the cell as a coroutine on that loop. The same `main()` in a plain script,
# where no loop runs yet, works with `asyncio.run`:

# %%
print("top-level await:", await main())
script = "import asyncio\nasync def main():\n    return 'done'\nprint(asyncio.run(main()))"
print(script)
ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
labkit.claim("in a script, asyncio.run(main()) returned 'done'",
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
# What it adds is what the rest of this lesson uses: a real HTTP client on top (httpx),
# limits (`Semaphore`), errors and cancellation that reach the right task, timeouts, bounded
# queues and flow control, threads for blocking calls, a debug mode, and a choice of loop.
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
# Ten pages of 0.2 s each, the three ways, awaited right in the cell
# (`pages.timed_run_async` is lesson 04's `timed_run` for coroutines):

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
runs = {"await in a loop": await pages.timed_run_async(pages.download_many_await, urls),
        "gather": await pages.timed_run_async(pages.download_many_gather, urls),
        f"Semaphore({LIMIT})": await pages.timed_run_async(limited, urls, "limited")}
labkit.claim(f"all {3 * N} downloads complete and verified (SHA-256)",
             all(r.statuses == {200: N} and all(p.sha256 == EXPECTED for p in r.results)
                 for r in runs.values()), measured=str({k: r.statuses for k, r in runs.items()}))
at_once = {name: max_concurrent(run.spans) for name, run in runs.items()}
print("requests in flight at once, at most:", at_once)
labkit.claim(f"one at a time in a loop, all {N} with gather, {LIMIT} with the Semaphore",
             list(at_once.values()) == [1, N, LIMIT])

# %%
elapsed = {name: run.elapsed for name, run in runs.items()}
rounds = -(-N // LIMIT)                     # 10 requests, 3 at a time: 4 rounds
labkit.claim("await in a loop takes at least the sum of the latencies",
             elapsed["await in a loop"] >= N * LATENCY, measured=str(elapsed))
labkit.claim("gather takes less than two latencies", elapsed["gather"] < 2 * LATENCY,
             measured=str(elapsed))
labkit.claim(f"the Semaphore takes at least {rounds} rounds, and less than the loop's time",
             rounds * LATENCY <= elapsed[f"Semaphore({LIMIT})"] < elapsed["await in a loop"],
             measured=str(elapsed))
compare_timelines({name: run.spans for name, run in runs.items()})

# %% [markdown]
# `await` alone overlaps nothing: a coroutine that awaits each request in turn waits for each
# in turn, exactly like blocking code. The overlap comes from *tasks*: `gather` makes one per
# request, and the loop runs whichever can run. The Semaphore's run is a staircase of
# `LIMIT`-wide steps: the orange bars are requests waiting for a place.
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
for strategy, run in side_by_side.items():
    labkit.claim(f"{strategy}: all {N} in flight together, done in under two latencies",
                 max_concurrent(run.spans) == N and run.elapsed < 2 * LATENCY,
                 measured=f"{run.elapsed:.3f} s")
compare_timelines({name: run.spans for name, run in side_by_side.items()})

# %% [markdown]
# ## Sitting 2 of 4 (about 25 minutes) — a good place to stop
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
# Lesson 05's Future now can fail too: `set_exception` makes the `await` raise that exception,
# and `cancel` makes it raise `CancelledError`, where the task waits, so its `with` and
# `finally` blocks still run. A `TaskReport` (from `labkit.asyncio_lab`) notes how each task
# ended. Here, each "request" is a Future that a timer answers, or fails:

# %%
from labkit import asyncio_lab
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

ours = TaskReport()
with futures.Loop() as our_loop:
    our_loop.run_until_complete(all_or_nothing(our_loop, ours))
print(ours.text())

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
# asks for `error_rate=1` and gets a 503 after 0.05 s, the others take 0.3 s):

# %%
failing = [page_url(1, delay=0.3), page_url(2, delay=0.05, error_rate=1), page_url(3, delay=0.3)]
reports = {"our loop": ours,
           "gevent": asyncio_lab.greenlets_all_or_fail([0.3, 0.05, 0.3], fail=2),
           "asyncio TaskGroup": await asyncio_lab.fetch_all_or_fail(failing)}
for name, report in reports.items():
    print(f"-- {name}\n{report.text()}")
    labkit.claim(f"{name}: the second failed, the other two were cancelled",
                 list(report.outcomes.values()) == ["cancelled", "failed", "cancelled"])
labkit.claim("the cancelled ones ended right after the failure, long before 0.3 s",
             all(e.end < 0.2 for r in reports.values() for e in r.ends),
             measured=str([(e.task, round(e.end, 3)) for r in reports.values() for e in r.ends]))
plot_outcomes(reports)

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

timed = TaskReport()
with futures.Loop() as our_loop:
    our_loop.run_until_complete(within(our_loop, timed, [0.1, 0.5, 0.1], 0.3))
labkit.show(asyncio_lab.fetch_within)

# %%
slow_one = [page_url(1, delay=0.1), page_url(2, delay=0.5), page_url(3, delay=0.1)]
timeouts = {"our loop (a timer that cancels)": timed,
            "gevent.Timeout": asyncio_lab.greenlets_within([0.1, 0.5, 0.1], 0.3),
            "asyncio.timeout": await asyncio_lab.fetch_within(slow_one, 0.3)}
for name, report in timeouts.items():
    print(f"-- {name}\n{report.text()}")
labkit.claim("in each loop only the 0.5 s task was stopped, at about 0.3 s",
             all(list(r.outcomes.values())[::2] == ["done", "done"]
                 and 0.25 < max(e.end for e in r.ends) < 0.45 for r in timeouts.values()))
labkit.claim("gevent and asyncio call it timed out; ours, plainly, cancelled",
             [list(r.outcomes.values())[1] for r in timeouts.values()]
             == ["cancelled", "timed out", "timed out"])
plot_outcomes(timeouts)

# %% [markdown]
# ## Back-pressure: a producer faster than its consumer
#
# A producer puts an item into a queue every millisecond; the consumer takes 5 ms per item.
# With an unbounded `asyncio.Queue`, nothing slows the producer down: the queue, and the
# memory it holds, grows for as long as the program runs. With `asyncio.Queue(maxsize=10)`,
# `await queue.put(item)` waits while the queue is full: the consumer's pace is pushed back to
# the producer. That push back is called *back-pressure*.

# %%
labkit.show(asyncio_lab._queue_growth)

# %%
queues = {"Queue()": asyncio_lab.queue_growth(bounded=None),
          "Queue(maxsize=10)": asyncio_lab.queue_growth(bounded=10)}
longest = {name: max(n for _, n in series) for name, series in queues.items()}
labkit.claim("unbounded: the queue grew past 100 items in half a second, and still grew",
             longest["Queue()"] > 100 and queues["Queue()"][-1][1] > queues["Queue()"][-10][1],
             measured=str(longest))
labkit.claim("bounded: it never held more than 10", longest["Queue(maxsize=10)"] <= 10,
             measured=str(longest))
asyncio_lab.plot_growth(queues, title="items waiting in the queue")

# %% [markdown]
# Streams have the same problem. `writer.write(data)` never waits: what the socket will not
# take now stays in the transport's buffer in memory. `await writer.drain()` waits while that
# buffer is above its high-water mark (64 KiB), so a writer that drains runs at its reader's
# pace. Here a writer sends 16 KiB every millisecond to a reader that takes 4 KiB every 10 ms:

# %%
buffers = {"write() only": asyncio_lab.writer_buffer_growth(drain=False),
           "write() + await drain()": asyncio_lab.writer_buffer_growth(drain=True)}
peak = {name: max(n for _, n in series) for name, series in buffers.items()}
labkit.claim("without drain, over 1 MB piled up in the writer's buffer in half a second",
             peak["write() only"] > 1_000_000, measured=str(peak))
labkit.claim("with drain, it stayed under 64 KiB plus one write",
             peak["write() + await drain()"] <= 64 * 1024 + 16_384, measured=str(peak))
asyncio_lab.plot_growth(buffers, ylabel="bytes in the write buffer",
                        title="the writer's transport buffer")

# %% [markdown]
# ## Blocking the loop
#
# An event loop runs one task at a time, and switches only at an `await`. A call that blocks
# (`time.sleep`, a blocking socket, a long computation) holds the one thread, and every other
# task stands still until it returns. Task 1 below waits 0.2 s three ways, while Tasks 2 and 3
# ask to wake every 50 ms. The loop runs in *debug mode*, where asyncio times every step of
# every task and logs a warning about any that holds the loop longer than
# `slow_callback_duration` (here 0.1 s):

# %%
labkit.show(asyncio_lab.hog)

# %%
blocked = {block: asyncio_lab.blocked_loop(block) for block in ("time.sleep", "cpu", "to_thread")}
for block, run in blocked.items():
    print(f"-- Task 1 with {block}: debug mode logged {len(run.slow_callbacks)} slow step(s)")
    for slow in run.slow_callbacks:
        print("  ", slow)
late = {block: round(run.late_by, 3) for block, run in blocked.items()}
for block in ("time.sleep", "cpu"):
    labkit.claim(f"{block}: the other tasks woke over 0.15 s late, and debug mode named Task 1",
                 late[block] > 0.15 and [s.task for s in blocked[block].slow_callbacks]
                 == ["Task 1"], measured=str(late))
labkit.claim("asyncio.to_thread: the others woke on time (under 0.1 s late), no warning",
             late["to_thread"] < 0.1 and not blocked["to_thread"].slow_callbacks,
             measured=str(late))
compare_timelines({f"Task 1 with {b}": run.spans for b, run in blocked.items()})

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
# A system call (`recv`, `send`, `epoll_wait`, `epoll_ctl`) is where a server pays most: each
# one enters the kernel. Lesson 07's selectors server used to ask the selector before every
# reply: register for EVENT_WRITE (`modify`, an `epoll_ctl`), wait for `select()` to say the
# socket is writable, `send`, then `modify` back. But the kernel's send buffer almost always
# has room, so today it sends right after the `recv` and asks for EVENT_WRITE only when
# `send` could not take everything: what asyncio's transports do. Started with
# `wait_writable=True`, it still asks first, so that we can compare.
#
# strace (`strace -c -f -p PID`) counts a process's system calls, but it is often missing, or
# not allowed (ptrace), on a shared server such as Binder. So each server counts its own with
# `count_calls=True`: every `recv`, `send`, `select` and `modify` it makes is one system call,
# named as strace names it (the course's tests check the two counts agree where strace runs).
# One client, 500 echoes of 1 KiB:

# %%
from labkit.server_cpu import plot_system_calls, system_calls_per_round_trip

calls = system_calls_per_round_trip({
    "selectors, asks first": ("selectors_echo", {"wait_writable": True}),
    "selectors, sends at once": ("selectors_echo", {}),
})
for label, per_round_trip in calls.items():
    print(f"{label:>25}:", ", ".join(f"{n:.1f} {call}" for call, n in per_round_trip.items()))
first, at_once = calls["selectors, asks first"], calls["selectors, sends at once"]
labkit.claim("asking first: two epoll_ctl and two epoll_wait per round trip",
             first["epoll_ctl"] > 1.9 and first["epoll_wait"] > 1.9, measured=str(first))
labkit.claim("sending at once: one recv, one send, one epoll_wait, no epoll_ctl per message",
             at_once["epoll_ctl"] < 0.1 and 0.9 < at_once["epoll_wait"] < 1.1
             and 0.9 < at_once["recvfrom"] < 1.1 and 0.9 < at_once["sendto"] < 1.1,
             measured=str(at_once))
labkit.claim("sending at once makes half as many system calls per round trip",
             sum(at_once.values()) < 0.6 * sum(first.values()), measured=str(calls))
labkit.claim("asking first adds three system calls per round trip",
             abs(sum(first.values()) - sum(at_once.values()) - 3) < 0.3, measured=str(calls))
plot_system_calls(calls)

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
                "selectors (07)": ("selectors_echo", {}), "gevent (06)": ("gevent_echo", {})}
for loop_name in ("asyncio", "uvloop"):
    if loop_name == "uvloop" and not HAVE_UVLOOP:
        print("uvloop is not installed here (pip install uvloop): its servers are skipped.")
        continue
    for api in ("streams", "protocol"):
        ECHO_SERVERS[f"{loop_name} {api}"] = ("asyncio_echo", {"api": api, "loop": loop_name})
cpu = cpu_per_round_trip(ECHO_SERVERS, together=True)
ratios = {label: round(us / cpu["selectors (07)"], 2) for label, us in cpu.items()}
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
plot_cpu_per_round_trip(cpu, reference="selectors (07)")

# %% [markdown]
# The two selectors bars are the same server, but for the three system calls per round
# trip counted above. The others should make the same three (`epoll_wait`, `recv`, `send`); gevent
# and uvloop make theirs outside Python's `socket` module, where `--count-calls` cannot see them.
# What differs is the Python around them: the protocol API skips the streams' buffering and the
# coroutine switch per message, gevent switches greenlets twice per message, and uvloop moves the
# loop itself from Python into C. This cell's claims do not rank those: `python -m benchmarks echo`
# does, with more runs (`benchmarks/results.md`). A few thousand round trips on a busy machine are a
# small sample: run the cell again and the order of close bars may change; the claims above hold
# only what holds by a wide margin.
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
labkit.claim("the waits overlapped: all done in less than the sum of the waits alone",
             labkit.timeline.duration(tasks_spans) < sum(WAITS.values()))
plot_timeline(tasks_spans, title="three asyncio tasks (measured steps)")

# %% [markdown]
# The same figure as lesson 05's event loop row: one blue bar at a time, waits overlapping.
# (The trace records every task started inside the block, and httpx starts one of its own
# to connect; we draw only ours.)
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
took = labkit.timeline.duration(bridged_spans)
labkit.claim("9 pages, 3 in a row per task: about 3 latencies, not 9",
             len(sum(all_sizes, [])) == 9 and took < 6 * LATENCY, measured=f"{took:.3f} s")
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
labkit.claim("it ran on the loop asked for", checked.loop == chosen, measured=checked.loop)

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
labkit.claim("the server stopped", not server.alive)

# %% [markdown]
# ## Summary
#
# * asyncio is lesson 05's design: a coroutine yields the Future it waits for, a Task adds a
#   done callback to it and resumes the coroutine when it is set, and a loop turns ready
#   sockets and due timers into set Futures. `await` is `yield from` on an `__await__`.
# * In Jupyter the kernel already runs a loop: `await` at the top of a cell, never
#   `asyncio.run()`.
# * `await` alone overlaps nothing; tasks do (`gather`, `TaskGroup`), and a `Semaphore` caps
#   how many are in flight.
# * A `TaskGroup` cancels the other tasks when one fails; `gather(return_exceptions=True)` lets
#   them finish. `asyncio.timeout` is a timer that cancels. gevent has the same tools
#   (`joinall`, `kill`, `Timeout`); our loop needed only `set_exception` and `cancel`.
# * Bound what a fast producer can pile up: `Queue(maxsize=...)`, `await writer.drain()`.
# * One blocking call stops every task: debug mode names it, `asyncio.to_thread` moves it off
#   the loop.
# * Per round trip, echo servers on selectors, gevent, asyncio and uvloop cost the same order
#   of CPU (all within 4x, claimed); `benchmarks/echo` ranks them more finely. Sending
#   right after `recv`, and asking the selector only when the kernel's buffer is full, halves
#   the system calls per round trip (count them with `count_calls=True`, or `strace -c`).
# * A greenlet lets synchronous code wait for the event loop: each `await_only` is a `switch`.
#
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
