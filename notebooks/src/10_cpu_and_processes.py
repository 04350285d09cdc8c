# %% [markdown]
# # 10 · CPU work and processes: what one event loop cannot do
#
# Every loop in this course runs its tasks on one thread, and switches only where a task
# waits. It serves thousands of waiting clients, but cannot compute for two: one client's CPU
# work stalls every other client. The way out is more *processes*: a pool that the loop hands
# CPU work to, or several copies of the server.
#
# **After this lesson you can**
# * measure why one Python process computes on one CPU at a time, threads included, and tell
#   a free-threaded build from a GIL that is on;
# * show what one CPU-bound request does to the other clients' latency, on three loops;
# * catch the culprit with gevent's monitor thread and asyncio's debug mode;
# * move CPU work to a process pool, say how the work gets there, and why a thread pool does
#   not help pure-Python work;
# * pre-fork N workers on one shared socket or on `SO_REUSEPORT`, count how the kernel spreads
#   connections and how many workers it wakes, and run gunicorn's gevent workers.
#
# **Time:** about 90 minutes: 65 reading and running, 25 exercises; sittings of 25 + 30 + 35.

# %%
import os
import subprocess
import sys
import sysconfig
import threading
import time

import labkit

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

CPUS = labkit.usable_cpus()   # the CPUs this kernel may use: its cores, capped by a CPU quota

# %% [markdown]
# ## One process computes on one CPU at a time
#
# The classic demonstration is David Beazley's `countdown`: a loop of pure Python with no
# waits in it. Run it twice one after the other, then once in each of two threads, then once
# in each of two processes. Each process is a fresh `python` with an interpreter of its own.
#
# For each way we measure the wall time, and the CPU time it got per second of wall time
# (`os.times()` counts this process and the children it has waited for). One thread can use at
# most one CPU: 1 s of CPU per s of wall. Anything clearly over that, say 1.2, means code ran
# on two CPUs at once. The ways take turns, in rounds (`labkit.Timing`), and each claim is judged
# on the rounds least disturbed by the rest of the machine.

# %%
def countdown(n):
    while n:
        n -= 1

N = 10_000_000   # long enough that starting a python is small beside it
PROGRAM = f"def countdown(n):\n    while n:\n        n -= 1\ncountdown({N})"

def one_after_the_other():
    countdown(N)
    countdown(N)

def in_threads():
    threads = [threading.Thread(target=countdown, args=(N,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

def in_processes():
    children = [subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL) for _ in range(2)]
    if [child.wait(timeout=60) for child in children] != [0, 0]:
        raise RuntimeError("a countdown process failed")

# %%
def cpu_per_wall(run):
    """Run `run`; return the CPU seconds this process and its children used per wall second,
    and that as a share of the CPUs free for them (up to two: the rest of the machine's use
    subtracted, so a neighbour on the same cores does not count against them)."""
    before, machine, start = os.times(), labkit.cpus.busy_seconds(), time.perf_counter()
    run()
    after, wall = os.times(), time.perf_counter() - start
    cpu = sum(after[:4]) - sum(before[:4])   # user + system, ours and our finished children's
    others = max(0.0, labkit.cpus.busy_seconds() - machine - cpu) / wall
    free = max(0.5, min(CPUS, 2) - others)
    return {"cpu per wall": cpu / wall, "free CPUs": free, "share of free CPUs": cpu / wall / free}

took = labkit.Timing({"one after the other": lambda: cpu_per_wall(one_after_the_other),
                      "two threads": lambda: cpu_per_wall(in_threads),
                      "two processes": lambda: cpu_per_wall(in_processes)},
                     rounds=5, seconds=25)

# %%
free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))   # built without a GIL?
gil = getattr(sys, "_is_gil_enabled", lambda: True)()   # is it on now? (3.13+; before: yes)
print("a free-threaded build:", free_threaded, "| the GIL is enabled now:", gil)
if gil:
    took.claim("two threads were no faster than one thread doing both (over 0.8 times its time)",
               lambda t: t["two threads"] / t["one after the other"], above=0.8)
    took.claim("... and got one CPU's worth at most: under 1.2 s of CPU per s of wall",
               lambda t: t.most("two threads", "cpu per wall"), below=1.2)
took.claim("two processes used over 80% of the CPUs free for them (up to two, judged in the "
           "round with the most free): where two were free, they ran at once",
           lambda t: t.round_with_most("two processes", "free CPUs")["share of free CPUs"],
           above=0.8)
for way in took.ways:
    print(f"{way:>19}: {took.best(way):.2f} s, {took.most(way, 'cpu per wall'):.2f} s of CPU "
          "per s of wall")

# %% [markdown]
# Two threads took as long as one thread doing both, and never got more than one CPU's
# worth: at any moment only one of them ran. CPython has a *global interpreter lock* (the
# GIL). A thread must hold it to run Python code, and a thread that waits for I/O lets go of
# it. A thread that wants it waits `sys.getswitchinterval()` (5 ms), then asks the holder to
# drop it; the holder lets go at its next check. So 5 ms is how long a waiting thread waits
# before it asks, not a limit on how long a thread may hold the lock.
#
# Two processes are two interpreters, each with its own lock: given two CPUs, they compute at
# once. Under a CPU quota of one, as on a JupyterHub with `cpu.limit: 1`, `os.cpu_count()`
# still counts every core of the machine. The two processes then share one CPU's time and
# finish no sooner.
# So the claim counts the CPUs free for them: `labkit.usable_cpus()` reads the quota, and what
# the rest of the machine used meanwhile (a neighbour) is subtracted.

# %% [markdown]
# Python 3.13 has an optional *free-threaded* build, whose threads can run Python at once.
# Two questions have two answers there. `sysconfig.get_config_var("Py_GIL_DISABLED")` says
# whether this build is free-threaded. `sys._is_gil_enabled()` says whether the GIL is on right
# now. They can differ: a free-threaded build turns the GIL back on for `PYTHON_GIL=1`, or when
# it imports an extension that does not declare itself safe without it. gevent is one: it
# builds there, is not supported, and using it turns the GIL on (gevent's own notes).
#
# An event loop is one thread, so the same holds for it, whatever the library: while one of
# its tasks computes, no other task of that loop runs. What does that do to a server?
#
# ## One CPU request hurts everyone
#
# This lesson's servers speak a tiny line protocol (`labkit.compute`). `PING <token>` is
# answered at once with `PONG <token> <pid>`. `WORK <ms>` burns `ms` milliseconds of the
# server's CPU in pure Python before it answers `DONE <ms> <pid>`. The pid says which process
# answered; it will matter when there are several. The CPU work:

# %%
from labkit import compute

labkit.show(compute.burn)

# %% [markdown]
# The selectors server of lesson 08, answering this protocol (`compute_selectors`), in the
# part that answers a client's lines: without a pool (`self.pool` is set only with
# `--offload pool`, later), `compute.answer` parses each line, burns, and replies, right in
# the loop.

# %%
from labkit.servers import compute_selectors

labkit.show(compute_selectors.Server.answer_lines)

# %% [markdown]
# Now the measurement. David Beazley's talk "Python Concurrency From the Ground Up" (PyCon
# 2015) counts a fast client's requests per second while another asks for long CPU work. Here,
# 50 clients, each a thread of this kernel, send PINGs one after another; 0.3 s in, one more
# client asks for `WORK 500`; 0.3 s after its answer, all stop. Every PING's latency is kept
# with the time it was sent, so we can split them into those answered *before* the WORK was
# sent, those *during* it, and those sent *after* its answer. `latency_under_cpu` does it:

# %%
from labkit.cpu_lab import latency_under_cpu

labkit.show(latency_under_cpu)

# %% [markdown]
# The same run against the three loops of this course: selectors (lesson 08), gevent
# (lesson 06) and asyncio (lesson 09). `LatencyRounds` starts each server once and runs
# `latency_under_cpu` against each in turn, as the ways of a `labkit.Timing`. On a busy
# machine the WORK takes longer than 500 ms of wall time, so each claim compares latencies
# with the time the WORK really took.

# %%
from labkit.cpu_lab import LatencyRounds, latency_table, plot_latency

WORK_MS = 500
LOOPS = {"selectors": ("compute_selectors", {}), "gevent": ("compute_gevent", {}),
         "asyncio": ("compute_asyncio", {})}

def blocked_the_others(rounds, name):
    """The claims of a loop that computes: the others waited for the WORK, and only then."""
    rounds.claim(f"{name}: the others waited for the WORK: their p99 during it was over half "
                 "the WORK's time", lambda t: t.best(name, "waited"), above=0.5)
    rounds.claim(f"{name}: before and after it, their p99 was under a fifth of their p99 "
                 "during it", lambda t: max(t.best(name, "before p99"), t.best(name, "after p99"))
                 / t.best(name, "during p99"), below=0.2)

with LatencyRounds(LOOPS, rounds=3, seconds=60, n_clients=50, work_ms=WORK_MS) as one_loop:
    for name in LOOPS:
        blocked_the_others(one_loop, name)
labkit.claim("no client failed", not one_loop.errors(), measured=str(one_loop.errors()[:3]))
plot_latency(one_loop.latest())

# %% [markdown]
# Each panel is one server: a dot per PING, at the time it was sent, its latency on a log scale;
# the red band is the WORK request. Before it, PINGs are quick. Once the loop starts the WORK,
# every PING waits for the band's end: the loop is computing, and reads nothing. The numbers
# differ from run to run; the shape does not, on any of the three loops: one slow request makes
# every client slow.
#
# ## Catch it: gevent's monitor thread and asyncio's debug mode
#
# In a real server the culprit is rarely this obvious. Both libraries can name it.
# gevent's *monitor thread* (`gevent.config.monitor_thread = True`) is a real OS thread that
# looks at the hub every `max_blocking_time` seconds (here 0.1). If the hub has not run since,
# it prints the stack of the greenlet that holds it. asyncio's *debug mode* times every step
# of every task, and logs each step longer than `slow_callback_duration` (here 0.1 s). Both
# servers take `--monitor`; one `WORK 300` each, and their logs:

# %%
import re

from labkit.cpu_lab import connect, ping, work

def log_after_work(name, ms=300):
    """Start `name` with --monitor, ask for WORK `ms` and one PING; return the server's log."""
    with labkit.serve(name, monitor=True) as srv:
        with connect(srv.address) as conn:
            work(conn, ms)
            ping(conn, "after")
        time.sleep(0.2)                        # let the last report reach the log
        return srv.log()

gevent_log = log_after_work("compute_gevent")
report = gevent_log.partition("Blocked Stack")[2].split("\n\n")[0]   # the first report's stack
frames = re.findall(r'File "[^"]*?(\w+\.py)", line \d+, in (\S+)', report)
print("gevent's monitor, the blocked greenlet's stack (line numbers left out):")
for file, function in frames:
    print(f"    {file}, in {function}")
labkit.claim("gevent's monitor thread reported the hub blocked",
             "appears to be blocked" in gevent_log, measured=gevent_log[-500:])
_ = labkit.claim("... and the stack it printed ends in compute.burn",
                 frames[-1:] == [("compute.py", "burn")], measured=str(frames))

# %%
asyncio_log = log_after_work("compute_asyncio")
slow = re.findall(r"Executing <Task .*?coro=<(\w+)\(\) running at [^>]*?(\w+\.py):\d+>.*"
                  r"took ([\d.]+) seconds", asyncio_log)
print("asyncio's debug mode, each slow step (its time left out):")
for coroutine, file, _ in slow:
    print(f"    Executing <Task ... coro=<{coroutine}() running at {file}> took ... seconds")
labkit.claim("asyncio's debug mode logged one slow step, of the task running handle()",
             [(c, f) for c, f, _ in slow] == [("handle", "compute_asyncio.py")],
             measured=asyncio_log[-500:])
_ = labkit.claim("... and it took at least the 0.3 s of CPU time the WORK burned",
                 bool(slow) and float(slow[0][2]) >= 0.3, measured=str(slow))

# %% [markdown]
# Two ways to name the same culprit. gevent's monitor is a thread of its own, so it speaks
# *while* the hub is blocked (every 0.1 s, as long as it lasts). It prints where the blocked
# greenlet is right now: inside `burn`, called from the server's `answer`.
#
# asyncio's debug mode can only time a step once it has ended, so it writes its warning after
# the step. The task it names is then waiting at the `await` that *ended* the step, and that is
# the line the warning shows, not the line where the step began. In `handle()` the two are the
# same line: its loop comes back round to `reader.read`. A task with two awaits shows the
# difference:

# %%
import asyncio
import inspect
import logging

async def one_task():
    await asyncio.sleep(0)    # line 1: the slow step begins when this await returns...
    time.sleep(0.15)          # line 2: ...blocks the loop: no await in it...
    await asyncio.sleep(0)    # line 3: ...and ends here, where the task waits next

def slow_step_warnings(coroutine):
    """Run `coroutine` on a new debug-mode loop in a thread of its own (a cell already runs
    inside the kernel's loop); return asyncio's "Executing ... took ..." warnings."""
    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    log = logging.getLogger("asyncio")
    log.addHandler(handler)
    log.propagate = False                     # ours only, not the kernel's log as well
    try:
        runner = threading.Thread(target=asyncio.run, args=(coroutine,), kwargs={"debug": True})
        runner.start()
        runner.join(10)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    return [line for line in said if line.startswith("Executing")]

# %%
warnings = slow_step_warnings(one_task())
named = [int(n) - one_task.__code__.co_firstlineno
         for n in re.findall(r"one_task\(\) running at [^>]*:(\d+)>", " ".join(warnings))]
print("the slow-step warning names line", named, "of one_task:")
for line in named:
    print("   ", inspect.getsource(one_task).splitlines()[line].strip())
_ = labkit.claim("asyncio's warning named line 3, the await where the slow step ended, not "
                 "line 1, where it began", named == [3], measured=str(warnings))

# %% [markdown]
# Both are tools for developing, not free: debug mode times every callback and notes where each
# was scheduled, and the monitor traces every greenlet switch. Neither fixes anything.

# %% [markdown]
# ## Sitting 2 of 3 (about 30 minutes) — a good place to stop
#
# The second of this lesson's three sittings starts here. Coming back to a fresh kernel?
# Select the cell below and choose **Run → Run All Above Selected Cell** first: this part uses
# what the cells above define (the imports and the compute helpers).

# %% [markdown]
# ## Fix it: move the CPU work to another process
#
# The loop must not compute; someone else must, and the loop must only wait for the answer,
# as it waits for a socket. Each server takes `--offload`:
#
# * `pool`: a `concurrent.futures.ProcessPoolExecutor`. asyncio awaits
#   `loop.run_in_executor(pool, burn, ms)`; gevent's greenlet waits for the result through a
#   thread of the hub's pool; the selectors server is woken by the pool through a socketpair
#   it watches.
# * `threads` (gevent only): gevent's own thread pool, `gevent.get_hub().threadpool`, real OS
#   threads. That is the right tool for a blocking call that releases the GIL while it waits
#   (a C library, a DNS lookup, a file read). Does it help pure-Python CPU work?
#
# Here is the asyncio version:

# %%
from labkit.servers import compute_asyncio

labkit.show(compute_asyncio.answer)

# %% [markdown]
# The same measurement, each server started with its offload. The process pools start
# before the server says READY, so the first WORK does not pay for starting them; one worker
# process is enough for one WORK at a time.

# %%
OFFLOADS = {"gevent, threadpool": ("compute_gevent", {"offload": "threads"}),
            "gevent, process pool": ("compute_gevent", {"offload": "pool", "pool_size": 1}),
            "asyncio, process pool": ("compute_asyncio", {"offload": "pool", "pool_size": 1}),
            "selectors, process pool": ("compute_selectors", {"offload": "pool",
                                                               "pool_size": 1})}

def did_not_wait(rounds, label):
    rounds.claim(f"{label}: the others' p99 during the WORK stayed under a fifth of the "
                 "WORK's time", lambda t: t.best(label, "waited"), below=0.2)

with LatencyRounds(OFFLOADS, rounds=3, seconds=60, n_clients=50,
                   work_ms=WORK_MS) as offloaded:
    for label in OFFLOADS:
        if label.endswith("process pool"):
            did_not_wait(offloaded, label)
    offloaded.claim("gevent's threadpool: the others' p99 during the WORK was over twice "
                    "the process pool's", lambda t: t.best("gevent, threadpool", "during p99")
                    / t.best("gevent, process pool", "during p99"), above=2)
labkit.claim("no client failed", not offloaded.errors(), measured=str(offloaded.errors()[:3]))
plot_latency({"gevent, no offload": one_loop.latest()["gevent"], **offloaded.latest()})

# %% [markdown]
# With a process pool, the others wait for the WORK hardly at all: the loop only waits for
# the pool's answer, as it waits for a socket. With gevent's threadpool, the slowest of them
# wait over twice as long as with a process pool. The burning thread holds the GIL. The hub's
# thread lets go of it while it waits in `epoll`, and for a moment in every `recv` and `send`.
# To get it back, it waits the 5 ms switch interval, then asks the burning thread to let go. So
# the hub runs in short turns, and the PINGs queue for them.
#
# A thread pool is for calls that *wait*. For pure-Python work on this Python (3.11, with a
# GIL), another process is what gives the loop its interpreter back. Newer Pythons add two
# ways inside one process. On a free-threaded build, threads compute at once (until something
# turns the GIL back on, as gevent does). Python 3.14's `InterpreterPoolExecutor` runs each
# worker thread in an interpreter of its own, with its own GIL.

# %% [markdown]
# ## Inside the process pool
#
# `compute.process_pool` starts the pool every server uses. It decides four things that the
# loop never sees:
#
# * **The start method**, how a worker process is made. `fork` copies this process, its open
#   sockets included, but only the thread that called it: a lock another thread held stays
#   locked in the copy. `spawn` starts a fresh `python`. `forkserver` forks from a small,
#   clean server process. We ask for `spawn`. On Linux the default is `fork`, and `forkserver`
#   from Python 3.14.
# * **Pickling.** The pool sends the function and its arguments to the worker as bytes. A
#   function goes *by name*: the worker imports it.
# * **The `__main__` guard.** A spawned worker runs the parent's main file again, named
#   `__mp_main__`. A server's `if __name__ == "__main__":` keeps that run from starting a
#   second server.
# * **Start-up.** A fresh interpreter must start and import our module before its first call.

# %%
labkit.show(compute.process_pool)

# %%
import multiprocessing
import pickle

print("this Python's default start method:", multiprocessing.get_start_method())
sent = pickle.dumps((compute.burn, (300,)))
labkit.claim(f"the pool sends burn(300) in {len(sent)} bytes that name labkit.compute and "
             "burn, without burn's code", b"labkit.compute" in sent and b"burn" in sent
             and compute.burn.__code__.co_code not in sent, measured=repr(sent))
_ = labkit.claim("a function defined in this notebook goes as __main__.countdown",
                 b"__main__" in pickle.dumps(countdown) and b"countdown" in pickle.dumps(countdown))

# %% [markdown]
# A spawned worker's `__main__` is not this notebook, so it could not find
# `__main__.countdown`: a pool's functions live in a module, as `burn` does in
# `labkit.compute`. Nor does a worker spawned from this kernel run a main file again: IPython
# has put the notebook's namespace in `sys.modules["__main__"]`, a module with no file. What
# start-up costs, measured:

# %%
from concurrent.futures import ProcessPoolExecutor

SPAWN = multiprocessing.get_context("spawn")

def first_call():
    """Start a pool of one spawned worker, and make its first call."""
    with ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
        pool.submit(compute.burn, 1).result()

with ProcessPoolExecutor(1, mp_context=SPAWN) as running:
    running.submit(compute.burn, 1).result()           # started: its worker is up
    startup = labkit.Timing({"start a pool, first call": first_call,
                             "a call to a running pool":
                                 lambda: running.submit(compute.burn, 1).result()},
                            rounds=3, seconds=20)
    startup.claim("starting a pool for its first call took over 20 times as long as a call "
                  "to a running pool", lambda t: t["start a pool, first call"]
                  / t["a call to a running pool"], above=20)
for way in startup.ways:
    print(f"{way}: {startup.best(way) * 1000:.1f} ms")

# %% [markdown]
# A new interpreter has to start, then import `labkit.compute` and the `labkit` package
# around it. So a server starts its pool before it says READY (`compute.start_pool`), and
# keeps it: every WORK then costs a call, not a start-up.

# %% [markdown]
# ## Pre-fork: many loops, one port
#
# A pool helps when the work can be cut out and shipped. The other way to use more CPUs is
# to run the whole server several times. A parent binds the port, then `fork()`s N
# *workers*, each running the same event loop. gunicorn, uWSGI and nginx run this way. There
# are two ways for N processes to accept on one port (`prefork_compute --balance ...`):
#
# * **shared**: the parent listens once and forks; every worker inherits the one listening
#   socket and waits for it in its own `epoll`. There is *one* accept queue. A new
#   connection wakes the waiting workers and one of them wins `accept()` (how many it wakes:
#   measured below). Who gets a client depends on who is idle and wakes first.
# * **reuseport**: each worker binds a socket of its own to the same port with the
#   `SO_REUSEPORT` option. There is one accept queue *per worker*, and the kernel picks the
#   queue for each new connection by a hash of its addresses and ports: over many clients
#   (each with its own source port), an even spread, whether a worker is busy or not.
#
# The worker's side of the difference:

# %%
from labkit.servers import prefork_compute

labkit.show(prefork_compute.worker)

# %% [markdown]
# 200 connections, 50 at a time, each sending 5 PINGs then closing; the pid in each answer
# says which worker served it. `spread` counts requests and connections per worker, and
# *Jain's fairness index*, (Σx)² / (n·Σx²) over the n workers' counts: 1.0 when every worker
# served the same, 1/n when one served everything.

# %%
from labkit.cpu_lab import measure_spread, plot_spread, plot_spread_latency, spread_table

WORKERS = 2
BALANCES = {"shared socket": ("prefork_compute", {"workers": WORKERS}),
            "SO_REUSEPORT": ("prefork_compute", {"workers": WORKERS, "balance": "reuseport"})}
spreads = measure_spread(BALANCES, n_connections=200, requests_each=5)
for label, s in spreads.items():
    labkit.claim(f"{label}: all 1,000 PINGs answered, each connection by one worker only",
                 not s.errors and sum(s.requests.values()) == 1000
                 and all(s.requests[pid] == 5 * s.connections.get(pid, 0) for pid in s.requests),
                 measured=f"{s.requests} {s.connections} {s.errors[:2]}")
labkit.claim("SO_REUSEPORT: both workers served, fairness over 0.9 (the hash spreads evenly)",
             spreads["SO_REUSEPORT"].workers == WORKERS
             and spreads["SO_REUSEPORT"].fairness(WORKERS) > 0.9,
             measured=spread_table(spreads, WORKERS))
plot_spread(spreads, n_workers=WORKERS)

# %% [markdown]
# In our runs both ways spread the load: `SO_REUSEPORT` evenly, by its hash, and the shared
# socket as the wake-ups fall (run it again: its split changes). The latency of every
# request, one histogram per way:

# %%
plot_spread_latency(spreads)

# %% [markdown]
# The difference shows when a worker is busy. One client asks a worker for `WORK 1000`; while
# it burns, 40 new clients connect at once, one PING each. With one shared queue, only the
# idle worker is waiting in `epoll`, so it takes them all. With a queue per worker, the hash
# sends about half of them to the busy worker's queue, where they wait for its CPU work.

# %%
from labkit.cpu_lab import newcomers_while_busy

labkit.show(newcomers_while_busy)

# %%
newcomers = labkit.Timing({"shared": lambda: newcomers_while_busy("shared"),
                           "SO_REUSEPORT": lambda: newcomers_while_busy("reuseport")},
                          rounds=3, seconds=30)
newcomers.claim("shared socket: all 40 newcomers were answered in under 0.5 s",
                lambda t: t.best("shared", "slowest"), below=0.5)
newcomers.claim("SO_REUSEPORT: the newcomers hashed to the busy worker waited for its WORK: "
                "the fastest of them took over 0.5 s", lambda t: t.best("SO_REUSEPORT",
                                                                         "busy fastest"),
                above=0.5)
_ = labkit.claim("in every round all 40 were answered, the busy worker took none of them with a "
                 "shared socket and 5 or more with SO_REUSEPORT",
                 all(n == 40 for way in newcomers.ways for n in newcomers.values(way, "answered"))
                 and set(newcomers.values("shared", "busy took")) == {0}
                 and min(newcomers.values("SO_REUSEPORT", "busy took")) >= 5,
                 measured=str(newcomers.records))

# %% [markdown]
# So the shared socket routes around a busy worker, and `SO_REUSEPORT` does not: a server
# whose requests may compute for long prefers the shared queue. Either way, a connection
# stays with the worker that accepted it.
#
# ## How many workers does one connection wake?
#
# A new connection on a shared socket wakes *every* worker waiting for it in `epoll`, and one
# of them wins. The kernel looks again before it returns from `epoll_wait`, and puts a worker
# back to sleep if the connection is gone; one that ran sooner reaches `accept()` and finds
# nothing. That is the *thundering herd*. There are two cures. With `EPOLLEXCLUSIVE` (Linux
# 4.5) on each worker's registration of the shared socket, a connection wakes one waiter, or a
# few (the man page: "one or more"). With `SO_REUSEPORT`, only the worker whose socket the
# hash chose wakes up.
#
# `accept_wakeups` counts the wake-ups: four threads wait, each in its own `epoll` like a
# worker, while 40 clients connect one at a time. Each sleep adds one to the thread's
# `voluntary_ctxt_switches` in `/proc`, so every wake-up counts, even one that never reached
# Python. The count can run high: a woken thread that waits for the GIL sleeps again.

# %%
from labkit.cpu_lab import ACCEPT_MODES, accept_wakeups

labkit.show(accept_wakeups)

# %%
wakeups = {mode: accept_wakeups(mode, waiters=4, connections=40) for mode in ACCEPT_MODES}
per_connection = {mode: n["wake-ups"] / max(n["accepted"], 1) for mode, n in wakeups.items()}
labkit.claim("every mode accepted all 40 connections",
             all(n["accepted"] == 40 for n in wakeups.values()), measured=str(wakeups))
labkit.claim("shared socket, plain EPOLLIN: each connection woke over 3 of the 4 waiters, on "
             "average", per_connection["shared"] > 3, measured=str(per_connection))
labkit.claim("the same socket with EPOLLEXCLUSIVE: about one wake-up per connection (under "
             "1.5)", per_connection["exclusive"] < 1.5, measured=str(per_connection))
_ = labkit.claim("SO_REUSEPORT: about one wake-up per connection (under 1.5)",
                 per_connection["reuseport"] < 1.5, measured=str(per_connection))

# %% [markdown]
# nginx uses both cures. By default its workers share each listening socket. Where the kernel
# has `EPOLLEXCLUSIVE` (nginx 1.11.3 and later) they register it with that flag, so a
# connection wakes about one worker. Only `listen ... reuseport` gives each worker a socket of
# its own, as our `reuseport` does. Our `prefork_compute` shares with plain `EPOLLIN`, herd and
# all: with two idle workers, that is one wake-up too many per connection.
#
# ## A CPU request in one worker leaves the other's clients alone
#
# Now Beazley's measurement again, on two workers (`SO_REUSEPORT`, so that both get about
# half of the 50 clients). The PINGs answered by the worker that did the WORK are drawn
# apart from those answered by the other one:

# %%
PREFORK = f"pre-fork, {WORKERS} workers"
with LatencyRounds({PREFORK: BALANCES["SO_REUSEPORT"]}, rounds=3, seconds=60, n_clients=50,
                   work_ms=WORK_MS) as prefork:
    prefork.claim("the busy worker's clients waited for the WORK: their p99 during it was over "
                  "half the WORK's time", lambda t: t.best(PREFORK, "same waited"), above=0.5)
    prefork.claim("the other worker's clients barely noticed: their p99 during it stayed under "
                  "a fifth of the WORK's time", lambda t: t.best(PREFORK, "other waited"),
                  below=0.2)
labkit.claim("in every round, both workers answered PINGs during the WORK",
             min(prefork.values(PREFORK, "same during count")) > 0
             and min(prefork.values(PREFORK, "other during count")) > 0,
             measured=str(prefork.records))
labkit.claim("no client failed", not prefork.errors(), measured=str(prefork.errors()[:3]))
plot_latency(prefork.latest())

# %% [markdown]
# Each worker is one process with one loop. With two CPUs to use, the busy one computes on
# one and the other goes on serving on the other. Under a one-CPU quota the claim above held
# too, in our runs. The quota caps the CPU time the workers get together in each 100 ms
# period. Within it, the scheduler gives each runnable worker turns of a few milliseconds at
# most. Once the period's time is spent, both wait for the next one. So the other worker's
# clients wait for a turn or for the next period, not for the WORK. What one CPU cannot give
# is the throughput of two.
#
# ## The real engine: gunicorn with gevent workers
#
# This is a common way to run gevent code in production: `gunicorn -k gevent --workers N
# app:app`. The master process binds the port and forks N workers; each worker monkey-patches,
# runs a gevent hub, and serves a WSGI app with one greenlet per connection. Our app answers the
# same two requests over HTTP (`GET /ping?token=T`, `GET /work?ms=N`):

# %%
labkit.show(compute.wsgi_app)

# %% [markdown]
# `gunicorn_compute` starts gunicorn like every server of this course (`labkit.serve`, port 0,
# stopped with the kernel). Either it hands gunicorn its listening socket (`--bind fd://N`:
# one shared socket, as above), or it passes `--reuse-port`. What that flag does depends on
# gunicorn's version. In the gunicorn pinned here (27.0), each worker binds a `SO_REUSEPORT`
# socket of its own. Releases up to 23.0 set the flag on the master's one socket, which every
# worker shares: one queue, no hash. The same spread, over HTTP with keep-alive:

# %%
GUNICORN = {"gunicorn -k gevent": ("gunicorn_compute", {"workers": WORKERS}),
            "gunicorn -k gevent --reuse-port": ("gunicorn_compute", {"workers": WORKERS,
                                                                       "reuse_port": True})}
gunicorn_spreads = measure_spread(GUNICORN, n_connections=200, requests_each=5)
for label, s in gunicorn_spreads.items():
    labkit.claim(f"{label}: all 1,000 requests answered, by both workers, each connection "
                 "by one worker", not s.errors and sum(s.requests.values()) == 1000
                 and s.workers == WORKERS
                 and all(s.requests[pid] == 5 * s.connections.get(pid, 0) for pid in s.requests),
                 measured=spread_table(gunicorn_spreads, WORKERS))
labkit.claim("--reuse-port: fairness over 0.9",
             gunicorn_spreads["gunicorn -k gevent --reuse-port"].fairness(WORKERS) > 0.9,
             measured=spread_table(gunicorn_spreads, WORKERS))
plot_spread(gunicorn_spreads, n_workers=WORKERS)

# %% [markdown]
# gunicorn behaves like our `prefork_compute`. Handed one listening socket, its workers share
# one accept queue and split the connections as they wake. (With several workers, gunicorn
# lets each gevent worker accept one connection per wake-up.) With `--reuse-port`, each worker
# has its own queue and the kernel's hash spreads them evenly. A student's gevent server
# reaches more CPUs the same way: several processes, each one loop.

# %% [markdown]
# ## Sitting 3 of 3 (about 35 minutes) — a good place to stop
#
# The third of this lesson's three sittings starts here. Coming back to a fresh kernel? Select
# the cell below and choose **Run → Run All Above Selected Cell** first: this part uses what
# the cells above define.

# %% [markdown]
# ## Try it yourself
#
# `run_workers` is what the panel runs: a pre-fork server with `workers` workers and the
# chosen `balance`, `n_clients` clients sending PINGs, and one `WORK` of `work_ms`.

# %%
from ipywidgets import Dropdown, IntSlider

from labkit.cpu_lab import waited_for_work
from labkit.widgets import panel

def run_workers(workers=2, balance="shared", work_ms=300, n_clients=20):
    with labkit.serve("prefork_compute", workers=workers, balance=balance) as srv:
        run = latency_under_cpu(srv.address, n_clients=n_clients, work_ms=work_ms)
    run.label = f"{workers} workers, {balance}, WORK {work_ms} ms"
    return run

def summary(run):
    same, other = run.percentiles("during", "same"), run.percentiles("during", "other")
    return (f"{len(run.pids)} workers answered; p99 during the WORK: {same.p99:.1f} ms on the "
            f"busy worker, {other.p99:.1f} ms on the others ({other.count} PINGs)")

# %%
checked = []
def checked_run():
    checked.append(run_workers(workers=2, balance="reuseport", work_ms=300))
    return {"same waited": waited_for_work(checked[-1], "same")}

panel_check = labkit.Timing(checked_run, rounds=3, seconds=20)
panel_check.claim("the busy worker's clients waited for the WORK: their p99 during it was "
                  "over half the WORK's time", lambda t: t.best("same waited"), above=0.5)
_ = labkit.claim("two workers answered the 20 clients, in every round",
                 all(len(run.pids) == 2 for run in checked), measured=summary(checked[-1]))

# %%
# NBVAL_IGNORE_OUTPUT
panel(run_workers, draw=lambda run: plot_latency({run.label: run}),
      controls={"workers": IntSlider(2, min=1, max=8, description="workers"),
                "balance": Dropdown(options=["shared", "reuseport"], value="shared",
                                    description="balance"),
                "work_ms": IntSlider(300, min=50, max=2000, step=50, description="WORK (ms)"),
                "n_clients": IntSlider(20, min=1, max=200, description="clients")},
      summary=summary)

# %% [markdown]
# Try: one worker (everyone waits), then 4 with `reuseport` (about a quarter wait), then 4
# with `shared` and 200 clients.
#
# ## What this run measured
#
# The numbers behind the claims above, as measured on this run (they vary from run to run
# and from machine to machine; the claims hold on each): the others' p50/p99 in ms before,
# during and after the WORK, and the spread over workers.

# %%
# NBVAL_IGNORE_OUTPUT
print(latency_table({**one_loop.latest(), **offloaded.latest(), **prefork.latest()}))
print()
print(spread_table({**spreads, **gunicorn_spreads}, WORKERS))

# %% [markdown]
# ## Summary
#
# * With the GIL on, one process runs Python on one CPU at a time: two threads took as long
#   as one doing both. Two processes used two CPUs at once, where two were usable.
# * One CPU request stalls every client of the loop, on selectors, gevent and asyncio alike:
#   during it, the others' p99 was most of the WORK's time.
# * gevent's monitor thread prints the blocked greenlet's stack while it blocks. asyncio's
#   debug mode names the slow task after its step, at the `await` that ended it.
# * A process pool fixes it: the loop only waits. A thread pool does not, for pure-Python
#   work: the hub's thread waits for the GIL at every turn. The pool spawns its workers,
#   sends each call pickled (the function by name), and pays its start-up once.
# * Pre-fork runs N copies of the loop. A shared socket wakes every waiting worker (about one,
#   with `EPOLLEXCLUSIVE`), and a busy worker takes no newcomers. With `SO_REUSEPORT` each
#   worker has its own queue, filled by a hash, busy or not. A CPU request in one worker leaves the
#   other's clients alone; gunicorn's gevent workers do the same in production.

# %% [markdown]
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint (call
# it again for the next one), `check(n, your_answer)` tells you if you have it, and `answer(n)`
# shows a worked solution with a sentence on why it is right: try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(10)

# %% [markdown]
# **Exercise 1.** On the gevent server, one client asks for 500 ms of pure-Python CPU work
# while 50 others send PINGs. Which offload brings the others' median latency during the WORK
# back to normal?
# (a) nothing, (b) gevent's threadpool, (c) a process pool. Answer `"a"`, `"b"` or `"c"`.

# %%
check(1, ...)

# %% [markdown]
# **Exercise 2.** Write `fairness(counts)`: Jain's fairness index of the requests each worker
# served, (sum of the counts)² / (n × sum of the squares), for n workers. It is 1 when every
# worker served the same, and 1/n when one worker served them all.

# %%
def fairness(counts):
    ...   # your code here

check(2, fairness)

# %% [markdown]
# **Exercise 3.** On one event loop, 50 clients send PINGs while one client asks for
# `WORK 500`. About how many milliseconds does the unluckiest PING wait for its PONG?

# %%
check(3, ...)

# %% [markdown]
# **Exercise 4.** Write `async def reply(line, pool)`: the reply (bytes) to one line of the
# compute protocol, where `WORK <ms>` runs `burn(ms)` in `pool` with `loop.run_in_executor`
# and replies `DONE <ms> <pid>`, and any other line is answered by
# `compute.answer(line, os.getpid())` (`from labkit import compute`).

# %%
async def reply(line, pool):
    ...   # your code here

check(4, reply)
