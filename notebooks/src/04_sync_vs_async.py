# %% [markdown]
# # 04 · Synchronous vs asynchronous I/O: fetching pages from a slow server
#
# The classic experiment: download a few web pages one after another, then all at once with
# gevent, and compare the times. We do it without the internet. The server is a real HTTP
# server that labkit starts on this machine, and it answers slowly on purpose, like a site far
# away. Then we scale it up, draw every request, and see what monkey patching really changes.
#
# **After this lesson you can**
# * predict how long N requests take sequentially, with threads and with gevent, and measure
#   it.
# * read a timeline of hundreds of requests.
# * explain why `monkey.patch_all()` has to come first, from a run where it came too late.
# * keep a run going when some requests fail, and count the failures.
#
# **Time:** about 65 minutes: 40 reading and running, 25 exercises; sittings of 20 + 45.

# %%
import hashlib
import json
import urllib.request

import matplotlib.pyplot as plt
from ipywidgets import Dropdown, FloatSlider, IntSlider

import labkit
from labkit.clients import pages
from labkit.clients.pages import NoAnswer
from labkit.runs import fetch_with
from labkit.timeline import compare_timelines, max_concurrent, plot_timeline
from labkit.widgets import panel

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

PAGES = labkit.DATA / "pages"
SIZES = {p.name: p.stat().st_size for p in sorted(PAGES.glob("*.html"))}
print(SIZES)

# %% [markdown]
# ## The slow server
#
# `latency_http` is a real HTTP/1.1 server (gevent's WSGI server, in a background process). It
# serves the files above at `/pages/NAME`, each after a delay: 0.2 s unless the request asks
# for another with `?delay=...`. It can also fail a chosen fraction of requests with
# `503 Service Unavailable` (`?error_rate=...`), and it logs every request for a page.

# %%
server = labkit.serve("latency_http", root=PAGES, delay=0.2)
BASE = f"http://{server.host}:{server.port}"

def page_url(name, i=0, base=BASE, **query):
    params = "&".join(f"{k}={v}" for k, v in {"id": i, **query}.items())
    return f"{base}/pages/{name}?{params}"

_ = labkit.claim("the server is running", server.alive)

# %% [markdown]
# ## Three pages, one after another
#
# The plain way: `urlopen` each page in turn, then `read` it. Both calls block: `urlopen` until
# the reply's headers have arrived, `read` until the rest of the page has.

# %%
def fetch(name):
    print(f"[*] GET {name}")
    with urllib.request.urlopen(page_url(name), timeout=30) as response:
        body = response.read()
    print(f"    {len(body):,} bytes of {name}")
    return body

bodies = []
sequential_3 = labkit.Timing(lambda: bodies.extend(fetch(name) for name in SIZES), rounds=1)

labkit.claim("every page matches its file byte for byte (SHA-256)",
             all(hashlib.sha256(body).digest() == hashlib.sha256((PAGES / n).read_bytes()).digest()
                 for n, body in zip(SIZES, bodies)))
_ = sequential_3.claim("three requests of 0.2 s took 0.6 s or more", lambda t: t.best(), above=0.6)

# %% [markdown]
# ## The same three pages with gevent
#
# gevent only helps if `urlopen`'s socket operations switch greenlets while they wait. That
# takes `monkey.patch_all()`, and a Jupyter kernel patched that way stopped answering in our
# runs (lesson 03). So the gevent version runs as a script in a child process (its source is
# shown below). It sends back each request's status, size, SHA-256 and timing.

# %%
threes = []                                    # every gevent run of the three pages

def gevent_three():
    threes.append(fetch_with("gevent", [page_url(name) for name in SIZES]))
    return {"elapsed": threes[-1].elapsed}     # timed inside the child, after it started

timing = labkit.Timing(gevent_three, rounds=4, seconds=20)
for name, result in zip(SIZES, threes[0].results):
    labkit.claim(f"{result.size:>9,} bytes of {name}, SHA-256 verified", result.status == 200
                 and result.sha256 == hashlib.sha256((PAGES / name).read_bytes()).hexdigest(),
                 measured=f"status {result.status}")
labkit.claim("all three requests were sent before the first answer came",
             max_concurrent(threes[0].spans) == 3)     # one "waiting" span per request
_ = timing.claim("gevent took under two latencies (0.4 s) for the three",
                 lambda t: t.best(metric="elapsed"), below=2 * 0.2)

# %% [markdown]
# The three waits overlapped: under two latencies, where one after another took three. How much
# faster it is, we measure below with more requests.
#
# ## One harness, three strategies
#
# To compare fairly, every strategy uses the same `fetch_one` and the same `timed_run` harness.
# `fetch_one` makes one request and returns its status, size and SHA-256. It also records a
# Span from the connect to the last byte received. Only `download_many` differs.

# %%
labkit.show(pages.fetch_one)

# %%
labkit.show(pages.download_many_sequential)

# %%
labkit.show(pages.download_many_threads)

# %% [markdown]
# And the gevent strategy, the whole script run in the child process. Note the two lines
# after its docstring:

# %%
labkit.show("scripts/fetch_gevent")

# %% [markdown]
# ## Twenty requests, three ways, on one time axis

# %%
N, LATENCY = 20, 0.3
urls = [page_url("page-48k.html", i, delay=LATENCY) for i in range(1, N + 1)]
every_run = {"sequential": [], "threads": [], "gevent": []}

def twenty(strategy):
    def run_once():
        every_run[strategy].append(fetch_with(strategy, urls))
        return {"elapsed": every_run[strategy][-1].elapsed}
    return run_once

sequential = labkit.Timing(twenty("sequential"), rounds=1)     # 6 s a run: once is enough
sequential.claim("sequential takes the sum of the latencies (6 s) or more",
                 lambda t: t.best(metric="elapsed"), above=N * LATENCY)
timing = labkit.Timing({s: twenty(s) for s in ("threads", "gevent")}, rounds=4, seconds=20)
for strategy in ("threads", "gevent"):
    timing.claim(f"{strategy}: all twenty in less than two latencies (0.6 s), at least 10x faster",
                 lambda t, way=strategy: t.best(way, "elapsed"), below=2 * LATENCY)
expected = hashlib.sha256((PAGES / "page-48k.html").read_bytes()).hexdigest()
labkit.claim("every download of every run complete and verified",
             all(run.statuses == {200: N} and all(r.sha256 == expected for r in run.results)
                 for runs in every_run.values() for run in runs))
runs = {strategy: runs[0] for strategy, runs in every_run.items()}
at_once = {name: max_concurrent(run.spans) for name, run in runs.items()}
print("requests in flight at once, at most:", at_once)
labkit.claim("one request in flight at a time when sequential, all twenty with threads or gevent",
             at_once == {"sequential": 1, "threads": N, "gevent": N})
compare_timelines({name: run.spans for name, run in runs.items()})

# %% [markdown]
# The sequential run is a staircase: each request starts when the previous one has finished
# (never more than one in flight). Threads and gevent send all twenty at once and wait for all
# of them together: the run takes about as long as one request.
#
# ## Speed-up against the number of requests
#
# How far does it go? gevent fetches N pages for growing N. Every sequential request waits the
# same latency, so N pages one after another take at least N times the fastest sequential
# request above. The speed-up is that divided by gevent's time. `labkit.Timing` runs the N in
# turns, more rounds only if a claim needs them. For each N it keeps the least wall time and
# the least CPU time of its runs.

# %%
def gevent_run(n):
    """One gevent run of n requests: its time, and the CPU it cost the fetcher and the server."""
    def run_once():
        server_before = server.cpu_seconds()
        run = fetch_with("gevent", [page_url("page-48k.html", i, delay=LATENCY) for i in range(n)])
        assert run.statuses == {200: n}
        return {"elapsed": run.elapsed, "cpu used": run.cpu + server.cpu_seconds() - server_before}
    return run_once

per_request = min(span.length for span in runs["sequential"].spans)
counts = [1, 10, 50, 100, 200, 500]
by_n = labkit.Timing({f"N={n}": gevent_run(n) for n in counts}, rounds=3, seconds=40)

def speedup(t, n):
    return n * per_request / t.best(f"N={n}", "elapsed")

# %% [markdown]
# What the runs show, and the curve:

# %%
by_n.claim("speed-up is at least a quarter of N up to N = 100",
           lambda t: min(speedup(t, n) / n for n in counts if n <= 100), above=0.25)
by_n.claim("it keeps growing with N",
           lambda t: min(speedup(t, b) / speedup(t, a) for a, b in zip(counts, counts[1:])),
           above=1)
by_n.claim("but less than N does (speed-up / N is lower at 500 than at 10)",
           lambda t: (speedup(t, 10) / 10) / (speedup(t, 500) / 500), above=1)
wall = {n: by_n.best(f"N={n}", "elapsed") for n in counts}
cpu = {n: by_n.best(f"N={n}", "cpu used") for n in counts}
labkit.claim("CPU time (fetcher + server) at 500 requests is over 5x that at 10",
             cpu[500] > 5 * cpu[10], measured=f"{cpu[500]:.3f} s vs {cpu[10]:.3f} s")
print(f"from 10 to 500 requests, wall time grew by {(wall[500] - wall[10]) * 1000:.0f} ms "
      f"and CPU time by {(cpu[500] - cpu[10]) * 1000:.0f} ms")
speedups = {n: speedup(by_n, n) for n in counts}

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(counts, counts, "--", color="grey", label="ideal: N")
ax.plot(counts, list(speedups.values()), "o-", color="#1f77b4", label="gevent, measured")
ax.set_xlabel("requests at once (N)")
ax.set_ylabel("speed-up over sequential")
ax.set_xscale("log")
ax.set_yscale("log")
ax.legend()
plt.show()

# %% [markdown]
# The speed-up grows with N: while all requests wait on the network, one thread serves them
# all. But the curve bends at large N (asserted above): every request waits the same 0.3 s, yet
# gevent's time grows with N. The waits overlap; the work around them costs CPU time, and that
# grows with N too (asserted above). In the fetcher that work includes connecting, building the
# request, parsing the answer and hashing 48 KB. In the server it includes accepting, parsing
# the request and sending 48 KB. The last line above puts the wall time that 490 more requests
# added beside the CPU time they added.

# %% [markdown]
# ## Sitting 2 of 2 (about 45 minutes) — a good place to stop
#
# The second of this lesson's two sittings starts here. Coming back to a fresh kernel? Select
# the cell below and choose **Run → Run All Above Selected Cell** first. This part uses what
# the cells above define: the slow server and the harness.

# %% [markdown]
# ## Why `patch_all()` must come first
#
# Patching replaces the *module attributes* (`socket.socket`, `time.sleep`, ...). Code that
# already holds a reference to an original, because it imported it by name before patching,
# keeps the blocking version. This script fetches ten pages over plain sockets; the only
# difference between the two runs is whether `from socket import socket` comes before or after
# `patch_all()`:

# %%
labkit.show("scripts/patch_too_late")

# %%
slow_url = page_url("page-48k.html", delay=0.1)
patch_runs = {"patched first": [], "patched too late": []}

def ten_pages(label):
    def run_once():
        run = labkit.run_script("patch_too_late", slow_url, 10,
                                *(["--late"] if label == "patched too late" else []))
        patch_runs[label].append(run)
        return {"elapsed": run.data["elapsed"]}      # timed inside the script
    return run_once

timing = labkit.Timing({label: ten_pages(label) for label in patch_runs}, rounds=3, seconds=20)

# %%
early, late = (runs[0] for runs in patch_runs.values())
for run in (early, late):
    print(f"late={run.data['late']!s:5}  socket class: {run.data['socket_class']:<24} "
          f"pages: {run.data['ok']}/10")
spans = {label: labkit.timeline.spans_from_json(runs[0].data["spans"])
         for label, runs in patch_runs.items()}
labkit.claim("patched first: all ten requests in flight at once; too late: one at a time",
             max_concurrent(spans["patched first"]) == 10
             and max_concurrent(spans["patched too late"]) == 1)
timing.claim("patched first: the ten waits overlap (under half of 10 x 0.1 s)",
             lambda t: t.best("patched first", "elapsed"), below=0.5)
timing.claim("patched too late: 1 s or more, the sum of the waits",
             lambda t: t.best("patched too late", "elapsed"), above=1.0)
every = [run for runs in patch_runs.values() for run in runs]
labkit.claim("no run wrote an error or a warning", all(run.stderr == "" for run in every),
             measured="".join(run.stderr for run in every))
assert all(run.data["ok"] == 10 for run in every)
assert early.data["socket_class"] == "gevent._socket3.socket"
assert late.data["socket_class"] == "socket.socket"
compare_timelines(spans)

# %% [markdown]
# Here the late patch went unnoticed: the program worked, one page after another, with no
# error and no warning. It is not always that mild. gevent's own `monkey` documentation warns
# that "patching too late can lead to unreliable behaviour (for example, some modules may
# still use blocking sockets) or even errors".
#
# A lock shows a worse case. Two greenlets take one `threading.Lock` in turn, each holding it
# across `gevent.sleep(0.1)`. Again the runs differ in one line: is the lock made before or
# after `patch_all()`?

# %%
labkit.show("scripts/lock_too_late")

# %%
lock_first = labkit.run_script("lock_too_late", "--watch", 30)     # it needs about 0.2 s
lock_late = labkit.run_script("lock_too_late", "--late", "--watch", 1)
for run in (lock_first, lock_late):
    print(f"late={run.data['late']!s:5}  lock: {run.data['lock_class']:<23} "
          f"finished: {run.data['finished']}")
labkit.claim("lock made after patching: both greenlets finished",
             not lock_first.data["hung"] and lock_first.data["finished"] == ["Task 1", "Task 2"])
_ = labkit.claim("lock made before patching: neither finished; the one thread was stuck at "
                 "`with lock:`", lock_late.data["hung"] and lock_late.data["finished"] == []
                 and lock_late.data["main_thread_at"] == "with lock:", measured=str(lock_late.data))

# %% [markdown]
# The late lock is the standard `_thread.lock`, and waiting for it blocks the whole OS thread.
# Task 2's `acquire()` stopped the one thread, and with it the hub, which alone could run
# Task 1 again to release the lock. The program would have waited forever; the watchdog ended
# it after a second, with no error on its own. gevent's documentation says the main module should
# patch first, "ideally before any other imports".
#
# ## When some requests fail
#
# Real servers fail. Here the server answers each request with `503` at a one-in-four chance
# (a draw seeded by the request's id), so about 10 of the 40 fail. A failed request is a
# result like any other (`fetch_one` catches it), so the run goes on and we count.

# %%
def server_log(clear=False):
    """The server's access log: one record per request (path, id, status, bytes, times)."""
    with urllib.request.urlopen(f"{BASE}/_log{'?clear=1' if clear else ''}", timeout=10) as r:
        return json.loads(r.read())

server_log(clear=True)
flaky = [page_url("page-48k.html", i, error_rate=0.25) for i in range(1, 41)]
flaky_run = fetch_with("gevent", flaky)
print("statuses:", flaky_run.statuses)
served_503 = sum(1 for record in server_log() if record["status"] == 503)
assert sum(flaky_run.statuses.values()) == 40 and set(flaky_run.statuses) == {200, 503}
labkit.claim("the server's log agrees on the number of 503s",
             served_503 == flaky_run.statuses.get(503), measured=f"{served_503} in the log")
_ = labkit.claim("every 200 carried the right page",
                 all(r.sha256 == expected for r in flaky_run.results if r.status == 200))

# %% [markdown]
# That is all we need the lesson's server for:

# %%
server.stop()
_ = labkit.claim("the server stopped", not server.alive)

# %% [markdown]
# ## Try it yourself
#
# `run_fetch` below is what the panel runs: N requests with a given latency and error rate,
# with the strategy you choose. It starts a slow server of its own for each run (the one above
# is stopped). A run in which no request got any answer is an error, not a result. The timeline
# shows every request; *overlap* is the total waiting divided by the wall time (1 when
# sequential, up to N).

# %%
def run_fetch(n_requests=20, latency=0.2, error_rate=0.0, strategy="gevent", progress=None):
    with labkit.serve("latency_http", root=PAGES, delay=latency) as own:
        base = f"http://{own.host}:{own.port}"
        urls = [page_url("page-48k.html", i, base, error_rate=error_rate)
                for i in range(1, n_requests + 1)]
        return fetch_with(strategy, urls, progress).raise_if_unanswered()

check_runs = []

def ten_threaded():
    check_runs.append(run_fetch(n_requests=10, latency=0.3, strategy="threads"))
    return {"overlap": check_runs[-1].overlap}

overlap = labkit.Timing(ten_threaded, rounds=3, seconds=20)
labkit.claim("10 threaded requests all verified, in every run",
             all(run.statuses == {200: 10} and all(r.sha256 == expected for r in run.results)
                 for run in check_runs))
_ = overlap.claim("overlap above 5", lambda t: t.most(metric="overlap"), above=5)

# %% [markdown]
# And a run against a server that is gone fails loudly (this is what the panel shows then):

# %%
import socket

with socket.socket() as nobody:     # a port of ours that nobody listens on (and nobody else can
    nobody.bind(("127.0.0.1", 0))    # take while we hold it): every connection is refused
    nowhere = f"http://127.0.0.1:{nobody.getsockname()[1]}"
    gone = fetch_with("threads", [page_url("page-48k.html", i, nowhere) for i in range(3)])
try:
    gone.raise_if_unanswered()
    message = "no error"
except NoAnswer as err:
    message = str(err)
print(message.split(";")[0])
assert message.startswith("all 3 requests failed without an answer") and gone.statuses == {0: 3}
_ = labkit.claim("its summary says so too", "NO REQUEST GOT AN ANSWER" in gone.summary())

# %%
# NBVAL_IGNORE_OUTPUT
panel(run_fetch, draw=lambda run: plot_timeline(run.spans, title=run.summary()[:100]),
      controls={"n_requests": IntSlider(20, min=1, max=500, description="requests"),
                "latency": FloatSlider(0.2, min=0.0, max=1.0, step=0.05,
                                       description="latency (s)"),
                "error_rate": FloatSlider(0.0, min=0.0, max=1.0, step=0.05,
                                          description="error rate"),
                "strategy": Dropdown(options=["gevent", "threads", "sequential"], value="gevent",
                                     description="strategy")},
      summary=lambda run: run.summary())

# %% [markdown]
# Try: 500 requests with gevent, then with threads (the pool has 100 threads: look at the
# timeline's steps). Sequential with many requests takes a long time: that is the point.

# %% [markdown]
# ## Summary
#
# * Sequential I/O costs the **sum** of the waits; concurrent I/O costs about the **longest**.
# * Threads and gevent both overlap the waits. gevent does it with one greenlet per request,
#   and all of them wait in one thread.
# * gevent needs the blocking calls to be cooperative: `monkey.patch_all()` as the very first
#   thing. Patched late, a program may run one request after another without a word, or hang
#   for good (a lock made before patching).
# * Failed requests are results: count them, don't crash.
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint; call
# it again for the next one. `check(n, your_answer)` tells you if you have it. `answer(n)`
# shows a worked solution with a sentence on why it is right. Try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(4)

# %% [markdown]
# **Exercise 1.** 30 requests, each answered after 0.1 s, fetched one after another: about how
# many seconds?

# %%
check(1, ...)

# %% [markdown]
# **Exercise 2.** The same 30 requests with gevent: about how many seconds?

# %%
check(2, ...)

# %% [markdown]
# **Exercise 3.** Which line must come first in a program that uses gevent with ordinary
# blocking libraries? Answer with the line of code, as a string.

# %%
check(3, ...)

# %% [markdown]
# **Exercise 4.** A run's *overlap* is its total waiting time divided by its wall time. What
# overlap does gevent reach for 50 requests of 0.2 s each? Measure it with the panel (or
# `run_fetch(50, 0.2).overlap`) and answer with a number.

# %%
check(4, ...)
