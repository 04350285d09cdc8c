# %% [markdown]
# # 03 · gevent: greenlets that switch by themselves while they wait
#
# Lesson 02 ended with the missing piece: something that switches greenlets when one of them
# would wait. **gevent** is that: an event loop (the *hub*, itself a greenlet) plus cooperative
# versions of `sleep`, sockets, locks and queues. When a greenlet calls `gevent.sleep()`, or
# reads a gevent socket on which no data has come yet, it switches to the hub. The hub runs
# other greenlets and switches back when the wait is over.
#
# **After this lesson you can**
# * start greenlets with `spawn`, wait for them with `joinall`, and read their results and
#   errors.
# * show that a blocking `time.sleep` inside greenlets serialises them.
# * cut a wait short with `gevent.Timeout`.
# * cap concurrency with a `Pool`, and pass work through a `Queue` with an `Event`.
# * explain what monkey patching does, from a run in a child process.
#
# **Time:** about 50 minutes: 30 reading and running, 20 exercises.

# %%
import time

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.queue import Queue
from ipywidgets import IntSlider

import labkit
from labkit.timeline import Recorder, compare_timelines, duration, max_concurrent, plot_timeline
from labkit.widgets import panel

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

# gevent's own report of a failing greenlet shows a time and an address: read g.exception instead.
gevent.get_hub().exception_stream = None

# %% [markdown]
# We use gevent here **without** monkey patching: `gevent.spawn`, `gevent.sleep`, `Pool`,
# `Queue` and `Event` work in a notebook as they are. Patching the standard library inside a
# Jupyter kernel left the kernel deaf in our runs: it stopped answering. So the last section
# patches in a child process instead.
#
# ## spawn, sleep, joinall
#
# Two chores: the kettle takes 0.4 s, the toast 0.2 s. Each is a greenlet; `gevent.sleep` is
# where it waits, and where gevent switches to the other.

# %%
def chore(rec, said, name, seconds, sleep):
    said.append(f"{name}: start")
    rec.switch(name, "waiting")
    sleep(seconds)
    rec.switch(name, None)
    said.append(f"{name}: done after {seconds} s")

def breakfast(sleep):
    """Both chores as greenlets; returns the timeline and what the chores said, in order."""
    rec, said = Recorder(), []
    gevent.joinall([gevent.spawn(chore, rec, said, "kettle", 0.4, sleep),
                    gevent.spawn(chore, rec, said, "toast", 0.2, sleep)])
    return rec.close(), said

with_gevent_sleep, said = breakfast(gevent.sleep)
print("\n".join(said))

# %% [markdown]
# Both started at once, and the toast finished first. Now the same chores with the standard
# `time.sleep`, which knows nothing about greenlets:

# %%
with_time_sleep, said = breakfast(time.sleep)
print("\n".join(said))

# %% [markdown]
# Timed with `labkit.Timing` (lesson 01: the two ways in turns, each claim judged on each
# way's fastest round):

# %%
timing = labkit.Timing({"gevent.sleep": lambda: breakfast(gevent.sleep),
                        "time.sleep": lambda: breakfast(time.sleep)}, rounds=4, seconds=10)
timing.claim("gevent.sleep: about the longest chore (0.4 s): under 0.5 s",
             lambda t: t["gevent.sleep"], below=0.5)
timing.claim("time.sleep: the sum of the chores (0.6 s) or more", lambda t: t["time.sleep"],
             above=0.6)

def end_of(spans, task):
    return max(s.end for s in spans if s.task == task)

labkit.claim("with gevent.sleep the toast was done before the kettle",
             end_of(with_gevent_sleep, "toast") < end_of(with_gevent_sleep, "kettle"))
compare_timelines({"gevent.sleep": with_gevent_sleep, "time.sleep": with_time_sleep})

# %% [markdown]
# `time.sleep` blocks the thread, and with it the hub and every greenlet: each chore runs
# only after the previous one has finished. Every blocking call behaves like that, unless it
# is gevent's own (or monkey-patched, see the end).
#
# ## Results, timeouts and failures
#
# `spawn` returns a `Greenlet`. After `join`, `value` holds the return value; `get()` returns it
# too, or raises the greenlet's exception.

# %%
def slow_square(x, seconds):
    gevent.sleep(seconds)
    return x * x

jobs = [gevent.spawn(slow_square, x, 0.01 * x) for x in (1, 2, 3)]
gevent.joinall(jobs)
print("values:", [job.value for job in jobs])
_ = labkit.claim("each greenlet's value is its return value, in spawn order",
                 [job.value for job in jobs] == [1, 4, 9])

# %% [markdown]
# `gevent.Timeout` bounds a cooperative wait. Raised, it names the limit it was given; with
# `False` as the second argument the block is simply abandoned.

# %%
try:
    with gevent.Timeout(0.05):
        slow_square(7, 1.0)
except gevent.Timeout as timeout:
    print("gave up after", timeout)

result = "nothing"
with gevent.Timeout(0.05, False):
    result = slow_square(7, 1.0)
labkit.claim("after a silent timeout the block was abandoned: result is unchanged",
             result == "nothing", measured=repr(result))

late = gevent.spawn(slow_square, 8, 1.0)
late.join(timeout=0.05)                        # returns after 0.05 s, finished or not
labkit.claim("a greenlet is still running after 0.05 s", not late.dead and late.value is None)
late.kill()                                    # raises GreenletExit inside it
_ = labkit.claim("after kill() it is dead", late.dead)

# %% [markdown]
# A `Timeout` is a timer in the hub, so it fires only when the hub runs. A blocking call keeps
# the hub from running: the timeout cannot cut it short.

# %%
finished = False
with gevent.Timeout(0.05, False):
    time.sleep(0.2)                            # blocks the thread: the hub does not run
    finished = True
_ = labkit.claim("a 0.05 s Timeout did not cut short a blocking time.sleep(0.2)", finished)

# %% [markdown]
# ### When a greenlet fails
#
# An exception inside a greenlet does not reach the code that spawned it. It is stored on the
# greenlet: check `successful()` and read `exception`, or call `get()` to raise it here.

# %%
def divide(a, b):
    gevent.sleep(0.01)
    return a / b

jobs = [gevent.spawn(divide, 1, 4), gevent.spawn(divide, 1, 0)]
gevent.joinall(jobs)
for job in jobs:
    print(f"successful={job.successful()}  value={job.value!r}  exception={job.exception!r}")

assert [job.successful() for job in jobs] == [True, False]
assert isinstance(jobs[1].exception, ZeroDivisionError)

raised = None
try:
    jobs[1].get()
except ZeroDivisionError as err:
    raised = err
print("get() raised it here:", repr(raised))
_ = labkit.claim("get() raised the very exception stored on the greenlet",
                 raised is jobs[1].exception)

# %% [markdown]
# ## Capping concurrency with a Pool
#
# A server should not start unlimited work at once. `Pool(size)` runs at most `size`
# greenlets together; `pool.spawn` waits for a free slot. The function below runs `n_tasks`
# tasks of `seconds` each through a pool and records when each one waits:

# %%
def run_pool(pool_size=3, n_tasks=9, seconds=0.05):
    rec = Recorder()

    def task(name):
        rec.switch(name, "waiting")
        gevent.sleep(seconds)
        rec.switch(name, None)

    pool = Pool(pool_size)
    for i in range(1, n_tasks + 1):
        pool.spawn(task, f"Task {i}")          # blocks here while the pool is full
    pool.join()
    return rec.close()

pool_runs = []                                 # every run's spans
pool_timing = labkit.Timing(lambda: pool_runs.append(run_pool(pool_size=3, n_tasks=9)),
                            rounds=4, seconds=5)
labkit.claim("at most 3 tasks at once, in every run",
             all(max_concurrent(spans) == 3 for spans in pool_runs),
             measured=str([max_concurrent(spans) for spans in pool_runs]))
pool_timing.claim("9 tasks of 50 ms, 3 at a time: at least three rounds (150 ms or more)",
                  lambda t: t.best(), above=0.15)
pool_timing.claim("9 tasks of 50 ms, 3 at a time: about three rounds (under 300 ms)",
                  lambda t: t.best(), below=0.3)
plot_timeline(pool_runs[0], title="Pool(3), 9 tasks of 50 ms")

# %% [markdown]
# Move the sliders and press **Run**: the panel calls the same `run_pool` and redraws.
# (More tasks than the pool holds: they queue. A pool as large as the task count: one round.)

# %%
# NBVAL_IGNORE_OUTPUT
panel(run_pool, draw=lambda spans: plot_timeline(spans, title="Pool timeline"),
      controls={"pool_size": IntSlider(3, min=1, max=10, description="pool size"),
                "n_tasks": IntSlider(9, min=1, max=30, description="tasks")},
      summary=lambda spans: f"{max_concurrent(spans)} at once at most, "
                            f"{duration(spans) * 1000:.0f} ms in all")

# %% [markdown]
# ## Passing work: Queue and Event
#
# A `Queue` hands items from producers to consumers; `get()` waits (cooperatively) while it is
# empty. An `Event` lets greenlets wait until something has happened. Here two cooks wait for
# the kitchen to open, then take orders from a queue until they find the closing sign.

# %%
kitchen_open = Event()
orders = Queue()
served = []

def cook(name):
    kitchen_open.wait()                  # every cook waits for the same signal
    while True:
        order = orders.get()             # waits while the queue is empty
        if order is None:                # the closing sign
            break
        gevent.sleep(0.02 * len(order))  # cooking takes time
        served.append(f"{name} served {order}")

def front_desk(menu):
    for order in menu:
        orders.put(order)
    kitchen_open.set()
    for _ in range(2):
        orders.put(None)                 # one closing sign per cook

gevent.joinall([gevent.spawn(cook, "cook A"), gevent.spawn(cook, "cook B"),
                gevent.spawn(front_desk, ["soup", "noodles", "rice", "dumplings"])])
print("\n".join(served))
assert served == ["cook A served soup", "cook B served noodles",
                  "cook A served rice", "cook B served dumplings"]

# %% [markdown]
# Cook A took the rice because it was free first (soup, 80 ms) while cook B was still on the
# noodles (140 ms). `gevent.lock` adds locks and semaphores that wait the same cooperative way.
# Lesson 01 showed the case that needs one: an update that spans a call where gevent switches.
#
# ## Monkey patching, in a child process
#
# Ordinary code calls `time.sleep` and `socket.socket`, not gevent's versions.
# `gevent.monkey.patch_all()` swaps gevent's cooperative versions into the standard library
# modules, so such code yields to the hub without a change. It must run **first**, before the
# program imports anything that captures the originals.
#
# Patched inside this notebook's kernel, the kernel stopped answering in our runs (the threads
# the kernel relies on are patched too). So this script runs in a child process, once as it is
# and once with `--patch`:

# %%
labkit.show("scripts/gevent_sleepers")

# %%
script_runs = {"not patched": [], "patched": []}   # what each run of the script reported

def sleepers(label):
    def run_once():
        run = labkit.run_script("gevent_sleepers", *(["--patch"] if label == "patched" else []))
        script_runs[label].append(run.data)
        return {"elapsed": run.data["elapsed"]}   # timed inside the script, after its start
    return run_once

timing = labkit.Timing({label: sleepers(label) for label in script_runs}, rounds=3, seconds=20)
for label, runs in script_runs.items():
    print(f"{label:<11}  time.sleep is {runs[0]['time_sleep_is']}")
spans = {label: labkit.timeline.spans_from_json(runs[0]["spans"])
         for label, runs in script_runs.items()}
labkit.claim("not patched: the five sleeps ran one at a time; patched: all five at once",
             max_concurrent(spans["not patched"]) == 1 and max_concurrent(spans["patched"]) == 5)
timing.claim("not patched: five 100 ms sleeps took 0.5 s or more",
             lambda t: t.best("not patched", "elapsed"), above=0.5)
timing.claim("patched: they overlap (under half the time)",
             lambda t: t.best("patched", "elapsed") / t.best("not patched", "elapsed"), below=0.5)
compare_timelines({f"time.sleep, {label}": s for label, s in spans.items()})

# %% [markdown]
# The script's code is the same both times; only `patch_all()` differs. After it, the name
# `time.sleep` refers to `gevent.hub.sleep`.
#
# Patching replaces names in the standard library's modules (`time.sleep`, `socket.socket`,
# ...), and only there. Code that waits without going through those names stays blocking: a C
# extension that does its own I/O, for one. With `--in-c` the script sleeps in C, in libc's
# `usleep` called through `ctypes`:

# %%
in_c = labkit.run_script("gevent_sleepers", "--patch", "--in-c")
print(f"patched={in_c.data['patched']}, each task sleeps in {in_c.data['sleep_is']}")
_ = labkit.claim("patched, but sleeping in C: the five sleeps ran one at a time again",
                 max_concurrent(labkit.timeline.spans_from_json(in_c.data["spans"])) == 1)

# %% [markdown]
# Lesson 04 fetches many web pages at once with `urllib` in a patched program. urllib needs no
# patch of its own: its connections go through the patched `socket` module. Lesson 04 also
# shows what goes wrong when patching comes late.

# %% [markdown]
# ## Summary
#
# * `gevent.spawn` starts a greenlet; `joinall` waits; `value`, `successful()`, `exception` and
#   `get()` report how it ended.
# * Only cooperative calls (gevent's own, or patched ones) let other greenlets run. A blocking
#   call such as `time.sleep` serialises all of them.
# * `gevent.Timeout` bounds a cooperative wait (not a blocking call). `Pool(n)` caps how many
#   run at once. `Queue` and `Event` coordinate greenlets without threads; `gevent.lock` guards
#   an update that spans a switch.
# * `monkey.patch_all()`, first thing in a program, makes code that goes through the patched
#   standard library (`socket`, `time`, `threading`, ...) cooperative. A C extension that does
#   its own I/O still blocks. Never patch in a Jupyter kernel: use a child process.
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint; call
# it again for the next one. `check(n, your_answer)` tells you if you have it. `answer(n)`
# shows a worked solution with a sentence on why it is right. Try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(3)

# %% [markdown]
# **Exercise 1.** Greenlets `tea` (sleeps 0.03 s), `toast` (0.01 s) and `eggs` (0.02 s) are
# spawned in that order; each prints its name after `gevent.sleep`. In what order are the names
# printed? Answer like `"tea toast eggs"`.

# %%
check(1, ...)

# %% [markdown]
# **Exercise 2.** A `Pool(2)` runs 6 tasks that each `gevent.sleep(0.05)`. About how many
# milliseconds does the whole run take? Check your answer with `run_pool(2, 6)`.

# %%
check(2, ...)

# %% [markdown]
# **Exercise 3.** Write `nap(seconds)` so that five greenlets napping 0.05 s at once finish in
# about 0.05 s, not 0.25 s.

# %%
def nap(seconds):
    ...   # your code here

check(3, nap)
