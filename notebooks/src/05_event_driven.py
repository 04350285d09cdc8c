# %% [markdown]
# # 05 · The event-driven model, measured, and an event loop from scratch
#
# A server can give each request its own process, its own thread, or handle every request in
# one thread with an **event loop**: a loop that waits for *events* (this socket is readable,
# that timer is due) and runs the piece of code that was waiting for each. This lesson measures
# the three models instead of drawing them by hand, shows when the event loop does *not* help,
# and then builds one from scratch in three small steps.
#
# **After this lesson you can**
# * explain the difference between polling and waiting for events, with CPU time to prove it;
# * read the classic three-model figure (sequential, threads, event loop), drawn from real runs;
# * say when an event loop gains nothing (CPU-bound work) and show it;
# * write an event loop: callbacks on a selector, then generator tasks, then Futures and Tasks
#   with `async`/`await`.
#
# **Time:** about 35 minutes.

# %%
import hashlib
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.request import urlopen

import matplotlib.pyplot as plt

import labkit
from labkit.bench import compute
from labkit.eventloop import callbacks, futures, generators
from labkit.timeline import Recorder, compare_timelines, duration

PAGE = Path("../data/pages/page-48k.html")
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
print("both handled the same events in the same order:", poll_log == event_log)
print("first ones:", event_log[:4])
print("polling kept a CPU core busy (over half the wall time):", poll_cpu > 0.5 * poll_wall)
print("the event loop slept (under 10% of the wall time):     ", event_cpu < 0.1 * event_wall)
assert poll_log == event_log and len(event_log) == 20
assert poll_cpu > 0.5 * poll_wall and event_cpu < 0.1 * event_wall

fig, ax = plt.subplots(figsize=(6, 2))
ax.barh(["event queue", "polling"], [100 * event_cpu / event_wall, 100 * poll_cpu / poll_wall],
        color=["#1f77b4", "#ff7f0e"])
ax.set_xlim(0, 100)
ax.set_xlabel("CPU used while waiting for 20 events (% of one core)")
plt.show()

# %% [markdown]
# Same events, same handlers, same result; the polling loop burned a core to get it. The
# event loop's `events.get()` asks the operating system to wake it when there is something to
# do. For sockets, that question is `select`, `poll` or `epoll`: "wake me when one of these is
# ready".
#
# ## Three tasks, three models, one time axis
#
# Three tasks each compute a little, wait for a slow server (the `latency_http` server of
# lesson 04: 0.3, 0.2 and 0.1 s), and compute a little more. We run them
# (a) one after another, (b) one thread each, (c) as coroutines on a small event loop, which
# we will build ourselves later in this lesson. Every task records when it computes (blue) and
# when it waits (grey).

# %%
server = labkit.serve("latency_http")
WAITS = {"Task 1": 0.3, "Task 2": 0.2, "Task 3": 0.1}
COMPUTE = 0.02

def url_for(name):
    return f"http://{server.host}:{server.port}/pages/{PAGE.name}?delay={WAITS[name]}"

def blocking_task(rec, name):
    rec.switch(name, "running")
    compute(COMPUTE)
    rec.switch(name, "waiting")
    with urlopen(url_for(name), timeout=30) as response:   # blocks this thread
        body = response.read()
    rec.switch(name, "running")
    compute(COMPUTE)
    rec.switch(name, None)
    return body

async def loop_task(loop, rec, name):
    rec.switch(name, "running")
    compute(COMPUTE)
    rec.switch(name, "waiting")
    body = await futures.fetch(loop, url_for(name))       # suspends only this task
    rec.switch(name, "running")
    compute(COMPUTE)
    rec.switch(name, None)
    return body

def run_sequential():
    rec = Recorder()
    return [blocking_task(rec, name) for name in WAITS], rec.close()

def run_threads():
    rec = Recorder()
    with ThreadPoolExecutor(len(WAITS)) as pool:
        bodies = list(pool.map(lambda name: blocking_task(rec, name), WAITS))
    return bodies, rec.close()

def run_event_loop():
    rec, loop = Recorder(), futures.Loop()
    bodies = loop.run_until_complete(futures.gather(loop, [loop_task(loop, rec, n) for n in WAITS]))
    return bodies, rec.close()

models = {"sequential": run_sequential(), "threads": run_threads(),
          "event loop": run_event_loop()}
for name, (bodies, _) in models.items():
    assert all(hashlib.sha256(b).hexdigest() == PAGE_SHA for b in bodies), name
totals = {name: duration(spans) for name, (_, spans) in models.items()}
work = 2 * COMPUTE * len(WAITS)
print("every page verified (SHA-256)")
print("sequential takes the sum of the tasks:", totals["sequential"] >= 0.95 * (sum(WAITS.values()) + work))
for name in ("threads", "event loop"):
    print(f"{name} takes about the longest task:", totals[name] < max(WAITS.values()) + work + 0.1)
assert totals["sequential"] >= 0.95 * (sum(WAITS.values()) + work)
assert all(totals[n] < max(WAITS.values()) + work + 0.1 for n in ("threads", "event loop"))
compare_timelines({name: spans for name, (_, spans) in models.items()})

# %% [markdown]
# * **Sequential:** each task's wait holds everything up; the total is the sum.
# * **Threads:** the operating system runs another thread while one waits. The waits overlap;
#   the cost is a thread per task, and any data they share needs locks.
# * **Event loop:** one thread. A task that must wait registers interest in its socket and
#   gives control back; the loop runs whatever is ready. The waits overlap just as well, and
#   the compute parts never run at the same time, so nothing needs a lock.
#
# ## The honest counter-example: work that never waits
#
# An event loop overlaps *waiting*. Give the same three models three tasks that only compute
# (no I/O) and watch the gain disappear. Each task does a fixed amount of arithmetic, about
# 0.1 s of it on this machine (`compute` above watches the clock; this counts real work).

# %%
def crunch(iterations):
    total = 0
    for i in range(iterations):
        total += i * i
    return total

started = time.perf_counter()
crunch(200_000)
ITERATIONS = int(200_000 * 0.1 / (time.perf_counter() - started))   # about 0.1 s of work
CPU_WORK = 0.1

def cpu_task(rec, name):
    rec.switch(name, "running")
    crunch(ITERATIONS)
    rec.switch(name, None)

async def cpu_coroutine(rec, name):
    cpu_task(rec, name)                # never awaits anything: the loop cannot switch

def cpu_runs():
    runs = {}
    rec = Recorder()
    for name in WAITS:
        cpu_task(rec, name)
    runs["sequential"] = rec.close()
    rec = Recorder()
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda name: cpu_task(rec, name), WAITS))
    runs["threads"] = rec.close()
    rec, loop = Recorder(), futures.Loop()
    loop.run_until_complete(futures.gather(loop, [cpu_coroutine(rec, n) for n in WAITS]))
    runs["event loop"] = rec.close()
    return runs

# Each model runs three times and keeps its fastest run, so that a hiccup of this shared
# machine during one run cannot make one model look faster than it is.
trials = [cpu_runs() for _ in range(3)]
cpu = {model: min((t[model] for t in trials), key=duration) for model in trials[0]}
sequential_cpu = duration(cpu["sequential"])
print("threads gain nothing (at least 80% of the sequential time; ideal would be 33%):",
      duration(cpu["threads"]) >= 0.8 * sequential_cpu)
print("the event loop gains nothing (at least 80% of the sequential time):",
      duration(cpu["event loop"]) >= 0.8 * sequential_cpu)
assert duration(cpu["threads"]) >= 0.8 * sequential_cpu
assert duration(cpu["event loop"]) >= 0.8 * sequential_cpu
compare_timelines(cpu)

# %% [markdown]
# The event loop runs the three computations one after another: nothing waits, so there is
# nothing to overlap. Threads do no better in CPython: the bars overlap on the figure, but
# the interpreter lock lets only one thread compute at a time, so each takes longer and the
# total stays the same. For CPU-bound work you need more processes (more cores), not more
# concurrency.
#
# ## An event loop from scratch, in three steps
#
# Each step is a short module in `labkit.eventloop`, runs from the command line, and fetches
# 20 pages (0.2 s each) from the latency server at once, on one thread.
#
# ### Step 1: callbacks on a selector
# Sockets are non-blocking, so no call ever waits. Each socket is registered with the
# selector together with the function to call when it is ready; the loop asks "who is ready?"
# and calls those functions.

# %%
labkit.show(callbacks)

# %%
urls = [f"http://{server.host}:{server.port}/pages/{PAGE.name}?delay=0.2&id={i}" for i in range(20)]

def timed(fetch_many):
    started = time.perf_counter()
    bodies = fetch_many(urls)
    elapsed = time.perf_counter() - started
    assert len(bodies) == 20 and all(hashlib.sha256(b).hexdigest() == PAGE_SHA for b in bodies)
    return elapsed

step1 = timed(callbacks.fetch_many)
print("callbacks: 20 pages of 0.2 s, all verified, at once (under 0.4 s):", step1 < 0.4)
assert step1 < 0.4

# %% [markdown]
# It works, but one download is chopped into three methods, and its state lives in an object.
# Longer logic (retries, several requests in a row) gets hard to follow: "callback hell".
#
# ### Step 2: tasks are generators that yield what they wait for
# A download is now one function, written top to bottom like blocking code. Where it would
# block, it `yield`s `(socket, event)`; the loop resumes it when that socket is ready. This is
# lesson 01's scheduler, with `select` deciding who runs next.

# %%
labkit.show(generators)

# %%
step2 = timed(generators.fetch_many)
print("generators: 20 pages of 0.2 s, all verified, at once (under 0.4 s):", step2 < 0.4)
assert step2 < 0.4

# %% [markdown]
# ### Step 3: Futures and Tasks, so tasks can be `async def`
# A `Future` is a result that is not there yet; `await future` suspends the coroutine until the
# result is set. A `Task` drives one coroutine from Future to Future. The loop turns "socket
# ready" and "timer due" into finished Futures. Coroutines can now `await` each other, which
# generators yielding sockets could not do cleanly. This is asyncio in miniature.

# %%
labkit.show(futures)

# %%
step3 = timed(futures.fetch_many)
print("futures: 20 pages of 0.2 s, all verified, at once (under 0.4 s):", step3 < 0.4)
assert step3 < 0.4

# %% [markdown]
# On the same loop, an echo server: one Task per connection. 500 clients (also Tasks on the
# same loop) connect, each waits 0.1 s, sends 4 KiB and checks the echo. Served one after
# another, the waits alone would take 50 s.

# %%
ok, echoed, took = futures.serve_clients(500, b"0123456789abcdef" * 256, pause=0.1)
print(f"clients served with their exact bytes: {ok}/500, bytes echoed: {echoed:,}")
print("all 500 served concurrently, on one thread (under 2 s):", took < 2)
assert ok == 500 and echoed == 500 * 4096 and took < 2

# %% [markdown]
# Each step also runs from a terminal, starting its own latency server:

# %%
for step in ("callbacks", "generators", "futures"):
    out = subprocess.run([sys.executable, "-m", f"labkit.eventloop.{step}", "-n", "10"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    print(f"python -m labkit.eventloop.{step} -n 10")
    print("   ", out.stdout.strip().replace("\n", "\n    "))

# %%
server.stop()

# %% [markdown]
# ## When is the event-driven model the right choice?
#
# When a program has
# 1. **many tasks**: lesson 04 held 200 requests at once on one thread, and above, 500 echo
#    clients shared one loop;
# 2. that are **independent** (they rarely wait for each other, and what they share needs no
#    lock, because they switch only at `await`: lesson 01, property 2);
# 3. that are **mostly waiting** for I/O: the three-task figure above. If they mostly compute,
#    the counter-example shows there is nothing to gain.
#
# Network servers usually have all three, which is why they are the event loop's home ground.
#
# ## Summary
#
# * Polling burns a core; an event loop sleeps until the operating system reports an event.
# * Sequential costs the sum of the waits; threads and an event loop cost about the longest.
#   CPU-bound work gains nothing from either.
# * An event loop is a selector, a queue of ready callbacks, and timers. Generators and then
#   Futures/Tasks let tasks be written as straight-line code.
#
# ## Exercises

# %%
from labkit.exercises import lesson
hint, check = lesson(5)

# %% [markdown]
# **Exercise 1.** Write `call_later(loop, delay, callback)` for `labkit.eventloop.futures.Loop`:
# `callback()` runs about `delay` seconds later, while other tasks go on.

# %%
def call_later(loop, delay, callback):
    ...   # your code here

check(1, call_later)

# %% [markdown]
# **Exercise 2.** Predict a timeline: three tasks each compute for 0.05 s and then wait 0.2 s
# for I/O, on one event loop. About how many seconds does the run take? (Check it by changing
# `COMPUTE` and `WAITS` above.)

# %%
check(2, ...)

# %% [markdown]
# **Exercise 3.** Which suits an event loop best? (a) resizing 1,000 images, (b) a chat server
# with 5,000 mostly idle connections, (c) one large matrix multiplication. Answer `"a"`, `"b"`
# or `"c"`.

# %%
check(3, ...)
