# %% [markdown]
# # 02 · greenlet: switching between ordinary functions
#
# Generators can only stop at a `yield` written in the generator itself. **greenlet**, a C
# extension, lifts that limit: any ordinary function, however deep in its calls, can hand
# control to another with `switch()`. Each greenlet has its own call stack (greenlets are
# *stackful* coroutines; generators, which keep one frame, are *stackless*), and switching is
# cheap. gevent (lesson 03) is built on it.
#
# **After this lesson you can**
# * predict the output of programs that switch between greenlets.
# * pass values with `switch()`, and say where control goes when a greenlet finishes (its
#   parent).
# * stop a greenlet with `throw()` and recognise a dead one.
# * record every switch and draw it as a timeline.
# * show why greenlets alone do not overlap I/O, and what is missing.
#
# **Time:** about 45 minutes: 25 reading and running, 20 exercises.

# %%
import socket

from greenlet import getcurrent, greenlet

import labkit
from labkit import bench
from labkit.bench import compute
from labkit.timeline import GreenletTrace, Recorder, max_concurrent, plot_timeline

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

# %% [markdown]
# ## Two functions taking turns
#
# Two plain functions, no `yield` anywhere. `switch()` jumps into the other greenlet; the next
# `switch()` back resumes right after the call that left.

# %%
said = []

def alice():
    said.append("alice: hello")
    bob_g.switch()
    said.append("alice: how are you?")
    bob_g.switch()
    said.append("alice: bye")

def bob():
    said.append("bob: hi")
    alice_g.switch()
    said.append("bob: fine, thanks")
    alice_g.switch()

alice_g, bob_g = greenlet(alice), greenlet(bob)
alice_g.switch()
print("\n".join(said))
assert said == ["alice: hello", "bob: hi", "alice: how are you?", "bob: fine, thanks",
                "alice: bye"]

# %% [markdown]
# Note what generators could not do: the switch may happen deep inside a helper function. And
# the caller does not have to be written as a generator to allow it.

# %%
trace = []

def deep(level):
    marker = f"level {level}"                # a local in each of the four frames
    if level == 0:
        trace.append("deep: switching out from 3 calls down")
        other.switch()
        trace.append(f"deep: back, 3 calls down, my local says {marker!r}")
        return
    deep(level - 1)
    trace.append(f"deep: returned to the frame of {marker!r}")

def caller():
    deep(3)
    trace.append("caller: deep() returned normally")

def other_fn():
    trace.append("other: running while deep() is suspended")
    main_g.switch()

# %% [markdown]
# Run it: `caller` goes three calls down into `deep`, which switches out to `other`. `other`
# hands control to us, and we resume `deep` exactly where it stopped:

# %%
main_g = getcurrent()                    # the greenlet the notebook itself runs in
caller_g, other = greenlet(caller), greenlet(other_fn)
caller_g.switch()                        # runs until other switches back to us
trace.append("main: got control back")
caller_g.switch()                        # resume deep() where it stopped
print("\n".join(trace))
assert trace == ["deep: switching out from 3 calls down",
                 "other: running while deep() is suspended",
                 "main: got control back",
                 "deep: back, 3 calls down, my local says 'level 0'",
                 "deep: returned to the frame of 'level 1'",
                 "deep: returned to the frame of 'level 2'",
                 "deep: returned to the frame of 'level 3'",
                 "caller: deep() returned normally"]
_ = labkit.claim("the greenlet finished once deep() had returned", caller_g.dead)

# %% [markdown]
# ## Passing values, and where control goes at the end
#
# * The first `g.switch(*args)` starts `g`'s function with those arguments.
# * After that, `x.switch(value)` makes `value` the return value of the `switch()` call that is
#   suspended inside `x`.
# * Every greenlet has a **parent** (by default, the greenlet that created it). When its
#   function returns, the return value goes to the parent, as if the parent's `switch()`
#   returned it, and the greenlet is **dead**.

# %%
def accumulate(first):
    total = first
    while total < 100:
        total += main_g.switch(total)   # hand the running total out, get the next number
    return f"done at {total}"

acc = greenlet(accumulate)
print(acc.switch(10))      # starts accumulate(10): prints 10
print(acc.switch(25))      # total 35
print(acc.switch(70))      # total 105: the function returns; its value comes back here
_ = labkit.claim("once accumulate returned, its greenlet is dead", acc.dead)

# %% [markdown]
# Switching to a dead greenlet does not run anything again: the values passed simply come back
# through its parent, which here is us.

# %%
echoed = acc.switch("anyone there?")
print(echoed)
_ = labkit.claim("the value came straight back, and the greenlet stayed dead",
                 echoed == "anyone there?" and acc.dead)

# %% [markdown]
# ## Stopping a greenlet: `throw()` and `GreenletExit`
#
# `g.throw()` raises `GreenletExit` inside a suspended greenlet, where it stopped. It can clean
# up in `finally`; `GreenletExit` is then swallowed and the greenlet is dead. Any other exception
# thrown in and not caught travels to the parent.

# %%
events = []

def worker():
    try:
        while True:
            events.append("worker: waiting for work")
            main_g.switch()
    finally:
        events.append("worker: cleaning up")

w = greenlet(worker)
w.switch()
w.throw()                              # GreenletExit inside worker
print("\n".join(events))
labkit.claim("throw() ran the worker's finally block, and the worker is dead",
             events == ["worker: waiting for work", "worker: cleaning up"] and w.dead)

w2 = greenlet(worker)
w2.switch()
received = None
try:
    w2.throw(ValueError("bad input"))  # not caught by worker: it arrives here
except ValueError as err:
    received = err
print("the parent received:", repr(received))
_ = labkit.claim("the uncaught ValueError reached the parent, and the worker is dead",
                 isinstance(received, ValueError) and str(received) == "bad input" and w2.dead)

# %% [markdown]
# ## Every switch, drawn
#
# `greenlet.settrace` calls a function on every switch. `labkit.timeline.GreenletTrace` uses
# it to record when each greenlet runs (blue) and when it is suspended (grey). Three greenlets
# each compute for 10 ms (`labkit.bench.compute`, as in lesson 01), then pass control on, three
# times:

# %%
def turn_taker(rounds=3):
    for _ in range(rounds):
        compute(0.010)
        nxt = order[(order.index(getcurrent()) + 1) % len(order)]
        if not nxt.dead:
            nxt.switch()

order = [greenlet(turn_taker) for _ in range(3)]
names = {g: f"Task {i}" for i, g in enumerate(order, 1)}
with GreenletTrace(names) as traced:
    order[0].switch()                  # Task 1 starts; each task then passes control on
    for g in order[1:]:                # when Task 1 returns, we finish the others
        if not g.dead:
            g.switch()

task_switches = [(a, b) for a, b in traced.switches if a and b]
print("first switches between tasks:", task_switches[:4])
in_turn = [("Task 1", "Task 2"), ("Task 2", "Task 3"), ("Task 3", "Task 1")] * 3
labkit.claim("nine switches between tasks, always to the next in turn", task_switches == in_turn,
             measured=str(task_switches))
labkit.claim("one greenlet running at a time", max_concurrent(traced.spans, ["running"]) == 1)
plot_timeline(traced.spans, title="three greenlets taking turns (measured switches)")

# %% [markdown]
# Only one greenlet is ever blue at a time: greenlets take turns on one thread, and each turn
# ends exactly where the code says `switch()`.
#
# A switch is cheap, though dearer than a generator's `send()`. A generator's frame already
# lives on the heap. A greenlet switch copies to the heap the C stack that is in the new
# greenlet's way, then copies the new one's saved stack back. `labkit.Timing` (lesson 01)
# measures the three in turns:

# %%
GENERATOR, GREENLET, THREAD = "generator send()", "greenlet switch", "thread hand-off"
costs = labkit.Timing({GENERATOR: bench.generator_switch_cost, GREENLET: bench.greenlet_switch_cost,
                       THREAD: bench.thread_handoff_cost}, rounds=4, seconds=15)
costs.claim("a greenlet switch costs more than 2 generator send()s",
            lambda t: t.best(GREENLET, "value") / t.best(GENERATOR, "value"), above=2)
_ = costs.claim("a thread hand-off costs more than 5 greenlet switches",
                lambda t: t.best(THREAD, "value") / t.best(GREENLET, "value"), above=5)

# %% [markdown]
# ## What greenlet alone does not do: switch while waiting for I/O
#
# Two greenlets each ask a slow service for an answer. The service (`thread_echo` with
# `delay=0.1`, started in the background) answers each request after 100 ms. Each greenlet
# sends its request, waits in `recv()` for the answer, and then gives control back.

# %%
def ask(rec, name, address):
    with socket.create_connection(address, timeout=5) as sock:
        rec.switch(name, "running")
        sock.sendall(name.encode())
        rec.switch(name, "waiting")
        answer = sock.recv(100)            # blocks the one and only thread
        rec.switch(name, "running")
    rec.switch(name, None)
    return answer

answers = []

def ask_both(rec, address):
    """Task 1, then Task 2: each a greenlet that runs until its ask() returns."""
    answers[:] = [greenlet(ask).switch(rec, f"Task {i}", address) for i in (1, 2)]

with labkit.serve("thread_echo", delay=0.1) as slow_service:
    rec = Recorder()
    one_run = labkit.Timing(lambda: ask_both(rec, slow_service.address), rounds=1)
spans = rec.close()
assert answers == [b"Task 1", b"Task 2"]
labkit.claim("Task 2 sent its request only after Task 1 had its answer",
             max_concurrent(spans, ["waiting"]) == 1)
one_run.claim("two 100 ms requests took over 200 ms (one after the other)", lambda t: t.best(),
              above=0.2)
plot_timeline(spans, title="greenlets + blocking recv: the waits do not overlap")

# %% [markdown]
# While Task 1 waits in `recv()`, the whole thread waits: greenlet only switches where we call
# `switch()`, and a blocking `recv()` never calls it. To overlap the two waits, something has to
# notice that `recv()` would block, switch to another greenlet, and switch back when the socket
# is readable. That something is an **event loop**, and **gevent** puts one under greenlets:
# the next lesson.

# %% [markdown]
# ## Summary
#
# * `greenlet(fn)` makes a task from any function; `switch()` jumps between them, from any call
#   depth; the first `switch(*args)` starts the function.
# * `switch(value)` passes values both ways; a finished greenlet is dead and its return value
#   goes to its parent.
# * `throw()` raises `GreenletExit` (or any exception) where a greenlet is suspended.
# * Greenlets switch only where you say so. A blocking call blocks all of them.
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint; call
# it again for the next one. `check(n, your_answer)` tells you if you have it. `answer(n)`
# shows a worked solution with a sentence on why it is right. Try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(2)

# %% [markdown]
# **Exercise 1.** What ends up in `out`, in order? Answer like `"L1 R1 ..."`. Predict first,
# then run it to see.
#
# ```python
# out = []
# def left():  out.append("L1"); r.switch(); out.append("L2")
# def right(): out.append("R1"); l.switch(); out.append("R2")
# l, r = greenlet(left), greenlet(right)
# l.switch()
# ```

# %%
check(1, ...)

# %% [markdown]
# **Exercise 2.** What are `a` and `b`? Answer `(a, b)`.
#
# ```python
# main = getcurrent()
# def doubler(x):
#     while True:
#         x = main.switch(x * 2)
# g = greenlet(doubler)
# a = g.switch(10)
# b = g.switch(a)
# ```

# %%
check(2, ...)

# %% [markdown]
# **Exercise 3.** Two greenlets each call `sock.recv()` on a socket whose answer arrives 0.1 s
# after they ask. Why does the run take 0.2 s? (a) greenlets run on two threads that share a
# lock, (b) `recv` blocks the one thread and greenlet never switches by itself, (c) the OS runs
# greenlets one at a time. Answer `"a"`, `"b"` or `"c"`.

# %%
check(3, ...)
