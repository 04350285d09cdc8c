# %% [markdown]
# # 01 · Coroutines with plain generators
#
# A **coroutine** is a function that can stop in the middle, hand control back, and later
# continue exactly where it stopped, with all its local variables intact. Python's generators
# are coroutines: every `yield` is a place where the function stops and someone else runs.
#
# **After this lesson you can**
# * drive a generator with `send()`, and explain why it must be *primed* first.
# * write a producer/consumer pair with a coroutine.
# * show each of the four properties that make something a coroutine, with code.
# * say what a generator keeps (one frame: it is *stackless*) and what a greenlet keeps (a
#   whole stack: *stackful*).
# * tell where a task can be switched out, and show a race when a switch hides inside a call.
# * write a round-robin scheduler, and say why it cannot overlap I/O on its own.
# * tell what a coroutine switch costs compared with handing control to another thread.
#
# **Time:** about 60 minutes: 40 reading and running, 20 exercises; sittings of 30 + 30.

# %%
import threading
import time
from collections import deque

import matplotlib.pyplot as plt

import labkit
from labkit import bench
from labkit.bench import compute
from labkit.timeline import Recorder, compare_timelines, duration, max_concurrent

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

# %% [markdown]
# ## A generator remembers where it was
#
# Calling a generator function runs nothing: it returns a generator object. Each `next()` runs
# the body up to the next `yield`, hands out the yielded value, and freezes the function there.

# %%
def ticket_counter(prefix):
    number = 0
    while True:
        number += 1
        yield f"{prefix}-{number:03d}"      # stop here; continue here on the next next()

tickets = ticket_counter("A")
print(next(tickets), next(tickets), next(tickets))

# %% [markdown]
# `number` survived between the calls: the generator's *frame* (its locals and the point where
# it stopped) is kept alive inside the generator object.

# %% [markdown]
# ## Sending values in: `send()`
#
# `yield` is also an expression. `value = yield result` hands `result` out, stops, and when the
# caller does `gen.send(x)`, continues with `value = x`. Here is a coroutine that keeps a running
# average of whatever it is sent:

# %%
def averager():
    total, count, average = 0.0, 0, None
    while True:
        value = yield average       # hand out the average; wait for the next value
        total += value
        count += 1
        average = total / count

avg = averager()
next(avg)                           # "priming": run up to the first yield
print(avg.send(10), avg.send(20), avg.send(60))

# %% [markdown]
# Why `next(avg)` first? A fresh generator has not reached any `yield` yet, so there is no
# `yield` expression to receive the value. Python refuses:

# %%
fresh = averager()
try:
    fresh.send(10)
except TypeError as err:
    print("TypeError:", err)

# %% [markdown]
# A small decorator primes coroutines for us, so callers cannot forget:

# %%
def primed(generator_function):
    def start(*args, **kwargs):
        coroutine = generator_function(*args, **kwargs)
        next(coroutine)
        return coroutine
    return start

avg = primed(averager)()
print(avg.send(4), avg.send(8))

# %% [markdown]
# ## Producer and consumer
#
# The classic use: a consumer coroutine that is handed work item by item. The producer calls
# `send()`; each call switches into the consumer, which processes one item, and switches back
# with its answer. No threads, no queue, no lock: control simply passes back and forth.

# %%
log = []

@primed
def packer():
    """Consumer: packs items into boxes of 3, reports what it did with each."""
    box = []
    receipt = None
    while True:
        item = yield receipt
        box.append(item)
        log.append(f"  packer: got {item}")
        if len(box) == 3:
            receipt = f"box closed: {', '.join(box)}"
            box = []
        else:
            receipt = f"{len(box)} in the box"

def producer(consumer, items):
    for item in items:
        log.append(f"producer: made {item}")
        receipt = consumer.send(item)      # switch to the consumer, and back
        log.append(f"producer: receipt says '{receipt}'")
    consumer.close()                       # raises GeneratorExit inside it: it ends

producer(packer(), ["apple", "pear", "plum", "fig"])
print("\n".join(log))

# %% [markdown]
# ## The four properties of a coroutine, each shown
#
# A common definition says a coroutine system:
#
# 1. runs concurrent tasks in **one thread**;
# 2. lets them **share data without locks**;
# 3. keeps **each task's own state** (its locals and where it stopped);
# 4. **switches to another task when one waits for I/O**.
#
# Let us check each one with generators, and find where plain generators fall short.
#
# ### 1. One thread
# Two tasks, interleaved by a loop, record the thread they run on:

# %%
def stepper(name, steps, seen):
    for i in range(steps):
        seen.append((name, i, threading.get_ident()))
        yield

def round_robin(tasks):
    """Run generator tasks one step each in turn, until all are finished."""
    queue = deque(tasks)
    while queue:
        task = queue.popleft()
        try:
            next(task)            # run the task up to its next yield
            queue.append(task)    # then to the back of the line
        except StopIteration:
            pass                  # finished: it leaves the line

seen = []
round_robin([stepper("Task 1", 3, seen), stepper("Task 2", 3, seen)])

print("order:", [f"{name}#{i}" for name, i, _ in seen])
threads = {ident for _, _, ident in seen}
_ = labkit.claim("both tasks ran on one thread, the notebook's own",
                 threads == {threading.get_ident()}, measured=f"{len(threads)} threads")

# %% [markdown]
# The tasks interleave, and all of it happens on the notebook's own thread.
#
# ### 2. Shared data without locks, as long as no `yield` splits an update
# Coroutines switch only where they `yield`, never in between. So an update with no `yield`
# inside it is atomic: no other task can run in the middle. Two tasks move money in opposite
# directions between two accounts; the total must stay 200.

# %%
def transfer(accounts, source, target, times, yield_in_the_middle):
    for _ in range(times):
        remaining = accounts[source] - 1          # read ...
        if yield_in_the_middle:
            yield                                 # ... a switch here lets the other task run ...
        accounts[source] = remaining              # ... write back a stale value
        accounts[target] += 1
        yield

def run_transfers(yield_in_the_middle):
    accounts = {"alice": 100, "bob": 100}
    round_robin([transfer(accounts, "alice", "bob", 50, yield_in_the_middle),
                 transfer(accounts, "bob", "alice", 50, yield_in_the_middle)])
    return accounts

safe, broken = run_transfers(False), run_transfers(True)
print("no yield inside the update:", safe, "total", sum(safe.values()))
print("a yield inside the update: ", broken, "total", sum(broken.values()))
labkit.claim("with no yield inside the update the total stays 200", sum(safe.values()) == 200)
_ = labkit.claim("with a yield inside it, money is lost or made", sum(broken.values()) != 200)

# %% [markdown]
# With generators (and, in lesson 05, `await`) you can see every switch point in the code: they
# are the `yield`s. Threads give no such promise. Where a thread may be switched out is up to
# the interpreter and the operating system, not written in the code. So threads that share data
# need a lock even for the first version.
#
# **gevent hides its switch points.** gevent (lesson 03) switches greenlets inside ordinary
# looking calls, wherever one would wait for I/O. A `sleep` always switches, and so does a
# socket read when no data has come yet. Even a log line sent over the network may switch (when
# the socket's send buffer is full). Nothing at the call site says so. A preview, with the same
# two transfers written as greenlets; `log_to_server` stands for a call that waits for I/O at
# that moment:

# %%
from contextlib import nullcontext

import gevent
from gevent.lock import BoundedSemaphore

def log_to_server(line):
    """Stands for sending a log line through a gevent socket at a moment when it must wait
    for the network: gevent then switches to another greenlet. Here the wait is a
    zero-second gevent.sleep, which always switches."""
    gevent.sleep(0)

def transfer_with_log(accounts, source, target, times, lock):
    for _ in range(times):
        with lock:
            remaining = accounts[source] - 1
            log_to_server(f"{source} pays 1")        # no yield in sight, yet a switch point
            accounts[source] = remaining
            accounts[target] += 1

def run_greenlet_transfers(lock):
    accounts = {"alice": 100, "bob": 100}
    gevent.joinall([gevent.spawn(transfer_with_log, accounts, "alice", "bob", 50, lock),
                    gevent.spawn(transfer_with_log, accounts, "bob", "alice", 50, lock)])
    return accounts

# %% [markdown]
# Once with no lock, once with gevent's lock held around each update:

# %%
unlocked = run_greenlet_transfers(nullcontext())          # no lock at all
locked = run_greenlet_transfers(BoundedSemaphore(1))      # gevent's lock: one holder at a time
print("greenlets, no lock:          ", unlocked, "total", sum(unlocked.values()))
print("greenlets, gevent.lock held: ", locked, "total", sum(locked.values()))
labkit.claim("without a lock, the hidden switch broke the total", sum(unlocked.values()) != 200)
_ = labkit.claim("with gevent's lock held, both accounts end where they began",
                 locked == {"alice": 100, "bob": 100})

# %% [markdown]
# Without the lock, the hidden switch splits the update just like the visible `yield` above.
# With `gevent.lock.BoundedSemaphore(1)` held around the update, the other greenlet waits at
# `with lock:` until the first has finished: the totals are right again. So "coroutines need
# no locks" holds only where every switch point is visible: generators and `async`/`await`.
#
# ### 3. Each task keeps its own state: one frame, not a stack
# Two generators made from the same function are two independent frames:

# %%
import inspect

a, b = ticket_counter("A"), ticket_counter("B")
for _ in range(3):
    next(a)
next(b)
print("a's locals:", inspect.getgeneratorlocals(a))
print("b's locals:", inspect.getgeneratorlocals(b))
_ = labkit.claim("each generator kept its own count (a at 3, b at 1)",
                 inspect.getgeneratorlocals(a)["number"] == 3
                 and inspect.getgeneratorlocals(b)["number"] == 1)

# %% [markdown]
# A generator keeps exactly one frame: its own. It can stop only at a `yield` in its own body.
# A helper it calls cannot stop it: a `yield` in the helper makes the helper a generator of
# its own, and calling it merely creates that object.

# %%
def wait_a_bit():
    yield "stopped inside the helper"          # never reached below

def task_with_a_helper():
    wait_a_bit()                               # creates a generator object; runs nothing
    yield "stopped in the task's own body"

print(next(task_with_a_helper()))
assert next(task_with_a_helper()) == "stopped in the task's own body"

# %% [markdown]
# That is why generators are called **stackless** coroutines. Each level of calls that may stop
# must itself be a generator, and pass the stop along (`yield from`, lesson 05; `await` does
# the same). A **greenlet** (lesson 02) keeps a whole call stack of its own and can stop from
# any depth: a **stackful** coroutine.

# %% [markdown]
# ### 4. Switching when a task waits: this is what plain generators cannot do alone
# A generator switches only where it `yield`s. If it calls something that *blocks*, such as
# `time.sleep` or a blocking `recv`, the one thread stops and every other task waits too.
#
# The fix is a scheduler that knows about waiting. A task *asks* to wait by yielding a request,
# `("sleep", seconds)`; the scheduler parks it and runs others until its time comes. Here is
# the whole scheduler:

# %%
import heapq
import itertools

def run(tasks):
    """Round-robin over generator tasks. A task may yield ("sleep", seconds) to wait."""
    ready = deque(tasks)
    sleeping = []                          # heap of (wake-up time, tie-breaker, task)
    tie = itertools.count()
    while ready or sleeping:
        if not ready:                      # everyone waits: sleep until the first wake-up
            wake_at, _, task = heapq.heappop(sleeping)
            time.sleep(max(0.0, wake_at - time.monotonic()))
            ready.append(task)
        task = ready.popleft()
        try:
            request = next(task)           # run the task up to its next yield
        except StopIteration:
            continue                       # finished: drop it
        if request and request[0] == "sleep":
            heapq.heappush(sleeping, (time.monotonic() + request[1], next(tie), task))
        else:
            ready.append(task)

# %% [markdown]
# Three tasks each compute a little, wait 200 ms, and compute again. In the first version the
# wait is a blocking `time.sleep`; in the second the task yields a sleep request. The
# `Recorder` notes when each task runs and waits. "Computing" is `labkit.bench.compute`,
# a loop that keeps the CPU busy for a given time (later lessons use it too):

# %%
labkit.show(compute)

# %% [markdown]
# Every claim about time in this course is judged the same way. `labkit.Timing` runs the
# versions in turns, a few rounds if a claim needs them, and judges each claim on each
# version's fastest round. Another program on this machine can only ever add time, so the
# fastest round is the fairest reading of what the code itself does.

# %%
def worker(rec, name, wait, blocking):
    rec.switch(name, "running")
    compute(0.005)
    rec.switch(name, "waiting")
    if blocking:
        time.sleep(wait)                   # the whole thread stops here
    else:
        yield ("sleep", wait)              # hand control back until the time is up
    rec.switch(name, "running")
    compute(0.005)
    rec.switch(name, None)
    yield

# %%
WAIT, NAMES = 0.2, ["Task 1", "Task 2", "Task 3"]
BLOCKING, COOPERATIVE = "blocking time.sleep", f"yield ('sleep', {WAIT})"
timelines = {BLOCKING: [], COOPERATIVE: []}         # every run's spans, for the figure

def three_tasks(label):
    def run_once():
        rec = Recorder()
        run([worker(rec, name, WAIT, label == BLOCKING) for name in NAMES])
        timelines[label].append(rec.close())
    return run_once

timing = labkit.Timing({label: three_tasks(label) for label in timelines}, rounds=4, seconds=10)
timing.claim(f"blocking: the waits add up (over {len(NAMES)} x {WAIT} s)", lambda t: t[BLOCKING],
             above=len(NAMES) * WAIT)
labkit.claim("cooperative: all three waited at one moment",
             all(max_concurrent(spans, states=("waiting",)) == len(NAMES)
                 for spans in timelines[COOPERATIVE]))
timing.claim("cooperative: under two waits in all", lambda t: t[COOPERATIVE], below=2 * WAIT)
compare_timelines({label: min(runs, key=duration) for label, runs in timelines.items()})

# %% [markdown]
# Grey is waiting, blue is running. In the blocking run each task's wait freezes the thread, so
# the tasks run one after another and the total is the *sum* of the waits. In the cooperative
# run the three waits overlap and the total is about *one* wait.
#
# Real programs wait for sockets, not timers. The same idea works if the scheduler asks the
# operating system which sockets are ready: that is `select`, lesson 05's event loop and
# lesson 07. gevent (lesson 03) does it for you, behind ordinary-looking blocking calls.

# %% [markdown]
# ## Sitting 2 of 2 (about 30 minutes) — a good place to stop
#
# The second of this lesson's two sittings starts here. Coming back to a fresh kernel? Select
# the cell below and choose **Run → Run All Above Selected Cell** first. This part uses what
# the cells above define: the first code cell's imports, and `labkit.bench`'s timers.

# %% [markdown]
# ## What does a switch cost?
#
# Switching coroutines is a function call inside one thread. `labkit.bench` measures one
# `send()` into a generator and back:

# %%
labkit.show(bench.generator_switch_cost)

# %% [markdown]
# Handing control to another OS thread and back is measured as a ping-pong of two
# `threading.Event`s. Each round trip there is more than a switch between threads. It takes:
#
# * two `set()`/`wait()`/`clear()` sequences in Python code (an `Event` is a `Condition` with a
#   lock, and a `wait()` that must sleep makes a fresh lock to sleep on);
# * two wake-ups through the kernel;
# * two hand-overs of the interpreter lock (the GIL), which a thread must hold to run Python
#   code.

# %%
labkit.show(bench.thread_handoff_cost)

# %% [markdown]
# A leaner hand-off uses two bare locks: the waiting thread sleeps in `acquire()`, the other
# wakes it with `release()`. That leaves out the `Event`'s Python code; what is left is the
# kernel waking a thread and the GIL changing hands. `labkit.Timing` measures all three in
# turns. Leaving out that Python code shows in the CPU time each hand-off uses; its wall time
# depends more on how busy this machine is.

# %%
labkit.show(bench.lock_handoff_cost)

# %%
GENERATOR, LOCKS, EVENTS = ("generator send()", "thread hand-off, bare locks",
                            "thread hand-off, Events")
costs = labkit.Timing({GENERATOR: bench.generator_switch_cost, LOCKS: bench.lock_handoff_cost,
                       EVENTS: bench.thread_handoff_cost}, rounds=4, seconds=15)
costs.claim("a bare-lock hand-off costs more than 10 generator switches",
            lambda t: t.best(LOCKS, "value") / t.best(GENERATOR, "value"), above=10)
costs.claim("an Event hand-off costs more than 10 generator switches",
            lambda t: t.best(EVENTS, "value") / t.best(GENERATOR, "value"), above=10)
costs.claim("a bare-lock hand-off uses less CPU time than an Event one",  # 5,000 round trips each
            lambda t: t.best(EVENTS, "cpu") / t.best(LOCKS, "cpu"), above=1)

per_trip = {way: costs.best(way, "value") * 1e6 for way in costs.ways}   # microseconds
fig, ax = plt.subplots(figsize=(6, 2.2))
ax.barh(list(per_trip), list(per_trip.values()), color=["#1f77b4", "#ff7f0e", "#ff7f0e"])
ax.set_xscale("log")
ax.set_xlabel("microseconds per round trip (log scale, each one's fastest run)")
ratios = sorted(per_trip[way] / per_trip[GENERATOR] for way in (LOCKS, EVENTS))
ax.set_title(f"measured now: a thread hand-off costs {ratios[0]:.0f}x to {ratios[1]:.0f}x "
             "a generator switch", loc="left", fontsize=10)
plt.show()

# %% [markdown]
# Switching generators is cheap because it never leaves the thread: no system call, no
# scheduler, no lock. The price: a coroutine runs until it chooses to yield, and all the
# coroutines of a thread share one CPU core.

# %% [markdown]
# ## Summary
#
# * A generator is a coroutine: `yield` stops it with its locals intact; `next()`/`send()`
#   resume it. Prime it with `next()` before the first `send()`.
# * Coroutines run in one thread, switch only at `yield`, and so can share data without locks,
#   as long as no `yield` sits inside an update. gevent switches inside calls that wait for
#   I/O, out of sight: there, shared updates that span such a call need `gevent.lock`.
# * A generator keeps one frame (stackless): only its own body can stop it. A greenlet keeps a
#   whole stack (stackful): it can stop from any depth of calls.
# * Switching on I/O needs a scheduler that knows what each task waits for. A blocking call
#   inside a coroutine stops every task.
# * A coroutine switch costs under a tenth of a thread hand-off (measured above).
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint; call
# it again for the next one. `check(n, your_answer)` tells you if you have it. `answer(n)`
# shows a worked solution with a sentence on why it is right. Try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(1)

# %% [markdown]
# **Exercise 1.** Write a coroutine `running_max()` that, after priming, answers each
# `send(x)` with the largest value sent so far.

# %%
def running_max():
    ...   # your code here

check(1, running_max)

# %% [markdown]
# **Exercise 2.** `round_robin` from property 1 runs three `stepper` tasks:
# `stepper("A", 3, seen)`, `stepper("B", 1, seen)` and `stepper("C", 2, seen)`. Call the step
# that task A records first `A0`, its second `A1`, and so on. In what order are the steps
# recorded in `seen`? Answer like `"A0 B0 ..."`, then run it to see.

# %%
check(2, ...)

# %% [markdown]
# **Exercise 3.** Three tasks each wait 0.3 s in the scheduler above. About how many seconds
# does the run take (a) with a blocking `time.sleep`, (b) with `yield ("sleep", 0.3)`? Answer
# `(a, b)`, then set `WAIT = 0.3` above and run the timeline cell to see if you were right.

# %%
check(3, ...)
