# %% [markdown]
# # 05 · The event-driven model, measured, and an event loop from scratch
#
# A server can give each request its own process or its own thread. Or it can handle every
# request in one thread with an **event loop**. That is a loop that waits for *events* (this
# socket is readable, that timer is due) and runs the piece of code that was waiting for each.
#
# This lesson measures the three models instead of drawing them by hand. It shows when the
# event loop does *not* help, and then builds one from scratch in three small steps.
#
# **After this lesson you can**
# * explain the difference between polling and waiting for events, with CPU time to prove it.
# * read the classic three-model figure (sequential, threads, event loop), drawn from real
#   runs.
# * say when an event loop gains nothing (CPU-bound work) and show it.
# * write an event loop: callbacks on a selector, then generator tasks, then Futures and Tasks
#   with `async`/`await`.
#
# **Time:** about 70 minutes: 50 reading and running, 20 exercises; sittings of 30 + 40.

# %%
import hashlib
import queue
import subprocess
import sys
import threading
import time
from urllib.request import urlopen

import matplotlib.pyplot as plt

import labkit
from labkit.clients import files
from labkit.eventloop import callbacks, futures, generators, models
from labkit.eventloop.models import work
from labkit.timeline import compare_timelines, duration

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

PAGE = labkit.DATA / "pages" / "page-48k.html"
PAGE_SHA = hashlib.sha256(PAGE.read_bytes()).hexdigest()

# %% [markdown]
# ## Polling or waiting: the mouse-click story
#
# A program with a user interface must react to clicks and key presses. The naive way is to
# **poll**: check again and again whether something happened. The event-driven way: events go
# into a **queue**, and one loop takes them out and calls the **handler** registered for each
# kind (`on_click`, `on_key`). While the queue is empty, that loop sleeps.
#
# Below, a "user" thread produces the same 20 events, 20 ms apart, for both versions. We
# measure the CPU time the consuming loop uses (`time.thread_time`) against the wall time.

# %%
def user(events, n=20, gap=0.02):
    """The outside world: a click or a key press every `gap` seconds, then quit."""
    for i in range(n):
        time.sleep(gap)
        events.put(("click", i) if i % 2 else ("key", i))
    events.put(("quit", None))

def make_handlers(log):
    return {"click": lambda i: log.append(f"on_click {i}"),
            "key": lambda i: log.append(f"on_key {i}")}

def polling_loop(events, handlers):
    while True:
        if events.empty():
            continue                      # nothing yet: ask again, right away
        kind, data = events.get_nowait()
        if kind == "quit":
            return
        handlers[kind](data)

def event_loop(events, handlers):
    while True:
        kind, data = events.get()         # sleeps until an event arrives
        if kind == "quit":
            return
        handlers[kind](data)              # dispatch to the registered handler

# %% [markdown]
# Each loop handles the same user's events while we count its CPU time and the wall time:

# %%
def measure(loop_function):
    events, log = queue.Queue(), []
    producer = threading.Thread(target=user, args=(events,))
    cpu, wall = time.thread_time(), time.perf_counter()
    producer.start()
    loop_function(events, make_handlers(log))
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    producer.join()
    return log, cpu, wall

poll_log, poll_cpu, poll_wall = measure(polling_loop)
event_log, event_cpu, event_wall = measure(event_loop)
print("first ones:", event_log[:4])
labkit.claim("both handled the same 20 events in the same order",
             poll_log == event_log and len(event_log) == 20)
cpu_times = f"polling {poll_cpu:.3f} s, event loop {event_cpu:.3f} s of {event_wall:.3f} s"
labkit.claim("polling used over 10 times the CPU time of the event loop",
             poll_cpu > 10 * event_cpu, measured=cpu_times)
labkit.claim("the event loop slept (CPU under 10% of the wall time)",
             event_cpu < 0.1 * event_wall, measured=cpu_times)

fig, ax = plt.subplots(figsize=(6, 2))
ax.barh(["event queue", "polling"], [100 * event_cpu / event_wall, 100 * poll_cpu / poll_wall],
        color=["#1f77b4", "#ff7f0e"])
ax.set_xlim(0, 100)
ax.set_xlabel("CPU used while waiting for 20 events (% of one core)")
plt.show()

# %% [markdown]
# Same events, same handlers, same result. But the polling loop spent CPU the whole time it
# waited. On a busy machine it gets less than a whole core, but it takes all it gets. The event
# loop's `events.get()` asks the operating system to wake it when there is something to do. For
# sockets, that question is `select`, `poll` or `epoll`: "wake me when one of these is ready".
#
# ## Three tasks, three models, one time axis
#
# Three tasks each compute a little, wait for a slow server, and compute a little more. The
# server is the `latency_http` server of lesson 04, with waits of 0.3, 0.2 and 0.1 s. We run
# the tasks (a) one after another, (b) one thread each, (c) as coroutines on a small event
# loop. We will build that loop ourselves later in this lesson. The two versions of the task
# differ only where they wait:

# %%
WAITS = {"Task 1": 0.3, "Task 2": 0.2, "Task 3": 0.1}
COMPUTE = 0.02                     # seconds of CPU work before and after the wait

def url_for(name):
    return f"http://{server.host}:{server.port}/pages/{PAGE.name}?delay={WAITS[name]}"

def blocking_task(rec, name):
    work(rec, name, COMPUTE)
    with rec.span(name, "waiting"):
        with urlopen(url_for(name), timeout=30) as response:   # blocks this thread
            body = response.read()
    work(rec, name, COMPUTE)
    return body

async def loop_task(loop, rec, name):
    work(rec, name, COMPUTE)
    with rec.span(name, "waiting"):
        body = await futures.fetch(loop, url_for(name))       # suspends only this task
    work(rec, name, COMPUTE)
    return body

# %% [markdown]
# `work` does a fixed amount of arithmetic. It records when its thread really ran (blue). It
# also records when the thread was stopped for over a millisecond (grey), the way waiting for
# the server is grey. The runners start the same task one after another, on a thread each, or
# as Tasks on one loop:

# %%
labkit.show(models)

# %% [markdown]
# `labkit.Timing` (lesson 01) runs the three models in turns. The server lives in a `with`
# block, so this cell can be run again (exercise 2 does):

# %%
RUNNERS = {"sequential": (models.run_sequential, blocking_task),
           "threads": (models.run_threads, blocking_task),
           "event loop": (models.run_event_loop, loop_task)}
every_run = {model: [] for model in RUNNERS}          # each run's (bodies, spans)

def one_model(model):
    def run_once():
        runner, task = RUNNERS[model]
        every_run[model].append(runner(task, WAITS))
        return {"total": duration(every_run[model][-1][1])}
    return run_once

shorter = sum(WAITS.values()) - max(WAITS.values())      # the waits besides the longest one
with labkit.serve("latency_http") as server:
    timing = labkit.Timing({model: one_model(model) for model in RUNNERS}, rounds=3, seconds=15)
    timing.claim("sequential takes at least the sum of the waits",
                 lambda t: t.best("sequential", "total"), above=sum(WAITS.values()))
    for model in ("threads", "event loop"):
        timing.claim(f"{model}: at least half the shorter waits' time saved",
                     lambda t, m=model: t.best("sequential", "total") - t.best(m, "total"),
                     above=0.5 * shorter)
labkit.claim("every page verified (SHA-256)",
             all(hashlib.sha256(b).hexdigest() == PAGE_SHA for model_runs in every_run.values()
                 for bodies, _ in model_runs for b in bodies))
totals = {model: timing.best(model, "total") for model in RUNNERS}
compare_timelines({model: model_runs[0][1] for model, model_runs in every_run.items()})

# %% [markdown]
# * **Sequential:** each task's wait holds everything up; the total is the sum. The other two
#   models wait for all three replies at once, which saves most of the two shorter waits.
# * **Threads:** the operating system runs another thread while one waits. The waits overlap;
#   the computing does not. Where two threads want to compute at once, one is grey. That is
#   because CPython's interpreter lock (the GIL, more below) lets one thread at a time run
#   Python code. The cost is a thread per task. And data they share needs a lock, because where
#   a thread is switched out is not written in the code (lesson 01).
# * **Event loop:** one thread. A task that must wait registers interest in its socket and
#   gives control back; the loop runs whatever is ready. The waits overlap just as well. A task
#   is switched out only at an `await`. So an update with no `await` inside it needs no lock;
#   one with an `await` inside it does (lesson 01, property 2).
#
# In no row do two tasks compute at the same moment; the next cell checks that for the threads.

# %%
def computing_at_once(spans, slack=0.002):
    """The most tasks whose running spans overlap by more than ``slack`` seconds."""
    running = [s for s in spans if s.state == "running" and s.length > slack]
    return max((sum(1 for r in running if r.task != s.task and r.start + slack < s.end
                    and s.start + slack < r.end) + 1 for s in running), default=0)

_ = labkit.claim("no two threads computed at the same moment, in any run",
                 all(computing_at_once(spans) == 1 for _, spans in every_run["threads"]),
                 measured=str([computing_at_once(spans) for _, spans in every_run["threads"]]))

# %% [markdown]
# ## The honest counter-example: work that never waits
#
# An event loop overlaps *waiting*. Give the same three models three tasks that only compute
# (no I/O) and watch the gain disappear. Each task is one call of `work`, about 0.1 s of CPU
# time on this machine, and reports the CPU time its thread used (`time.thread_time()`).

# %%
def cpu_task(rec, name):
    cpu_start = time.thread_time()
    work(rec, name, 0.1)
    return time.thread_time() - cpu_start

async def cpu_coroutine(loop, rec, name):
    return cpu_task(rec, name)         # never awaits anything: the loop cannot switch

# %% [markdown]
# Wall time is at the mercy of whatever else this machine runs, and so is CPU time: beside a
# neighbour we measured the same work take up to 1.9 times as much CPU time in one round of
# this cell as in another. So `labkit.Timing` runs the three models in rounds, back to back,
# at least seven rounds. In each round a model's wall time is divided by the CPU time the
# *sequential* run needed for the same work in that round, and a claim is judged on the median
# of those ratios. `cpu_trials.model_ways` makes one way per model and keeps every run for the
# figures:

# %%
from labkit.eventloop import cpu_trials

labkit.show(cpu_trials.model_ways)

# %%
NAMES = list(WAITS)
ways, cpu_runs = cpu_trials.model_ways(cpu_task, cpu_coroutine, NAMES)
timing = labkit.Timing(ways, least_rounds=7, rounds=10, seconds=25)
PAIRED = timing.median_of_rounds   # how the two claims below are judged

def wall_over_work(t, model):
    """In each round, the model's wall time / the sequential run's CPU time; their median."""
    return t.median_ratio((model, "duration"), ("sequential", "thread cpu"))

labkit.claim("threads used at most one core's worth of CPU between them, in every run",
             timing.most("threads", "cores") < 1.2, measured=str(timing.values("threads", "cores")))
timing.claim("threads took no less time than the work alone (80% or more)",
             lambda t: wall_over_work(t, "threads"), above=0.8, judged_on=PAIRED)
labkit.claim("the event loop ran the tasks one after another, in every run",
             all(cpu_trials.one_after_another(spans, NAMES) for spans, _ in cpu_runs["event loop"]))
timing.claim("the event loop took no less time than the work alone (80% or more)",
             lambda t: wall_over_work(t, "event loop"), above=0.8, judged_on=PAIRED)

shown = cpu_trials.quietest(cpu_runs)              # draw the round the machine was quietest
compare_timelines({model: spans for model, (spans, _) in shown.items()})

# %% [markdown]
# Blue is a thread running, grey a thread stopped. The figure shows the round in which this
# machine was quietest. Any grey in the sequential row is its one thread stopped by something
# else: another program, or another thread of this kernel.
#
# The three threads take turns, because CPython's interpreter lock (the GIL) lets one thread at
# a time run Python code. A thread that wants it asks the holder to let go after the *switch
# interval* (printed below). The lock costs the parallelism of several cores: with it, the
# total stays that of the work done one after another. Here is what each thread got, from
# `time.thread_time()` inside the thread:

# %%
print(f"sys.getswitchinterval(): {sys.getswitchinterval() * 1000:g} ms")

took_turns = [all(a > 1.5 * c for a, c in zip(*cpu_trials.alive_and_cpu(run, NAMES)))
              for run in cpu_runs["threads"]]
labkit.claim("every thread was alive more than 1.5 times the CPU time it got, in at least half "
             "the runs", sum(took_turns) >= len(took_turns) / 2, measured=str(took_turns))

alive, cpu_each = cpu_trials.alive_and_cpu(shown["threads"], NAMES)
fig, ax = plt.subplots(figsize=(7, 2.2))
rows = range(len(WAITS))
ax.barh([r + 0.2 for r in rows], [a * 1000 for a in alive], height=0.4, color="#c7c7c7",
        label="alive (first to last slice)")
ax.barh([r - 0.2 for r in rows], [c * 1000 for c in cpu_each], height=0.4, color="#1f77b4",
        label="CPU time it got")
ax.set_yticks(list(rows), list(WAITS))
ax.invert_yaxis()
ax.set_xlabel("milliseconds")
ax.set_title("the threads of the round drawn above", loc="left", fontsize=10)
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
plt.show()

# %% [markdown]
# Each thread was alive far longer than the CPU time it got. The three together got no more
# than one core gives (the counter-example's first claim): with the interpreter lock, more
# threads bring no more CPU to Python code. The event loop runs the three computations one
# after another: nothing waits, so there is nothing to overlap. For CPU-bound work you need
# more processes (more cores), not more concurrency.

# %% [markdown]
# ## Sitting 2 of 2 (about 40 minutes) — a good place to stop
#
# The second of this lesson's two sittings starts here. Coming back to a fresh kernel? Select
# the cell below and choose **Run → Run All Above Selected Cell** first. This part uses
# `labkit`, `PAGE` and `PAGE_SHA` from the first code cell.

# %% [markdown]
# ## An event loop from scratch, in three steps
#
# Each step is a short module in `labkit.eventloop`, and runs from the command line. Each one
# fetches 20 pages (0.2 s each) from the latency server at once, on one thread.
#
# ### Step 1: callbacks on a selector
# Sockets are non-blocking, so no call on them ever waits: only the loop waits, in the selector.
# Each socket is registered with the selector together with the function to call when it is
# ready. The loop asks "who is ready?" and calls those functions.

# %%
labkit.show(callbacks)

# %%
server = labkit.serve("latency_http")        # for the three steps; stopped after them
urls = [f"http://{server.host}:{server.port}/pages/{PAGE.name}?delay=0.2&id={i}"
        for i in range(20)]

def timed(fetch_many):
    started = time.perf_counter()
    bodies = fetch_many(urls)
    elapsed = time.perf_counter() - started
    assert len(bodies) == 20 and all(hashlib.sha256(b).hexdigest() == PAGE_SHA for b in bodies)
    return elapsed

step1 = labkit.Timing(lambda: timed(callbacks.fetch_many), rounds=3, seconds=10)
_ = step1.claim("callbacks: 20 pages of 0.2 s, all verified, overlapped (under 1 s, not 4 s)",
                lambda t: t.best(), below=1.0)

# %% [markdown]
# It works, but one download is chopped into three methods, and its state lives in an object.
# Longer logic (retries, several requests in a row) gets hard to follow: "callback hell".
#
# ### Step 2: tasks are generators that yield what they wait for
# A download is now one function, written top to bottom like blocking code. Where it would
# block, it `yield`s `(socket, event)`; the loop resumes it when that socket is ready. This is
# lesson 01's scheduler, with a selector deciding who runs next.

# %%
labkit.show(generators)

# %%
step2 = labkit.Timing(lambda: timed(generators.fetch_many), rounds=3, seconds=10)
_ = step2.claim("generators: 20 pages of 0.2 s, all verified, overlapped (under 1 s, not 4 s)",
                lambda t: t.best(), below=1.0)

# %% [markdown]
# ### Between steps 2 and 3: `yield from`
# A task of step 2 is one generator. Cut it into parts (send a request, read a reply), and each
# part must be able to wait too. But a plain call cannot pass a wait up (lesson 01: generators
# are stackless).
#
# `yield from part()` can. It runs the sub-generator and hands each of its yields up to the
# loop. It sends each value from the loop back down, and evaluates to the part's return value.
# labkit's generator file clients (lesson 08) are written this way:

# %%
labkit.show(files.client_task)

# %% [markdown]
# In miniature: a message is a two-digit length and then that many bytes. `read_exactly` is the
# part that waits; `read_message` is built from two of them and never yields by itself. A
# stand-in for the loop feeds data in, chunk by chunk, whenever the task waits:

# %%
def read_exactly(n):
    """A part of a task: wait (yield) until n bytes have come in, then return them."""
    data = b""
    while len(data) < n:
        data += yield "need data"          # the loop sends the next chunk in here
    return data

def read_message():
    size = int((yield from read_exactly(2)).decode())
    return (yield from read_exactly(size))

def feed(task, chunks):
    """Stand-in for the loop: record each wait that reaches it, send the next chunk in."""
    waits = [next(task)]
    try:
        for chunk in chunks:
            waits.append(task.send(chunk))
    except StopIteration as done:
        return done.value, waits
    raise RuntimeError("the task still waits for data")

message, waits = feed(read_message(), [b"1", b"1", b"hello", b" world"])
print("message:", message, "| waits that reached the loop:", waits)
_ = labkit.claim("the whole message came out, and all four waits reached the loop",
                 message == b"hello world" and waits == ["need data"] * 4)

# %% [markdown]
# The four waits came from inside `read_exactly`, two calls down, and reached the loop through
# `yield from`. `await` is the same delegation: `await x` runs `x.__await__()`, an iterator
# (here a generator), and passes its yields up. Step 3's `Future.__await__` yields the Future
# itself, so that is what reaches whoever drives the coroutine:

# %%
answer = futures.Future()

async def wants_answer():
    return await answer

coro = wants_answer()
came_up = coro.send(None)                  # run to the first wait
answer.set_result(42)
try:
    coro.send(None)                        # resume: the await now returns 42
except StopIteration as done:
    result = done.value
labkit.claim("what came up through await is the Future itself", came_up is answer)
_ = labkit.claim("resumed, the await returned the Future's result, 42", result == 42)

# %% [markdown]
# ### Step 3: Futures and Tasks, so tasks can be `async def`
# A `Future` is a result that is not there yet. `await future` suspends the coroutine until the
# result is set. A `Task` drives one coroutine from Future to Future. The loop turns "socket
# ready" and "timer due" into finished Futures.
#
# Delegation was already there with `yield from`. What step 3 adds is *one kind of thing to
# wait for*. A socket, a timer and another task's result are all Futures, so a task can wait
# for any of them. And `async def` keeps coroutines apart from plain generators. This is
# asyncio in miniature.

# %%
labkit.show(futures)

# %%
step3 = labkit.Timing(lambda: timed(futures.fetch_many), rounds=3, seconds=10)
_ = step3.claim("futures: 20 pages of 0.2 s, all verified, overlapped (under 1 s, not 4 s)",
                lambda t: t.best(), below=1.0)

# %% [markdown]
# On the same loop, an echo server: one Task per connection. 500 clients (also Tasks on the
# same loop) connect, each waits 0.1 s, sends 4 KiB and checks the echo. Served one after
# another, the waits alone would take 50 s. Each client holds two sockets, its own and the
# server's end. `labkit.setup()` raised this process's open-file limit as far as it may go (to
# the hard limit). Where that is still too low, `fit_clients` runs fewer clients, and says so.

# %%
n_clients = labkit.fit_clients(500, per_client=2)

def serve_once():
    ok, echoed, took = futures.serve_clients(n_clients, b"0123456789abcdef" * 256, pause=0.1)
    return {"ok": ok, "echoed": echoed, "took": took}

echo = labkit.Timing(serve_once, rounds=3, seconds=20)
labkit.claim("every client got its exact 4 KiB back, in every run",
             set(echo.values(metric="ok")) == {n_clients}
             and set(echo.values(metric="echoed")) == {n_clients * 4096},
             measured=f"{echo.values(metric='ok')} ok, {echo.values(metric='echoed')} bytes")
_ = echo.claim("all served concurrently, on one thread (under 2 s)",
               lambda t: t.best(metric="took"), below=2)

# %% [markdown]
# Each step also runs from a terminal, starting its own latency server:

# %%
for step in ("callbacks", "generators", "futures"):
    print(f"python -m labkit.eventloop.{step} -n 10")
    out = subprocess.run([sys.executable, "-m", f"labkit.eventloop.{step}", "-n", "10"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    print("   ", out.stdout.strip().replace("\n", "\n    "))

# %%
server.stop()

# %% [markdown]
# ## When is the event-driven model the right choice?
#
# When a program has
# 1. **many tasks**: lesson 04 sent up to 500 requests from one thread, and above, hundreds of
#    echo clients shared one loop;
# 2. that are **independent**: they rarely wait for each other. What they share needs a lock
#    only where an `await` sits inside an update (lesson 01, property 2);
# 3. that are **mostly waiting** for I/O: the three-task figure above. If they mostly compute,
#    the counter-example shows there is nothing to gain.
#
# Network servers usually have all three, which is why they are the event loop's home ground.

# %% [markdown]
# ## Summary
#
# * Polling spends CPU the whole time it waits; an event loop sleeps until the operating system
#   reports an event.
# * Sequential costs the sum of the waits; threads and an event loop cost about the longest.
#   CPU-bound work gains nothing from either.
# * An event loop is a selector, a queue of ready callbacks, and timers. Generators (split into
#   parts with `yield from`) and then Futures/Tasks with `await` let tasks be written as
#   straight-line code.
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint; call
# it again for the next one. `check(n, your_answer)` tells you if you have it. `answer(n)`
# shows a worked solution with a sentence on why it is right. Try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(5)

# %% [markdown]
# **Exercise 1.** Write `call_later(loop, delay, callback)` for `labkit.eventloop.futures.Loop`:
# `callback()` runs about `delay` seconds later, while other tasks go on.

# %%
def call_later(loop, delay, callback):
    ...   # your code here

check(1, call_later)

# %% [markdown]
# **Exercise 2.** Predict a timeline: three tasks each compute for 0.05 s, wait 0.2 s for I/O,
# then compute for 0.05 s more, on one event loop. About how many seconds does the run take?
# Then check it: in the cell that defines the tasks, set `COMPUTE = 0.05` and every value of
# `WAITS` to 0.2, run that cell and the one that runs the three models (its server lives in a
# `with` block, so running it again is safe), and print `totals["event loop"]`. If the run
# disagrees with your drawing, the checker's answer says why.

# %%
check(2, ...)

# %% [markdown]
# **Exercise 3.** Which suits an event loop best? (a) resizing 1,000 images, (b) a chat server
# with 5,000 mostly idle connections, (c) one large matrix multiplication. Answer `"a"`, `"b"`
# or `"c"`.

# %%
check(3, ...)
