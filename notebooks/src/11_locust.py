# %% [markdown]
# # 11 · gevent at work: load testing with Locust
#
# Every load client in this course so far was ours: threads (lesson 04), generator tasks on our
# own loop (lesson 05), greenlets (lessons 06 and 08). In practice a load tester does that
# job. A widely used one, [Locust](https://locust.io), is built on gevent: every simulated
# user is a greenlet. This lesson runs it against the course's servers and reads its numbers.
#
# **After this lesson you can**
# * run Locust headless against a server, bounded in time, and read its statistics:
#   requests/s, failures (a server's error rate), p50/p95/p99, second by second;
# * write a locustfile of your own (a user, a task, a `wait_time`), run it, and read its
#   failures and percentiles;
# * write a `User` for a protocol that is not HTTP (lesson 08's), which checks every byte
#   and reports each request with Locust's request event;
# * spread a run over processes (`--processes`), or over a master and workers as on several
#   machines (`--master`, `--worker`), and say what two cores buy;
# * say what Locust's bookkeeping costs per request, measured beside our own greenlets.
#
# **Time:** about 70 minutes: 35 reading and running, 35 exercises; sittings of 25 + 45.

# %% [markdown]
# ## Locust runs in a process of its own
#
# Importing Locust monkey-patches the whole process: its `__init__.py` calls gevent's
# `monkey.patch_all()`, as our scripts do. gevent's documentation asks for that first thing,
# while the program still has one thread; patching later "can lead to unreliable behaviour".
# A Jupyter kernel runs threads of its own before any cell runs (the claim below checks it).
#
# So labkit never imports Locust here. It runs `locust --headless` in a child process, like
# our servers, which dies with the kernel (the forked workers of `--processes` too). It reads
# back the files Locust writes in a temporary folder: its history, written every second
# (`--csv PREFIX --csv-full-history`), and its final statistics (`--json-file`). A run is
# bounded by Locust's own `-t` and by a hard timeout. Locust's master gets a free port on
# 127.0.0.1, and headless Locust starts no web UI.

# %%
import threading

import labkit
from labkit import locust_lab
from labkit.locust_lab import LocustWay, plot_over_time, run_locust

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

labkit.claim("this kernel already runs other threads than its main one",
             threading.active_count() > 1, measured=str(threading.enumerate()))
labkit.show(locust_lab.run_locust)

# %% [markdown]
# ## A locustfile for latency_http
#
# A *locustfile* is a Python module with `User` classes. This one is for lesson 04's slow web
# server, `latency_http`. Each user fetches a page, waits for the answer, and asks again at
# once. `FastHttpUser` is Locust's HTTP client on gevent sockets. It counts an answer as a
# failure unless its status is on its list of valid codes: 200–208, 226, 301–304, 307 and 308.
# The server fails a fraction of requests on purpose with 503 (`error_rate`), so we can watch
# it happen.

# %%
labkit.show("labkit.scripts.locustfiles.pages")

# %% [markdown]
# 20 users for 4 seconds against a server that answers after 50 ms and fails one request in
# ten (seeded, so the same requests fail in every run):

# %%
with labkit.serve("latency_http", delay=0.05) as pages:
    http = run_locust("pages", pages, users=20, seconds=4, options={"error_rate": 0.1})
failed = {row["Error"] for row in http.errors}
labkit.claim("Locust made over 200 requests in 4 s", http.requests > 200,
             measured=http.summary())
labkit.claim("it counted between 4% and 20% of them as failures (the server's 10%)",
             0.04 < http.failure_ratio < 0.20, measured=http.summary())
labkit.claim("every failure was the server's 503", failed == {"LocustBadStatusCode(code=503)"},
             measured=str(failed))
labkit.claim("the median answer took at least the server's 50 ms", http.p50 >= 50,
             measured=f"p50 {http.p50} ms")
plot_over_time({"20 users": http})

# %% [markdown]
# Top: requests and failures in each second of Locust's clock (the first and the last
# second are partial). Bottom: the p50 and p95 that Locust's history reports each second, over
# about its last 2 seconds. Locust's own window is 10 s; our runner sets it to 2, to see them
# move. The 503s show up as about a tenth of the requests (claimed above):
# Locust's failure count is the server's error rate, seen from outside. Locust's totals for
# this run, in one line:

# %%
# NBVAL_IGNORE_OUTPUT
print(http.summary())

# %% [markdown]
# ## A locustfile of your own
#
# `run_locust` also runs a locustfile you wrote: give it the file's path. A locustfile needs
# a class that derives from one of Locust's users, and a task: most simply, a method marked
# `@task`. `HttpUser`
# is Locust's HTTP client on the requests library. `FastHttpUser`, used above, has the same
# API on geventhttpclient.
#
# Below is about the smallest one. Each user GETs a page with `delay=0.05` in the query. It
# sets no `wait_time`, and Locust's default is `constant(0)`: a user asks again as soon as
# the answer is in. The cell writes the file to your work folder, `my-work/`, as an editor
# would, and runs it.

# %%
from labkit.workspace import WORK

FIRST = WORK / "first_locustfile.py"  # this lesson's file; exercise 5 gives you one of yours
FIRST.parent.mkdir(parents=True, exist_ok=True)
FIRST.write_text('''\
from locust import HttpUser, task


class Reader(HttpUser):
    @task
    def read_page(self):
        self.client.get("/pages/page-48k.html?delay=0.05", name="/pages/page-48k.html")
''')
with labkit.serve("latency_http") as pages:
    first = run_locust(FIRST, pages, users=5, seconds=2)
labkit.claim("Locust ran the file with 5 users, and none of their requests failed",
             first.requests > 0 and first.failures == 0 and first.history[-1]["users"] == 5,
             measured=first.summary())
labkit.claim("the median answer took at least the 50 ms that the query asked for",
             first.p50 >= 50, measured=f"p50 {first.p50} ms")

# %% [markdown]
# `run_locust` reads a file before it starts Locust, and refuses one that Locust could not
# run, saying why. A missing `@task` is a classic mistake. Locust would start the users, and
# each would only log "No tasks defined", again after every wait. The first file below lacks
# its `@task`; the second imports a module that does not exist.

# %%
import tempfile
from pathlib import Path

from labkit.locust_lab import LocustError

with tempfile.TemporaryDirectory() as scratch:  # broken on purpose: kept out of my-work/
    no_task = Path(scratch) / "no_task_locustfile.py"
    no_task.write_text(FIRST.read_text().replace("    @task\n", ""))
    typo = Path(scratch) / "typo_locustfile.py"
    typo.write_text("import reqests\n" + FIRST.read_text())
    with labkit.serve("latency_http") as pages:
        for broken in (no_task, typo):
            try:
                run_locust(broken, pages, users=5, seconds=2)
            except LocustError as refused:
                print(f"{refused}\n")

# %% [markdown]
# The first was refused before Locust started. `run_locust` reads the file with Python's
# `ast` module, which runs none of it. The second is valid Python, with a user and a task,
# so Locust tried to import it and failed. `run_locust` then shows the end of Locust's
# traceback, from the line of your file on.

# %% [markdown]
# ## A User for our own protocol
#
# Locust times only what it is told about. For a protocol that is not HTTP, its documented way
# is a plain `User` whose task does the talking itself. Then it *fires the request event*,
# `self.environment.events.request.fire(...)`, with the name, the time taken, the length, and
# the exception if it failed.
#
# This one speaks lesson 08's file protocol with lesson 08's own client code, over a gevent
# socket (Locust patched its process). It checks every byte as our clients do: the length and
# SHA-256 of each download, and the server's SHA-256 of each upload. A mismatch is raised as
# an exception, so Locust counts it as a failure.

# %%
labkit.show("labkit.scripts.locustfiles.files")

# %% [markdown]
# Against the file server of lesson 08: first with the file's true SHA-256, then with a wrong
# one, as if the server had sent other bytes.

# %%
import hashlib
import tempfile

from labkit.claims import DATA

LYRICS_SHA = hashlib.sha256((DATA / "lyrics.txt").read_bytes()).hexdigest()
uploads = tempfile.TemporaryDirectory(prefix="lesson11-uploads-")  # uploads land here
files = labkit.serve("selectors_files", root=DATA, upload_dir=uploads.name)  # used below too
verified = run_locust("files", files, users=10, seconds=2, options={"expected_sha256": LYRICS_SHA})
mismatched = run_locust("files", files, users=2, seconds=1, options={"expected_sha256": "0" * 64})
labkit.claim("10 users downloaded and uploaded again and again, every byte verified",
             verified.requests > 100 and verified.failures == 0, measured=verified.summary())
labkit.claim("Locust counted the GETs and the PUTs apart",
             set(verified.by_name) == {"GET lyrics.txt", "PUT lyrics.txt"})
_ = labkit.claim("with the wrong SHA-256 every download was a failure, reported as a mismatch",
                 mismatched.failures == mismatched.requests > 0
                 and "SHA-256 mismatch" in mismatched.errors[0]["Error"])

# %% [markdown]
# ## Two processes, and a master with workers
#
# A Locust process runs its users as greenlets on one thread. So it computes on one core at a
# time, like every event loop of this course (lesson 10). Here each user has real work to do:
# with `check_pages` it parses every page it gets, tag by tag. `--processes 2` forks two
# *workers* that run the users; the first process becomes the *master*, which hands them out
# and adds up their statistics.
#
# The same 120 users, in one process and in two. `LocustWay` is one Locust run as a way of
# `labkit.Timing`, which takes turns between the two. It judges the CPU claim on each way's
# best run; the other claims are counts of the latest runs.

# %%
def apart(t):
    """How many times more CPU per request one way spent than the other (each way's best)."""
    ratio = t["two processes", "cpu_ms"] / t["one process", "cpu_ms"]
    return max(ratio, 1 / ratio)

with labkit.serve("latency_http", delay=0.1) as pages:
    heavy = {"users": 120, "seconds": 3, "options": {"check_pages": True, "delay": 0.1}}
    ways = {"one process": LocustWay("pages", pages, **heavy),
            "two processes": LocustWay("pages", pages, processes=2, **heavy)}
    timing = labkit.Timing(ways, rounds=3, seconds=60)
    timing.claim("a request cost about the same CPU in two processes as in one (within 2 times)",
                 apart, below=2)
one, two = ways["one process"].last, ways["two processes"].last
labkit.claim("one Locust process used at most one core (its CPU time under 1.1 x the run's)",
             one.cpu_seconds < 1.1 * one.seconds, measured=f"{one.cpu_seconds:.2f} s CPU")
labkit.claim("two workers ran 60 users each", sorted(two.worker_peak_users.values()) == [60, 60],
             measured=str(two.worker_peak_users))
_ = labkit.claim("each worker made between 30% and 70% of the requests, and they add up",
                 all(0.3 < w["requests"] / two.requests < 0.7 for w in two.workers)
                 and sum(w["requests"] for w in two.workers) == two.requests)

# %% [markdown]
# So the work per request changes little (within 2 times, claimed). What two processes add is
# a second core to do it on, if one is free. On two idle cores, the rate can then grow, up to
# twice that of one process. How far it grows is a fact about the machine at that moment, not
# about Locust, so it is printed here, not claimed. Under a quota of one CPU (a JupyterHub with
# `singleuser.cpu.limit: 1`), two processes share one CPU's worth of time. Then they can make
# no more requests per second than the last line below works out: one CPU second over the
# CPU that one request costs. What this run reached:

# %%
# NBVAL_IGNORE_OUTPUT
print(f"CPUs this kernel may use: {labkit.usable_cpus():g}")
for label, run in {"one process": one, "two processes": two}.items():
    print(f"{label:>13}: {run.rps:6.0f} requests/s, CPU per request "
          f"{run.metrics()['cpu_ms']:.2f} ms, p50 {run.p50:.0f} ms")
print(f"one CPU's worth of Locust's work here: {1000 / one.metrics()['cpu_ms']:.0f} requests/s")
plot_over_time({"one process": one, "two processes": two}, "120 users that parse every page")

# %% [markdown]
# (With workers, the master learns their numbers from their reports, every 3 seconds. So its
# history of p50 and p95 starts late and is coarse. The requests per second are complete:
# each worker counts them per second itself.)
#
# On several machines it is the same program. The master runs where the results are wanted
# and waits for its workers (`--expect-workers`). Each worker is started with the master's
# address (`--master-host`) and the same locustfile; the master tells it how many users to
# run. The two command lines:

# %%
for line in locust_lab.distributed_commands("pages", "http://10.0.0.9:8000", users=100,
                                            workers=2):
    print(line, end="\n\n")

# %% [markdown]
# Here both kinds run on this machine, on loopback. `load_test` starts a master and `workers`
# worker processes against `latency_http`, with exactly those options: `--master
# --expect-workers N` and `--worker --master-host 127.0.0.1`, the master's port a free one of
# 127.0.0.1. It is also what the panel below runs.

# %%
def load_test(users=6, spawn_rate=6, workers=2, progress=None):
    """Locust for 3 s against latency_http: a master and `workers` workers (0: one process)."""
    with labkit.serve("latency_http", delay=0.05) as pages:
        run = run_locust("pages", pages, users=users, spawn_rate=spawn_rate, seconds=3,
                         workers=workers, progress=progress)
    run.label = f"{users} users, {workers} workers"
    return run

spread = load_test(users=6, spawn_rate=6, workers=2)
for i, users in enumerate(sorted(spread.worker_peak_users.values()), 1):
    print(f"worker {i}: {users} users")
_ = labkit.claim("the two workers' own counts add up to the master's total",
                 len(spread.workers) == 2 and sum(w["requests"] for w in spread.workers)
                 == spread.requests > 0, measured=str(spread.workers))

# %%
# NBVAL_IGNORE_OUTPUT
for w in spread.workers:
    print(f"worker pid {w['pid']}: {w['requests']} requests")
print(f"combined: {spread.requests} requests in {spread.seconds:.1f} s, {spread.rps:.0f}/s")

# %% [markdown]
# ## Sitting 2 of 2 (about 45 minutes) — a good place to stop
#
# The second of this lesson's two sittings starts here. Coming back to a fresh kernel? Select
# the cell below and choose **Run → Run All Above Selected Cell** first: this part uses what
# the cells above define.

# %% [markdown]
# ## Our greenlets beside Locust
#
# Locust's users are greenlets, like our clients of lessons 06 and 08. What does Locust add?
# The same load on the same server: 20 connections that GET the lyrics and PUT them back for
# 3 s, every byte verified. One way runs lesson 08's client code on bare greenlets
# (`labkit/scripts/gevent_file_loop.py`), the other 20 Locust `FileUser`s. `FileLoad` runs
# either once; `labkit.Timing` takes turns between them. Each run measures the CPU time, per
# request, of the load generator and of the server (from `/proc`).

# %%
load = locust_lab.FileLoad(files, users=20, seconds=3)
timing = labkit.Timing(load.ways(), rounds=3, seconds=60)
timing.claim("per request, Locust spent less than twice the CPU of our greenlets",
             lambda t: t["Locust", "cpu_us"] / t["our greenlets", "cpu_us"], below=2)
timing.claim("and the file server spent more CPU per request than either load generator",
             lambda t: min(t[way, "server_cpu_us"] for way in t.ways)
             / max(t[way, "cpu_us"] for way in t.ways), above=1)
files.stop()
uploads.cleanup()
labkit.claim("our greenlets verified every byte, in every run",
             all(r["mismatches"] == 0 and not r["errors"] and r["requests"] > 100
                 for r in load.ours), measured=str(load.ours))
_ = labkit.claim("so did Locust's users",
                 all(r.failures == 0 < r.requests for r in load.locust_runs),
                 measured=load.locust_runs[-1].summary())

# %%
# NBVAL_IGNORE_OUTPUT
print(load.table())
ratio = timing["Locust", "cpu_us"] / timing["our greenlets", "cpu_us"]
print(f"Locust / ours, CPU per request (each one's best run): {ratio:.2f}")

# %% [markdown]
# Who runs out of CPU first? The file server: per request it spent more CPU than either load
# generator (claimed above). It does the protocol's real work (framing, hashing every upload,
# the files) in one Python thread, so it saturates first. The table's "CPU busy" column
# shows how much of one core each load generator used.
#
# Locust spent less than twice our CPU per request (claimed above; the line under the table
# gives the ratio, best runs). What it does besides is bookkeeping. Each request goes through
# its request event into its statistics: a count per name, a histogram of response times, a count
# per second, the failures by message. Each task goes through its scheduler (`wait_time`, a
# switch). And some of it runs on timers, whatever the rate: the CSV files every second, the
# console's table every 2 s, the report's history every 5 s.
#
# It buys the numbers above: percentiles, failures by message, distributed totals. Our loop
# reports none.
#
# ## Try it yourself
#
# Users, spawn rate (users started per second) and workers (0: one process). With a spawn
# rate below the users, watch the requests/s climb as users arrive.

# %%
# NBVAL_IGNORE_OUTPUT
from ipywidgets import IntSlider

from labkit.widgets import panel

panel(load_test, draw=lambda run: plot_over_time({run.label: run}), run_now=False,
      controls={"users": IntSlider(6, min=1, max=200, description="users"),
                "spawn_rate": IntSlider(6, min=1, max=100, description="spawn rate"),
                "workers": IntSlider(2, min=0, max=4, description="workers")},
      summary=lambda run: run.summary())

# %% [markdown]
# ## Summary
#
# * Locust runs each simulated user as a greenlet. It monkey-patches, so it runs in a process
#   of its own, headless and bounded by `-t`. It writes its statistics to files.
# * A server's errors are Locust's failures: the 503s of `latency_http` came back as about a
#   tenth of the requests (claimed).
# * Your own locustfile: a class derived from `HttpUser` (or `FastHttpUser`, `User`), a
#   method marked `@task`, and a `wait_time` if its users should pause. `run_locust` runs it
#   by its path, and refuses what Locust could not run, saying why.
# * For another protocol, a plain `User` does the talking and fires Locust's request event.
#   Ours checks every byte; a mismatch is a failure.
# * One Locust process computes on one core. `--processes N`, or a `--master` with
#   `--worker`s on other machines, spreads the users evenly. The work per request changes
#   little (within 2 times, claimed), so the rate can grow only with free CPUs.
# * With its bookkeeping, Locust spent less than twice our bare greenlet clients' CPU per
#   request (claimed). Both spent less than the server they loaded (claimed), and
#   Locust tells you much more.

# %% [markdown]
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint (call
# it again for the next one), `check(n, your_answer)` tells you if you have it, and `answer(n)`
# shows a worked solution with a sentence on why it is right: try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(11)

# %% [markdown]
# **Exercise 1.** 50 Locust users each run `wait_time = constant(1)`, and the server answers
# every request in 0.2 s. About how many requests per second do they make together?

# %%
check(1, ...)

# %% [markdown]
# **Exercise 2.** A master started with `-u 100 --expect-workers 4` and four workers on four
# machines. How many users does each worker run?

# %%
check(2, ...)

# %% [markdown]
# **Exercise 3.** Write `percentile(histogram, fraction)`: Locust keeps response times as a
# histogram `{milliseconds: count}`. Return the nearest-rank percentile, the smallest time in
# it that at least `fraction` of all the requests met (`fraction` 0.95 gives the p95).

# %%
def percentile(histogram, fraction):
    ...   # your code here

check(3, percentile)

# %% [markdown]
# **Exercise 4.** A Locust `User` talks lesson 08's file protocol over its own socket. How
# does a request it made get into Locust's statistics? (a) `self.client.get(...)`,
# (b) `self.environment.events.request.fire(...)`, (c) `print(...)`. Answer `"a"`, `"b"` or
# `"c"`.

# %%
check(4, ...)

# %% [markdown]
# **Exercise 5.** Make `my_locustfile.py` a load test of `latency_http`. Each user GETs
# `/pages/page-48k.html` with `delay=0.1` in the query and an `id` that no other request
# has. It waits 0.5 s after each answer (`wait_time`) before its next request. The check runs
# it: `check(5, MY_LOCUSTFILE)`.

# %% [markdown]
# The cell below copies a starting locustfile to your work folder, once: your file is never
# overwritten. Open `my_locustfile.py` from JupyterLab's file browser, edit it, save, and
# check again.

# %%
MY_LOCUSTFILE = locust_lab.start_locustfile(WORK / "my_locustfile.py")
check(5, ...)

# %% [markdown]
# **Exercise 6.** Run your locustfile against a server that fails one request in ten:
# `with labkit.serve("latency_http", error_rate=0.1) as pages:` then
# `mine = run_locust(MY_LOCUSTFILE, pages, users=10, seconds=3)`, and
# `print(mine.summary())`. What share of the requests did Locust count as failures, and what
# was its p50 in ms? Answer both, share first.

# %%
check(6, ...)
