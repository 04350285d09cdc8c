# %% [markdown]
# # 10 · CPU work and processes: what one event loop cannot do
#
# Every loop in this course, ours, gevent's and asyncio's, runs its tasks on one thread, and
# switches only where a task waits. That is why it serves thousands of clients that mostly
# wait; it is also why it cannot compute for two. This lesson measures both halves: one client
# that asks for CPU work stalls every other client of the loop, and the way out is more
# *processes*, either a pool that the loop hands CPU work to, or several copies of the whole
# server (pre-fork, as gunicorn runs gevent in production).
#
# **After this lesson you can**
# * measure why one Python process computes on one core at a time (threads included), and
#   detect a free-threaded build;
# * show what one CPU-bound request does to every other client's latency (p50/p99 before,
#   during and after), on selectors, gevent and asyncio;
# * catch the culprit with gevent's monitor thread and asyncio's debug mode;
# * move CPU work to a process pool, and say why a thread pool does not help pure-Python work;
# * pre-fork N workers on one shared socket or on `SO_REUSEPORT`, count how the kernel spreads
#   connections over them, and run gunicorn's gevent workers the same way.
#
# **Time:** about 80 minutes: 55 reading and running, 25 exercises; sittings of 20 + 25 + 35.

# %%
import os
import subprocess
import sys
import threading
import time

import labkit

CORES = len(os.sched_getaffinity(0))         # the CPUs this process may run on

# %% [markdown]
# ## One process computes on one core at a time
#
# The classic demonstration (David Beazley's, with his `countdown`): a loop of pure Python
# with no waits in it. Run it twice one after the other, then once in each of two threads,
# and then once in each of two processes, each a fresh `python` running the same function (a
# process has its own interpreter). We time each way with the wall clock and with the CPU
# time this process used; the ways take turns, three rounds, and each keeps its fastest run
# (the one least disturbed by whatever else the machine was doing).

# %%
def countdown(n):
    while n:
        n -= 1

N = 10_000_000   # long enough that starting a python is small beside it
PROGRAM = f"def countdown(n):\n    while n:\n        n -= 1\ncountdown({N})"

def in_threads():
    threads = [threading.Thread(target=countdown, args=(N,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

def in_processes(program=PROGRAM, n=2):
    children = [subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL) for _ in range(n)]
    return [child.wait(timeout=60) for child in children]

WAYS = {"one after the other": lambda: (countdown(N), countdown(N)),
        "two threads": in_threads, "two processes": in_processes,
        "two empty pythons": lambda: in_processes("pass")}   # their start-up, to subtract

# %%
def fastest(ways, rounds=3):
    """(wall, CPU) seconds of each way's fastest run; the ways take turns."""
    times = {name: [] for name in ways}
    for _ in range(rounds):
        for name, run in ways.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: min(runs) for name, runs in times.items()}

took = fastest(WAYS)
startup = took.pop("two empty pythons")[0]
took["two processes"] = (took["two processes"][0] - startup, took["two processes"][1])
for name, (wall, cpu) in took.items():
    print(f"{name:>19}: wall {wall:.2f} s, CPU of this process {cpu:.2f} s")
labkit.claim("both processes finished their countdown", in_processes() == [0, 0])

# %% [markdown]
# (The processes' CPU time is theirs, not this process's: it shows here as about none.) The
# numbers above vary from run to run; what they say does not. The checks:

# %%
gil = getattr(sys, "_is_gil_enabled", lambda: True)()   # Python 3.13+ can say; older: always
print("this Python has a global interpreter lock (GIL):", gil)
sequential, threads, processes = (took[way][0] for way in took)
if gil:
    labkit.claim("two threads were no faster than one thread doing both (over 0.7 times its "
                 "time; two cores running both at once would make it 0.5)",
                 threads > 0.7 * sequential, measured=f"{threads:.3f} vs {sequential:.3f}")
    labkit.claim("the threads' process used at most one core's worth of CPU (CPU/wall < 1.2)",
                 took["two threads"][1] < 1.2 * threads, measured=str(took))
else:
    print("A free-threaded build: two threads may really compute at once here.")
labkit.claim("two processes took under 0.9 times as long as one after the other, where two "
             "cores are free (on one core they share it: no faster, over 0.7 times)",
             processes < 0.9 * sequential if CORES >= 2 else processes > 0.7 * sequential,
             measured=f"{processes:.3f} vs {sequential:.3f} on {CORES} cores")

# %% [markdown]
# Two threads doing the work take as long as one thread doing it twice, and the process's CPU
# time is no more than its wall time: at any moment only one of the two threads ran. CPython
# has a *global interpreter lock* (the GIL): a thread must hold it to run Python code, and it
# is handed over at most every 5 ms (`sys.getswitchinterval()`), or when a thread waits for
# I/O. Two processes are two interpreters, each with its own lock: on two cores they compute
# at once. (Python 3.13 has an optional *free-threaded* build without the GIL; the cell above
# asks `sys._is_gil_enabled()` where it exists. gevent does not run on those builds.)
#
# An event loop is one thread, so the same holds for it, whatever the library: while one of
# its tasks computes, nothing else in that process runs. What does that do to a server?
#
# ## One CPU request hurts everyone
#
# This lesson's servers speak a tiny line protocol (`labkit.compute`): `PING <token>` is
# answered at once with `PONG <token> <pid>`, and `WORK <ms>` burns `ms` milliseconds of the
# server's CPU in pure Python before it answers `DONE <ms> <pid>`. The pid says which process
# answered; it will matter when there are several. The CPU work:

# %%
from labkit import compute

labkit.show(compute.burn)

# %% [markdown]
# The selectors server of lesson 07, answering this protocol (`compute_selectors`), in the
# part that answers a client's lines: without a pool (`self.pool` is set only with
# `--offload pool`, later), `compute.answer` parses each line, burns, and replies, right in
# the loop.

# %%
from labkit.servers import compute_selectors

labkit.show(compute_selectors.Server.answer_lines)

# %% [markdown]
# Now the measurement (Beazley's, in his talk "Python Concurrency From the Ground Up"): 50
# clients, each a thread of this kernel, send PINGs one after another; 0.3 s in, one more
# client asks for `WORK 500`; 0.3 s after its answer, all stop. Every PING's latency is kept
# with the time it was sent, so we can split them into those answered *before* the WORK was
# sent, those *during* it, and those sent *after* its answer. `latency_under_cpu` does it:

# %%
from labkit.clients.compute import latency_under_cpu

labkit.show(latency_under_cpu)

# %% [markdown]
# The same run against the three loops of this course: selectors (lesson 07), gevent
# (lesson 06) and asyncio (lesson 09). `latency_runs` starts each server once and runs
# `latency_under_cpu` against each in turn:

# %%
from labkit.cpu_lab import latency_runs, latency_table, plot_latency

WORK_MS = 500
LOOPS = {"selectors": ("compute_selectors", {}), "gevent": ("compute_gevent", {}),
         "asyncio": ("compute_asyncio", {})}
one_loop = latency_runs(LOOPS, n_clients=50, work_ms=WORK_MS)
for name, run in one_loop.items():
    before, during = run.percentiles("before"), run.percentiles("during")
    labkit.claim(f"{name}: the others' p99 during the WORK is over 5 times their p99 before, "
                 f"and at least half the WORK's {WORK_MS} ms",
                 during.p99 > 5 * before.p99 and during.p99 >= WORK_MS / 2,
                 measured=f"p99 {before.p99:.1f} ms before, {during.p99:.1f} ms during")
    labkit.claim(f"{name}: after the WORK, the p99 is back under a third of the p99 during",
                 run.percentiles("after").p99 < during.p99 / 3,
                 measured=f"after {run.percentiles('after').p99:.1f} ms")
    labkit.claim(f"{name}: no client failed", not run.errors, measured=str(run.errors[:3]))
plot_latency(one_loop)

# %% [markdown]
# Each panel is one server: a dot per PING, at the time it was sent, its latency on a log
# scale; the red band is the WORK request. Before it, PINGs take a fraction of a millisecond.
# Every PING sent during the band waits for the band's end: the loop is computing, and
# reads nothing. The numbers differ from run to run; the shape does not, on any of the three
# loops: one slow request makes every client slow.
#
# ## Catch it: gevent's monitor thread and asyncio's debug mode
#
# In a real server the culprit is rarely this obvious. Both libraries can name it.
# gevent's *monitor thread* (`gevent.config.monitor_thread = True`) is a real OS thread that
# looks at the hub every `max_blocking_time` seconds (here 0.1): if the hub has not run since,
# it prints the stack of the greenlet that holds it. asyncio's *debug mode* times every step
# of every task, and logs each step longer than `slow_callback_duration` (here 0.1 s, as in
# lesson 09). Both servers take `--monitor`; one `WORK 300` each, and their logs:

# %%
import re

from labkit.clients.compute import connect, ping, work

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
labkit.claim("... and the stack it printed ends in compute.burn",
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
labkit.claim("... and it took at least the 0.3 s of the WORK", float(slow[0][2]) >= 0.3)

# %% [markdown]
# Two ways to name the same culprit. gevent's monitor is a thread of its own, so it speaks
# *while* the hub is blocked (every 0.1 s, as long as it lasts) and prints where the blocked
# greenlet is right now: inside `burn`, called from the server's `answer`. asyncio's debug
# mode can only time a step once it has ended: it names the task and the line where that
# step began (`handle`, at an `await` whose result it was given), and the time it took. Both
# cost little enough to leave on while developing; neither fixes anything.

# %% [markdown]
# ## Sitting 2 of 3 (about 25 minutes) — a good place to stop
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
#   `loop.run_in_executor(pool, burn, ms)`; gevent waits in a greenlet for the pool's result;
#   the selectors server is woken by the pool through a socketpair it watches.
# * `threads` (gevent only): gevent's own thread pool, `gevent.get_hub().threadpool`, real OS
#   threads. That is the right tool for a blocking call that releases the GIL while it waits
#   (a C library, a DNS lookup, a file read). Does it help pure-Python CPU work?
#
# Here is the asyncio version:

# %%
from labkit.servers import compute_asyncio

labkit.show(compute_asyncio.answer)

# %% [markdown]
# The same measurement, each server started with its offload (the pools start before the
# server says READY, so the first WORK does not pay for starting them):

# %%
OFFLOADS = {"gevent, threadpool": ("compute_gevent", {"offload": "threads"}),
            "gevent, process pool": ("compute_gevent", {"offload": "pool"}),
            "asyncio, process pool": ("compute_asyncio", {"offload": "pool"}),
            "selectors, process pool": ("compute_selectors", {"offload": "pool"})}
offloaded = latency_runs(OFFLOADS, n_clients=50, work_ms=WORK_MS)
during = {label: run.percentiles("during") for label, run in offloaded.items()}
for label in OFFLOADS:
    if label.endswith("process pool"):
        labkit.claim(f"{label}: during the WORK the others' p99 stayed under a fifth of it",
                     during[label].p99 < WORK_MS / 5, measured=f"{during[label].p99:.1f} ms")
threads, pool = during["gevent, threadpool"], during["gevent, process pool"]
labkit.claim("gevent's threadpool: during the WORK the others' median latency was over 3 "
             "times the process pool's", threads.p50 > 3 * pool.p50, measured=str(during))
labkit.claim("... and they got fewer than half as many PINGs answered during it",
             threads.count < pool.count / 2, measured=str(during))
labkit.claim("no client failed", not any(run.errors for run in offloaded.values()))
plot_latency({"gevent, no offload": one_loop["gevent"], **offloaded})

# %% [markdown]
# With a process pool, the PINGs during the WORK are as fast as before it: the loop only
# waits for the pool's answer, as it waits for a socket. With gevent's threadpool they are
# not: the burning thread holds the GIL, the hub's thread gets it back only when the burner
# is made to let go (every 5 ms at most), and each step of every PING (wake up, `recv`,
# `send`) waits for such a turn. Far fewer PINGs get through, each waits several times
# longer, and how much longer varies wildly from run to run (run the cell again). A thread
# pool is for calls that *wait*; for pure-Python work, only another process gives the loop
# its interpreter back.
#
# ## Pre-fork: many loops, one port
#
# A pool helps when the work can be cut out and shipped. The other way to use more cores
# is to run the whole server several times: a parent binds the port, then `fork()`s N
# *workers*, each running the same event loop. This is how gunicorn, uWSGI and nginx run.
# Two ways for N processes to accept on one port (`prefork_compute --balance ...`):
#
# * **shared**: the parent listens once and forks; every worker inherits the one listening
#   socket and waits for it in its own `epoll`. There is *one* accept queue: a new
#   connection wakes the waiting workers, one of them wins `accept()`, the others find
#   nothing (`BlockingIOError`). Who gets a client depends on who is idle and wakes first.
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
# On an idle server both ways spread the load; the hash of `SO_REUSEPORT` evenly, the shared
# socket as the wake-ups fall (run it again: its split changes). The latency of every
# request, one histogram per way:

# %%
plot_spread_latency(spreads)

# %% [markdown]
# The difference shows when a worker is busy. One client asks a worker for `WORK 1000`; while
# it burns, 40 new clients connect, one PING each. With one shared queue, only the idle
# worker is waiting in `epoll`, so it takes them all. With a queue per worker, the hash sends
# about half of them to the busy worker's queue, where they wait for its second of CPU work.

# %%
from concurrent.futures import ThreadPoolExecutor

from labkit.clients.compute import spread

def newcomers_while_busy(balance, work_ms=1000, n=40):
    """While one worker burns `work_ms`, `n` new connections PING once: their Spread, and
    the busy worker's pid."""
    with labkit.serve("prefork_compute", workers=2, balance=balance) as srv, \
            connect(srv.address) as conn, ThreadPoolExecutor(1) as background:
        busy = background.submit(work, conn, work_ms)
        time.sleep(0.2)                              # the WORK has started
        newcomers = spread(srv.address, n_connections=n, requests_each=1, concurrency=10)
        return newcomers, busy.result()

busy_shared, busy_pid = newcomers_while_busy("shared")
labkit.claim("shared socket: the busy worker accepted none of the 40 newcomers",
             busy_shared.connections.get(busy_pid, 0) == 0, measured=str(busy_shared.connections))
busy_reuse, busy_pid = newcomers_while_busy("reuseport")
stuck = busy_reuse.connections.get(busy_pid, 0)
labkit.claim("SO_REUSEPORT: the hash still sent some of them (5 or more) to the busy worker",
             stuck >= 5, measured=str(busy_reuse.connections))
labkit.claim("... and they waited for its WORK: the slowest newcomer took over 0.5 s",
             max(busy_reuse.latencies) > 0.5 > max(busy_shared.latencies),
             measured=f"{max(busy_reuse.latencies):.3f} vs {max(busy_shared.latencies):.3f}")

# %% [markdown]
# So the shared socket routes around a busy worker, and `SO_REUSEPORT` does not (nginx and
# HAProxy use it for its even spread and its lack of wake-ups; a server whose requests may
# compute for long prefers the shared queue). Either way, a connection stays with the worker
# that accepted it.
#
# ## A CPU request in one worker leaves the other's clients alone
#
# Now Beazley's measurement again, on two workers (`SO_REUSEPORT`, so that both get about
# half of the 50 clients). The PINGs answered by the worker that did the WORK are drawn
# apart from those answered by the other one:

# %%
prefork = latency_runs({f"pre-fork, {WORKERS} workers": BALANCES["SO_REUSEPORT"]},
                       n_clients=50, work_ms=WORK_MS)
run = prefork[f"pre-fork, {WORKERS} workers"]
same, other = run.percentiles("during", "same"), run.percentiles("during", "other")
labkit.claim("both workers answered PINGs during the WORK", same.count and other.count,
             measured=f"{same.count} and {other.count}")
labkit.claim("the busy worker's clients waited for the WORK: their p99 during it was over "
             f"half its {WORK_MS} ms", same.p99 > WORK_MS / 2, measured=f"{same.p99:.1f} ms")
labkit.claim("the other worker's clients barely noticed: their p99 during the WORK stayed "
             "under a fifth of it where two cores are free (on one core, where the two "
             "workers share it: under a third of the busy worker's clients' p99)",
             other.p99 < (WORK_MS / 5 if CORES >= 2 else same.p99 / 3),
             measured=f"{other.p99:.1f} ms vs {same.p99:.1f} ms on {CORES} cores")
plot_latency(prefork)

# %% [markdown]
# Each worker is one process with one loop on one core; the busy one computes on its core
# and the other goes on serving on the other. (On one core the kernel's scheduler still
# shares the core between the two processes every few milliseconds, and wakes the one that
# was waiting for a socket quickly: the other worker's clients suffer little even there. What
# one core cannot give is the throughput of two.)
#
# ## The real engine: gunicorn with gevent workers
#
# This is how gevent code runs in production: `gunicorn -k gevent --workers N app:app`. The
# master process binds the port and forks N workers; each worker monkey-patches, runs a
# gevent hub, and serves a WSGI app with one greenlet per connection. Our app answers the
# same two requests over HTTP (`GET /ping?token=T`, `GET /work?ms=N`):

# %%
labkit.show(compute.wsgi_app)

# %% [markdown]
# `gunicorn_compute` starts gunicorn like every server of this course (`labkit.serve`, port 0,
# stopped with the kernel): either it hands gunicorn its listening socket (`--bind fd://N`:
# one shared socket, as above), or with `--reuse-port` gunicorn's workers each bind their own
# `SO_REUSEPORT` socket. The same spread, over HTTP with keep-alive:

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
# gunicorn behaves like our `prefork_compute`: handed one listening socket, its workers share
# one accept queue and split the connections as they wake (gunicorn lets each gevent worker
# accept one connection per wake-up when there are several workers); with `--reuse-port` each
# worker has its own queue and the kernel's hash spreads them evenly. A student's gevent
# server reaches more cores the same way: several processes, each one loop.

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
checked = run_workers(workers=2, balance="reuseport", work_ms=300)
labkit.claim("two workers answered the 20 clients", len(checked.pids) == 2)
labkit.claim("the busy worker's clients waited over 150 ms (half the WORK) during it",
             checked.percentiles("during", "same").p99 > 150, measured=summary(checked))

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
print(latency_table({**one_loop, **offloaded, **prefork}))
print()
print(spread_table({**spreads, **gunicorn_spreads}, WORKERS))

# %% [markdown]
# ## Summary
#
# * One Python process runs Python on one core at a time: two threads computing took as long
#   as one thread doing both, and two processes computed at once. An event loop is one
#   thread, so it computes for one client at a time.
# * One CPU request stalls every client of the loop: the others' p99 went from under a
#   millisecond or so to the whole length of the request, on selectors, gevent and asyncio
#   alike, and came back after it.
# * gevent's monitor thread prints the blocked greenlet's stack while it blocks; asyncio's
#   debug mode names the slow task's step once it ends.
# * A process pool fixes it (`loop.run_in_executor(pool, ...)`, or the pool's future awaited
#   in gevent): the loop only waits. A thread pool does not, for pure-Python work: the
#   burning thread holds the GIL.
# * Pre-fork runs N copies of the loop. With one shared socket the kernel wakes the idle
#   workers and the busy ones take no newcomers; with `SO_REUSEPORT` each worker has its own
#   queue, filled evenly by a hash, busy or not. A CPU request in one worker leaves the
#   other's clients alone. gunicorn's gevent workers are that, in production.
#
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
# while 50 others send PINGs. Which offload brings the others' p99 back to normal?
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
