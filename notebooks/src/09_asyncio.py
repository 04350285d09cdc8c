# ruff: noqa: F704  (a notebook cell may await at its top level: Jupyter runs it on its loop)
# %% [markdown]
# # 09 · From our event loop to asyncio
#
# Lesson 05 built an event loop from scratch: a selector, Futures, and Tasks that drive
# `async def` coroutines. `asyncio`, in the standard library, is the same design, grown up.
# We start from our loop, then you write asyncio code yourself, and the lesson measures it.
#
# **After this lesson you can**
# * step an asyncio coroutine by hand, and say why `asyncio.run()` fails in Jupyter while a
#   top-level `await` works.
# * run many requests in a `TaskGroup`, or in a pool of workers fed by a `Queue`.
# * say which tools stop the other tasks when one fails, and write code that a cancel can
#   stop (re-raise `CancelledError`, `shield`, keep a reference to every task).
# * keep a fast writer from flooding memory with `await writer.drain()`.
# * cross between threads and the loop both ways, and spot a call that blocks the loop.
# * stream a response with an async generator, and close it on time.
#
# **Time:** about 90 minutes: 70 reading and running, 20 exercises; sittings of 25 + 25 + 40.

# %%
import asyncio
import inspect
import subprocess
import sys
import types

import labkit
from labkit.eventloop import futures

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

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
# The same protocol: a coroutine works like a generator underneath (`send`, `throw`, `close`),
# `await x` runs `x.__await__()` and passes its yields up, and a Future yields *itself*:
# "resume me when I am done". asyncio's Future is written in C for speed, but it keeps a
# pure-Python twin; here are the two `__await__`s, lesson 05's first.

# %%
labkit.show(futures.Future.__await__)

# %%
labkit.show(asyncio.futures._PyFuture.__await__)

# %% [markdown]
# Whoever drives the coroutine receives that Future. Lesson 05's `Task.step` adds a done
# callback to it that resumes the coroutine. asyncio's Task does the same. Like its Future, it is
# written in C; its pure-Python twin, `_PyTask`, shows how in its private `__step`
# (`asyncio/tasks.py`).

# %%
labkit.show(futures.Task.step)

# %%
task_source = inspect.getsource(asyncio.tasks._PyTask)
labkit.claim("asyncio's Task also runs its coroutine with coro.send(None) ...",
             "coro.send(None)" in task_source)
labkit.claim("... and adds a done callback to the Future that comes up",
             "result.add_done_callback(" in task_source)

# %% [markdown]
# One difference matters: what the Task accepts. It takes two kinds of thing from a coroutine.
# One is a *future-like* object: its `_asyncio_future_blocking` attribute is True (asyncio's
# `__await__` above sets it), and it belongs to the Task's loop. The other is a bare `yield`,
# which sends up `None`: "run me again on the next pass of the loop". `asyncio.sleep(0)` is
# exactly that.

# %%
labkit.show(asyncio.tasks.__sleep0)

# %% [markdown]
# Anything else, the Task refuses. Lesson 05's Future is not future-like to asyncio: it has no
# `_asyncio_future_blocking`, and asyncio knows nothing of the loop that sets it. A top-level
# `await` (next section) runs a coroutine as an asyncio Task, so we can try both.

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
labkit.claim("its step looks for _asyncio_future_blocking, then for a bare yield (None)",
             "_asyncio_future_blocking" in task_source and "result is None" in task_source)

# %% [markdown]
# ### `yield from` → `await` → `__await__`
#
# Anything with an `__await__` method that returns an iterator can be awaited. Written as a
# generator, `__await__` can delegate with `yield from` to an asyncio Future, and that is
# exactly what `await future` does inside an `async def`. Here is an awaitable of our own,
# written the generator way, awaited by asyncio.

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
# where no loop runs yet, works with `asyncio.run`.

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
# * Lesson 05's `Loop` (a selector, a ready queue, timers) is asyncio's event loop, which
#   `asyncio.get_running_loop()` returns.
# * Its `Future`, `Task` and `loop.create_task` are `asyncio.Future`, `asyncio.Task` and
#   `asyncio.create_task`.
# * Its `loop.sleep(s)` and `loop.wait_for(sock, event)` are `asyncio.sleep(s)`,
#   `loop.add_reader` and streams.
# * Its `gather(loop, coros)` is `asyncio.gather`, and `asyncio.TaskGroup`.
# * Its `loop.run_until_complete(main())` is `asyncio.run(main())`.
#
# What it adds is what the rest of this lesson uses: libraries that run on it (httpx, an HTTP
# client, through anyio), groups of tasks, errors and cancellation that reach the right task,
# timeouts, queues and flow control, and bridges to threads.

# %% [markdown]
# ## Many requests at once: a `TaskGroup`
#
# From here on, the asyncio code sits in the lesson's cells, as you would write it, and labkit
# only measures and draws it. Lesson 04 fetched pages from the slow `latency_http` server;
# here are ten pages of 0.2 s each. `fetch` awaits one page on an `httpx.AsyncClient` and
# records the wait as a bar of the timeline. `fetch_all_at_once` starts one task per URL in
# an `asyncio.TaskGroup`: its `async with` block ends only once every task of the group has
# ended. `await` alone overlaps nothing: the overlap comes from the tasks, as the second half
# of the next cell shows.

# %%
import hashlib
import threading
import time
from functools import partial

import httpx

from labkit import asyncio_lab
from labkit.clients.pages import run_in_new_loop
from labkit.timeline import AsyncioTrace, Recorder, compare_timelines, max_concurrent

PAGES = labkit.DATA / "pages"
PAGE = (PAGES / "page-48k.html").read_bytes()
server = labkit.serve("latency_http", root=PAGES, delay=0.2)
BASE = f"http://{server.host}:{server.port}/pages"
urls = [f"{BASE}/page-48k.html?id={i}&delay=0.2" for i in range(1, 11)]

async def fetch(client, url, rec, row):
    with rec.span(row, "waiting"):               # one bar of the timeline per request
        response = await client.get(url)
    response.raise_for_status()                  # an error status (503) raises
    return response.content

async def fetch_all_at_once(urls, rec):
    async with httpx.AsyncClient(trust_env=False) as client:    # no proxy to 127.0.0.1
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(fetch(client, url, rec, f"Request {i}"))
                     for i, url in enumerate(urls, 1)]
    return [task.result() for task in tasks]     # the group has waited for every task

# %%
at_once = Recorder()
bodies = await fetch_all_at_once(urls, at_once)
labkit.claim("all ten pages came back, each the right page", bodies == [PAGE] * 10)
labkit.claim("all ten requests were in flight at the same moment",
             max_concurrent(at_once.spans) == 10)
in_turn = Recorder()
async with httpx.AsyncClient(trust_env=False) as client:
    for i, url in enumerate(urls[:3], 1):
        await fetch(client, url, in_turn, f"Request {i}")    # no task: await alone
labkit.claim("awaited in a loop, without tasks, the requests ran one at a time",
             max_concurrent(in_turn.spans) == 1)

# %% [markdown]
# ## A pool of workers: a `Queue`, `join` and a timeout
#
# A crawler should not start a task per URL: it finds more URLs as it goes, and a site would
# not thank it for a thousand requests at once. The 500 Lines crawler has a few *workers* that
# take URLs from an `asyncio.Queue`, and you write the same:
#
# * `await queue.get()` waits while the queue is empty. `await queue.put(item)` waits while
#   a queue with a `maxsize` is full, which holds the producer back.
# * Each item taken is marked with `queue.task_done()`. `await queue.join()` returns once
#   every item put has been marked so.
# * `asyncio.timeout(seconds)` cancels what its block awaits when the time is up, and raises
#   `TimeoutError` at the end of the block.
#
# The workers loop for ever, so once `join` returns we cancel them. A `TaskGroup` counts a
# cancelled task as ended, not as failed.

# %%
async def worker(row, client, queue, rec, results):
    while True:
        i, url = await queue.get()               # waits while the queue is empty
        try:
            async with asyncio.timeout(1.0):     # a hung request holds a worker 1 s at most
                results[i] = await fetch(client, url, rec, row)
        except (httpx.HTTPError, TimeoutError) as error:
            results[i] = error                   # one failure is one result, not the end
        finally:
            queue.task_done()                    # this item is finished, however it ended

async def fetch_with_workers(urls, rec, workers=3):
    queue, results = asyncio.Queue(maxsize=workers), [None] * len(urls)
    async with httpx.AsyncClient(trust_env=False) as client:
        async with asyncio.TaskGroup() as group:
            pool = [group.create_task(worker(f"Worker {n}", client, queue, rec, results))
                    for n in range(1, workers + 1)]
            for item in enumerate(urls):
                await queue.put(item)            # waits while the queue is full
            await queue.join()                   # every item has had its task_done()
            for task in pool:
                task.cancel()                    # they wait in get() for ever otherwise
    return results

# %% [markdown]
# The same ten pages, then one that hangs for 5 s and one that fails (`error_rate=1`: the
# server answers 503), with three workers.

# %%
hung, failing = f"{BASE}/page-48k.html?id=11&delay=5", f"{BASE}/page-48k.html?id=12&error_rate=1"
by_workers = Recorder()
results = await fetch_with_workers([*urls, hung, failing], by_workers)
labkit.claim("ten pages back; the hung request timed out, the failing one raised its 503",
             results[:10] == [PAGE] * 10
             and [type(r).__name__ for r in results[10:]] == ["TimeoutError", "HTTPStatusError"]
             and results[11].response.status_code == 503)
labkit.claim("never more than three requests at once, and three at some point",
             max_concurrent(by_workers.spans) == 3)
bar = max(by_workers.spans, key=lambda span: span.end - span.start)   # the hung request's
labkit.claim("the hung 11th URL started once 8 others had ended; it held its worker 0.9 s+",
             sum(s.end <= bar.start for s in by_workers.spans) >= 8 and bar.end - bar.start >= 0.9)
compare_timelines({"a task per URL, in a TaskGroup": at_once.spans,
                   "three workers on a Queue": by_workers.spans})

# %% [markdown]
# Each worker's row is a chain of requests, one after another; the long bar is the hung
# request, cut at 1 s. The `TaskGroup`'s ten requests wait together, for one latency. Taken in
# order from the queue, the hung URL, the eleventh, starts in the last round and holds its
# worker the whole second. The other usual limit is a `Semaphore`, as in Fluent Python's
# `flags2_asyncio`: `async with semaphore:` around each request lets at most `limit` in at once.

# %% [markdown]
# ## Sitting 2 of 3 (about 25 minutes) — a good place to stop
#
# The second of this lesson's three sittings starts here. Coming back to a fresh kernel?
# Select the cell below and choose **Run → Run All Above Selected Cell** first: this part
# uses the imports and servers of the cells above.

# %% [markdown]
# ## When one task fails, who stops the others?
#
# Three jobs: A and C take 0.5 s, B fails after 0.05 s. Each notes in `log` how it ended.
# Cancelling a task raises `CancelledError` inside it, at the `await` where it waits. So
# `job` can see it, note it, and let it go on up with a bare `raise`.

# %%
async def job(name, seconds, log, fails=False):
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        log[name] = "cancelled"
        raise                                    # always let a cancel go on up
    if fails:
        log[name] = "failed"
        raise RuntimeError(f"{name} failed")
    log[name] = "done"

def three_jobs(log):
    return [job("A", 0.5, log), job("B", 0.05, log, fails=True), job("C", 0.5, log)]

# %% [markdown]
# Five ways to run them. `asyncio.wait` and `as_completed` tell you as jobs end, and leave the
# rest to you.

# %%
async def plain_gather(log):
    await asyncio.gather(*three_jobs(log))

async def gather_return_exceptions(log):
    await asyncio.gather(*three_jobs(log), return_exceptions=True)

async def task_group(log):
    async with asyncio.TaskGroup() as group:
        for coro in three_jobs(log):
            group.create_task(coro)

async def wait_first_exception(log):
    tasks = [asyncio.create_task(coro) for coro in three_jobs(log)]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in pending:
        task.cancel()                            # wait() cancels nothing by itself
    await asyncio.gather(*pending, return_exceptions=True)     # let them end
    for task in done:
        task.result()                            # raises B's error

async def as_completed_loop(log):
    for next_one in asyncio.as_completed(three_jobs(log)):
        await next_one                           # raises when B's failure comes up

WAYS = [plain_gather, gather_return_exceptions, task_group, wait_first_exception,
        as_completed_loop]

# %% [markdown]
# `asyncio_lab.how_it_ended` runs one way and notes what it raised, how A and C stood when
# it returned, and how they stood 0.6 s later. A job that has not ended is `running`.

# %%
labkit.show(asyncio_lab.how_it_ended)

# %% [markdown]
# The five run side by side, each on its own log. A loop starved for 0.45 s could let A and C
# finish before B's failure is seen, so the run takes up to three tries (a `Rounds`, which is
# a `labkit.Timing`; `run_in_new_loop` gives each try a loop of its own, as shown later).

# %%
EXPECTED = {  # what the call raised; how A stood when it returned; and 0.6 s later
    "plain_gather": ("RuntimeError", "running", "done"),
    "gather_return_exceptions": ("nothing", "done", "done"),
    "task_group": ("ExceptionGroup", "cancelled", "cancelled"),
    "wait_first_exception": ("RuntimeError", "cancelled", "cancelled"),
    "as_completed_loop": ("RuntimeError", "running", "done"),
}
def as_expected(endings):
    return all(e.summary(job) == EXPECTED[e.way] for e in endings for job in "AC")

endings = asyncio_lab.Rounds(
    {"five ways": partial(run_in_new_loop, asyncio_lab.all_endings, WAYS, ["A", "B", "C"])},
    expect=as_expected, rounds=3, seconds=10)
endings.claim("each way ended as EXPECTED says, for A and for C",
              lambda t: t.most("five ways", "as expected"), above=0.5)
for ending in endings.last["five ways"]:
    print(ending.text())

# %% [markdown]
# * **Plain `gather`** raised B's error at once, and A and C ran on: nothing awaits them any
#   more. `as_completed` does the same, and so does gevent's `joinall(..., raise_error=True)`.
# * **`gather(..., return_exceptions=True)`** raised nothing: each result, B's error too, is
#   in the list it returns, once all three have ended.
# * **`TaskGroup`** cancelled A and C, waited for them, and raised an `ExceptionGroup`.
# * **`asyncio.wait`** returned at the failure; the cancelling was our code's job.
#
# Choose by what one failure means: a page of results useless without all of them (a
# `TaskGroup`), or results that stand alone (`return_exceptions=True`).
#
# The `TaskGroup` is *structured concurrency*. No task outlives the block that started it, and
# an error cancels the rest. asyncio took the idea from Trio's *nurseries*, by way of
# EdgeDB's task group. anyio, installed here because httpx uses it, brings Trio's task groups
# and *cancel scopes* to asyncio programs: `async with anyio.create_task_group() as tg:`.

# %% [markdown]
# ## Never swallow `CancelledError`
#
# A cancel only *asks*: the task gets `CancelledError` where it waits, and may clean up, but
# must then let it go on up. Since Python 3.8, `CancelledError` is a `BaseException`, not an
# `Exception`, so `except Exception` lets it through. The trap is code that catches it and
# carries on: `except BaseException`, a bare `except:`, or `except CancelledError: pass`.
# Here is a retry loop with that bug, beside a polite task.

# %%
async def stubborn(attempts):
    for _ in range(3):                           # up to three attempts
        try:
            await asyncio.sleep(0.2)
            attempts.append("done")
        except BaseException:                    # the bug: the cancel is caught and dropped
            attempts.append("cancel ignored")

async def polite(attempts):
    try:
        await asyncio.sleep(0.6)
    except asyncio.CancelledError:
        attempts.append("cleaned up")
        raise                                    # the cancel goes on up

async def fails_soon(attempts):
    await asyncio.sleep(0.05)
    raise RuntimeError("failed")

# %% [markdown]
# Each runs under `asyncio.timeout(0.1)`, then in a `TaskGroup` beside a task that fails after
# 0.05 s.

# %%
async def under_timeout(task):
    attempts = []
    try:
        async with asyncio.timeout(0.1):
            await task(attempts)
        return "no TimeoutError", attempts
    except TimeoutError:
        return "TimeoutError", attempts

async def beside_a_failure(task):
    attempts = []
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(task(attempts))
            group.create_task(fails_soon(attempts))
    except* RuntimeError:
        attempts.append("ExceptionGroup")        # the group raised, at last
    return attempts

labkit.claim("CancelledError is a BaseException, not an Exception",
             not issubclass(asyncio.CancelledError, Exception))
labkit.claim("polite: the timeout raised TimeoutError; the group cancelled it at once",
             await under_timeout(polite) == ("TimeoutError", ["cleaned up"])
             and await beside_a_failure(polite) == ["cleaned up", "ExceptionGroup"])
ignored = ["cancel ignored", "done", "done"]    # sorted: which attempt ate it may vary
timed, grouped = await under_timeout(stubborn), await beside_a_failure(stubborn)
labkit.claim("stubborn: timeout(0.1) raised no TimeoutError, and all three attempts ran",
             timed[0] == "no TimeoutError" and sorted(timed[1]) == ignored)
labkit.claim("stubborn: the TaskGroup could not stop it; it raised only after all three",
             sorted(grouped[:3]) == ignored and grouped[3:] == ["ExceptionGroup"])

# %% [markdown]
# The stubborn task ate the cancel, so the `TaskGroup` waited for all three attempts.
# `asyncio.timeout` only turns a `CancelledError` that reaches the end of its block into a
# `TimeoutError`; none came, so it raised nothing, as if there had been no timeout at all.
#
# Some work must finish even when its caller is cancelled: writing a file, committing a
# transaction. If the caller is cancelled, its `await asyncio.shield(task)` raises
# `CancelledError`, but the task runs on. Keep a reference to that task: it is the only way to
# learn how it ended.

# %%
async def save(log):
    await asyncio.sleep(0.3)
    log.append("saved")

log = []
saving = asyncio.create_task(save(log))          # a reference, kept
try:
    async with asyncio.timeout(0.1):
        await asyncio.shield(saving)
except TimeoutError:
    log.append("the wait timed out")
await saving
labkit.claim("the wait timed out, and the shielded save still finished after it",
             log == ["the wait timed out", "saved"])

# %% [markdown]
# ## Keep a reference to every task
#
# The asyncio documentation warns, under `create_task`: "Save a reference to the result of
# this function, to avoid a task disappearing mid-execution. The event loop only keeps weak
# references to tasks." A task is also held by what it waits for. A timer holds a sleeping
# task; a Future holds a task waiting for it, through its done callback. But a Future that
# nothing else holds, waited for by a task that nothing else holds, is a cycle of garbage.
# Python's garbage collector (`gc`) may destroy both at any moment. Three tasks, one with a
# reference kept.

# %%
import gc
import weakref

async def waits_for_a_signal(log):
    signal = asyncio.get_running_loop().create_future()   # held by this task only
    try:
        await signal
    except BaseException as ending:              # note how it ended, and let it go on up
        log.append(type(ending).__name__)
        raise

# %%
loop = asyncio.get_running_loop()
lost, complaints = [], []
previous = loop.get_exception_handler()
loop.set_exception_handler(lambda loop, context: complaints.append(context["message"]))
try:
    asyncio.create_task(waits_for_a_signal(lost), name="no reference")
    asyncio.create_task(asyncio.sleep(1), name="no reference, asleep")
    kept = asyncio.create_task(waits_for_a_signal([]), name="kept")
    await asyncio.sleep(0)                       # all three start, and wait
    gc.collect()                                 # as Python may do at any moment
finally:
    loop.set_exception_handler(previous)
alive = {task.get_name() for task in asyncio.all_tasks()}
kept.cancel()                                    # done with it
labkit.claim("the loop keeps its tasks in a WeakSet", isinstance(asyncio.tasks._all_tasks,
                                                             weakref.WeakSet))
labkit.claim("the task with no reference was destroyed while it waited; the others live",
             "no reference" not in alive and {"kept", "no reference, asleep"} <= alive
             and complaints == ["Task was destroyed but it is pending!"])
labkit.claim("its coroutine was closed (GeneratorExit), never cancelled", lost == ["GeneratorExit"])

# %% [markdown]
# The sleeping task survived: the loop's timer holds it. The lost task was never cancelled;
# Python closed its coroutine, and the loop only logged a complaint. In real code the Future
# sits inside an object, a connection or a queue, that only the task still refers to. Keep
# every task you start: in a `TaskGroup`, in a set you remove it from when it ends, or in a
# variable you await.

# %% [markdown]
# ## A stream handler that floods, and one that drains
#
# `asyncio.start_server(handler, host, port)` calls `handler(reader, writer)` in a task of
# its own for each client: lesson 06's one-greenlet-per-client server, on asyncio. Sending
# has a trap. `writer.write(data)` never waits: what the socket will not take now stays in
# the transport's buffer, in memory. When a write takes that buffer above the *high-water
# mark* (64 KiB by default), the transport pauses the stream. It resumes it once the buffer is
# down to the *low-water mark* (16 KiB by default). `await writer.drain()` returns at once
# while the stream is not paused, and waits while it is. Here is your handler, with and
# without it.

# %%
async def send_fast(reader, writer, drain):
    """Write 16 KiB each millisecond or so; with drain, wait too while the stream is paused."""
    while True:
        writer.write(b"x" * 16_384)               # never waits: the rest is buffered
        if drain:
            await writer.drain()                  # paused above 64 KiB: waits until 16 KiB
        await asyncio.sleep(0.001)

# %% [markdown]
# `asyncio_lab.buffer_growth` serves one client that reads 4 KiB every 10 ms with your
# handler, for half a second, and samples the handler's buffer.

# %%
labkit.show(asyncio_lab.buffer_growth)

# %% [markdown]
# How far the buffer grows depends on how often the loop gets the CPU, so the two handlers
# take turns, up to four rounds.

# %%
buffers = asyncio_lab.Rounds(
    {"write() only": partial(run_in_new_loop, asyncio_lab.buffer_growth,
                             partial(send_fast, drain=False)),
     "write() + await drain()": partial(run_in_new_loop, asyncio_lab.buffer_growth,
                                        partial(send_fast, drain=True))},
    measure=lambda run: {"peak": run.peak}, rounds=4, seconds=8)
labkit.claim("the limits: a low-water mark of 16 KiB, a high-water mark of 64 KiB",
             all(run.limits == (16 * 1024, 64 * 1024) for run in buffers.last.values()))
buffers.claim("without drain, over 1 MB piled up in half a second",
              lambda t: t.most("write() only", "peak"), above=1_000_000)
labkit.claim("with drain, never more than 64 KiB plus the write that crossed it, in any run",
             max(buffers.values("write() + await drain()", "peak")) <= 64 * 1024 + 16_384)
asyncio_lab.plot_growth({name: run.series for name, run in buffers.last.items()},
                        title="the handler's transport buffer")

# %% [markdown]
# ## Sitting 3 of 3 (about 40 minutes) — a good place to stop
#
# The third of this lesson's three sittings starts here. Coming back to a fresh kernel?
# Select the cell below and choose **Run → Run All Above Selected Cell** first: this part
# uses the imports and servers of the cells above.

# %% [markdown]
# ## Bridges between threads and the loop
#
# A task gives the loop a turn only at an `await` that suspends it. A blocking call
# (`time.sleep`, a blocking socket, a long computation) holds the loop's one thread, and
# every other task waits. `await asyncio.to_thread(f, *args)` runs `f` in a worker thread
# and awaits its end. Task 1 blocks for 0.2 s, or hands the same sleep to a thread, while
# Tasks 2 and 3 want to wake every 50 ms. `AsyncioTrace` records each task's steps.

# %%
async def ticks():
    for _ in range(5):
        await asyncio.sleep(0.05)

async def task_1(how):
    if how == "time.sleep":
        time.sleep(0.2)                          # holds the loop's one thread
    else:
        await asyncio.to_thread(time.sleep, 0.2) # a worker thread sleeps; the loop goes on

async def traced(how):
    with AsyncioTrace() as trace:
        await asyncio.gather(asyncio.create_task(task_1(how), name="Task 1"),
                             *(asyncio.create_task(ticks(), name=f"Task {i}") for i in (2, 3)))
    return trace.spans

def longest_wait(spans):                         # of Tasks 2 and 3, which ask for 50 ms
    return {"wait": max(s.length for s in spans if s.task != "Task 1" and s.state == "waiting")}

# %%
blocking = asyncio_lab.Rounds({how: partial(run_in_new_loop, traced, how)
                               for how in ("time.sleep", "to_thread")},
                              measure=longest_wait, rounds=4, seconds=8)
blocking.claim("time.sleep(0.2): the others, asking for 50 ms, waited over 0.15 s",
               lambda t: t.best("time.sleep", "wait"), above=0.15)
blocking.claim("asyncio.to_thread: none of them waited over 0.1 s",
               lambda t: t.best("to_thread", "wait"), below=0.1)
compare_timelines({f"Task 1 with {how}": spans for how, spans in blocking.last.items()})

# %% [markdown]
# `to_thread` is `loop.run_in_executor` with the loop's default thread pool. For heavy
# computing, give `run_in_executor` a process pool (lesson 10): a thread that computes holds
# Python's interpreter lock most of the time.
#
# The other way, plain code that needs a coroutine's result, is what `run_in_new_loop` does
# for the `Rounds` above. A new thread has no loop, so `asyncio.run` may make one there.

# %%
labkit.show(run_in_new_loop)

# %% [markdown]
# A loop that runs for good in a thread of its own takes coroutines from any thread.
# `asyncio.run_coroutine_threadsafe(coro, loop)` hands it one and returns a
# `concurrent.futures.Future`, whose `result()` blocks the caller until it is done.
# `loop.call_soon_threadsafe(f, *args)` asks the loop to call `f`. Almost no asyncio object is
# thread-safe: from another thread, reach a loop through these two, which also wake it.

# %%
class LoopThread:
    """An event loop of its own, in a thread of its own, until stop()."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="loop thread")
        self.thread.start()

    def run(self, coro, timeout=10):             # from any thread but the loop's own
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)   # run_forever returns
        self.thread.join()
        self.loop.close()

async def where_am_i():
    await asyncio.sleep(0.01)
    return threading.current_thread().name

other = LoopThread()
ran_in = other.run(where_am_i())                 # a plain call: this cell waits for it
other.stop()
labkit.claim("the coroutine ran on the other loop, in its thread", ran_in == "loop thread")

# %% [markdown]
# A thread hands a result to a coroutine the same way: it asks the loop to set a Future that
# the coroutine awaits. `to_thread` works so underneath.

# %%
async def result_from_a_thread():
    loop = asyncio.get_running_loop()
    arrived = loop.create_future()

    def work():                                  # a plain thread: blocking is fine here
        time.sleep(0.1)
        loop.call_soon_threadsafe(arrived.set_result, threading.current_thread().name)

    threading.Thread(target=work, name="worker").start()
    return await arrived

labkit.claim("the worker thread's result reached the coroutine through the loop",
             await result_from_a_thread() == "worker")

# %% [markdown]
# What goes wrong is waiting in the wrong thread. `asyncio.run` inside a running loop raises
# `RuntimeError`, as the start of this lesson showed. Worse, the loop's own thread may block
# waiting for work it gave that loop: the loop cannot run while its thread waits. A deadlock,
# here cut short by a timeout.

# %%
kernel_loop = asyncio.get_running_loop()
given = asyncio.run_coroutine_threadsafe(where_am_i(), kernel_loop)    # to our own loop
try:
    given.result(timeout=0.5)                    # blocks the very thread that must run it
    outcome = "finished"
except TimeoutError:
    outcome = "timed out"
given.cancel()
labkit.claim("waiting in the loop's thread for work on that loop timed out: a deadlock",
             outcome == "timed out")

# %% [markdown]
# Which bridge, when:
#
# * A coroutine that must make a blocking call: `await asyncio.to_thread(f, ...)`.
# * A coroutine with heavy computing: `await loop.run_in_executor(process_pool, f, ...)`.
# * Plain code, with no loop in its thread, that needs a coroutine's result: `asyncio.run`.
# * Another thread that needs a coroutine run on a loop: `run_coroutine_threadsafe`.
# * Another thread that needs a call made on a loop: `loop.call_soon_threadsafe`.
# * The loop's own thread, blocking until that loop does something: never, a deadlock.

# %% [markdown]
# ## Async generators and async context managers
#
# An `async def` with a `yield` in it is an *async generator*: `async for` takes its items
# one at a time, and it may `await` between them. `async with client.stream("GET", url)`
# opens a response once its headers are in, and closes it at the end of the block.
# `response.aiter_bytes()` yields the body in pieces as they arrive, so a large body never
# sits in memory whole. Here is your generator of pieces, and the 479 KB page read through it.

# %%
async def pieces(client, url, log):
    async with client.stream("GET", url) as response:    # the headers are in
        log.append("opened")
        try:
            async for piece in response.aiter_bytes():  # each piece as it arrives
                yield piece
        finally:
            log.append("closed")                 # then the async with closes the response

BIG = (PAGES / "page-479k.html").read_bytes()
big_url = f"{BASE}/page-479k.html?delay=0.05"
async with httpx.AsyncClient(trust_env=False) as client:
    log, sizes, whole = [], [], hashlib.sha256()
    async for piece in pieces(client, big_url, log):
        sizes.append(len(piece))
        whole.update(piece)
labkit.claim("the page came in several pieces of at most 64 KiB, and whole (SHA-256)",
             len(sizes) > 1 and max(sizes) <= 64 * 1024
             and whole.digest() == hashlib.sha256(BIG).digest())
labkit.claim("the generator opened the response and closed it at the end",
             log == ["opened", "closed"])

# %% [markdown]
# A consumer that stops early (`break`) leaves the generator suspended at its `yield`, and
# the response open. `await stream.aclose()` raises `GeneratorExit` at that `yield`, so the
# `finally` and the `async with` run. Without it, asyncio closes a forgotten generator only
# once it is garbage, in a task the loop starts later, or when `asyncio.run` ends.

# %%
async with httpx.AsyncClient(trust_env=False) as client:
    log = []
    stream = pieces(client, big_url, log)
    async for _ in stream:
        break                                    # one piece is all we wanted
    after_break = list(log)
    await stream.aclose()                        # GeneratorExit at the yield
labkit.claim("after the break the response was still open; aclose() closed it",
             after_break == ["opened"] and log == ["opened", "closed"])

# %% [markdown]
# `contextlib.aclosing(generator)` calls `aclose()` for you at the end of an `async with`.
# It is a small *async context manager*; `contextlib.asynccontextmanager` writes one from an
# async generator: the code before its `yield` is the way in, the code after it the way out.

# %%
from contextlib import aclosing, asynccontextmanager

@asynccontextmanager
async def closing_at_the_end(generator):
    try:
        yield generator                          # the body of the async with runs here
    finally:
        await generator.aclose()                 # a way out that awaits: why it is async

async with httpx.AsyncClient(trust_env=False) as client:
    for closer in (closing_at_the_end, aclosing):
        log = []
        async with closer(pieces(client, big_url, log)) as stream:
            async for _ in stream:
                break
        labkit.claim(f"{closer.__name__}: the response closed when the block ended",
                     log == ["opened", "closed"])
server.stop()
labkit.claim("the server stopped", not server.alive)

# %% [markdown]
# ## Summary
#
# * asyncio is lesson 05's design; in Jupyter, `await` at the top of a cell.
# * A `TaskGroup` waits for all its tasks; workers on a `Queue` bound how many run at once.
# * When one task fails, only a `TaskGroup` cancels the others for you.
# * Let `CancelledError` go on up; `shield` what must finish; keep a reference to each task.
# * `write()` never waits; `await writer.drain()` keeps a writer at its reader's pace.
# * `to_thread` takes blocking work off the loop; `run_coroutine_threadsafe` and
#   `call_soon_threadsafe` reach a loop from another thread.
# * An async generator streams data; close it with `aclose()` or `aclosing`.
#
# The appendix, [13 · What an echo costs](13_appendix_echo_costs.ipynb), weighs echo servers
# on asyncio, uvloop, selectors and gevent by their system calls and CPU per round trip.

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
# **Exercise 1.** Write `async def first_answer(urls)`: request every URL at once with
# `httpx.AsyncClient`, and return the body (bytes) of the first response to arrive. Before it
# returns, cancel the requests still running: none of its tasks may be left running.

# %%
async def first_answer(urls):
    ...   # your code here

check(1, first_answer)

# %% [markdown]
# **Exercise 2.** `lookup(name)` is a blocking function: it takes 0.2 s, as a DNS query or a
# database call does, and returns a string. Write `async def lookup_all(names, lookup)` that
# returns `[lookup(name) for name in names]`, in that order, with every lookup running at the
# same time and the event loop never held.

# %%
async def lookup_all(names, lookup):
    ...   # your code here

check(2, lookup_all)

# %% [markdown]
# **Exercise 3.** `chunks` is an async generator of `bytes`: a text cut into pieces anywhere,
# even inside a line. Write an async generator `async def lines(chunks)` that yields each line
# of the text (bytes ending in `b"\n"`; the last may lack it) as soon as it is complete. If its
# consumer stops early and calls `aclose()` on it, `chunks` must be closed too before
# `aclose()` returns.

# %%
async def lines(chunks):
    ...   # your code here

check(3, lines)
