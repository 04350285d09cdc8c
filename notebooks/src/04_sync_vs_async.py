# %% [markdown]
# # 04 · Synchronous vs asynchronous I/O: fetching pages from a slow server
#
# The classic experiment: download a few web pages one after another, then all at once with
# gevent, and compare the times. We do it without the internet, against a real HTTP server
# that labkit starts on this machine and that answers slowly on purpose, like a site far away.
# Then we scale it up, draw every request, and see what monkey patching really changes.
#
# **After this lesson you can**
# * predict how long N requests take sequentially, with threads and with gevent, and measure it;
# * read a timeline of hundreds of requests;
# * explain why `monkey.patch_all()` has to come first, from a run where it came too late;
# * keep a run going when some requests fail, and count the failures.
#
# **Time:** about 60 minutes: 35 reading and running, 25 exercises; sittings of 20 + 40.

# %%
import hashlib
import json
import time
import urllib.request

import matplotlib.pyplot as plt
from ipywidgets import Dropdown, FloatSlider, IntSlider

import labkit
from labkit.clients import pages
from labkit.clients.pages import NoAnswer
from labkit.runs import fetch_with
from labkit.timeline import compare_timelines, max_concurrent, plot_timeline
from labkit.widgets import panel

PAGES = labkit.DATA / "pages"
SIZES = {p.name: p.stat().st_size for p in sorted(PAGES.glob("*.html"))}
print(SIZES)

# %% [markdown]
# ## The slow server
#
# `latency_http` is a real HTTP/1.1 server (gevent's WSGI server, in a background process). It
# serves the files above at `/pages/NAME`, each after a delay: 0.2 s unless the request asks
# for another with `?delay=...`. It can also fail a chosen fraction of requests with
# `503 Service Unavailable` (`?error_rate=...`), and it logs every request.

# %%
server = labkit.serve("latency_http", root=PAGES, delay=0.2)
BASE = f"http://{server.host}:{server.port}"

def page_url(name, i=0, base=BASE, **query):
    params = "&".join(f"{k}={v}" for k, v in {"id": i, **query}.items())
    return f"{base}/pages/{name}?{params}"

labkit.claim("the server is running", server.alive)

# %% [markdown]
# ## Three pages, one after another
#
# The plain way: `urlopen` each page in turn. Each call blocks until its page has arrived.

# %%
def fetch(name):
    print(f"[*] GET {name}")
    with urllib.request.urlopen(page_url(name), timeout=30) as response:
        body = response.read()
    print(f"    {len(body):,} bytes of {name}")
    return body

started = time.perf_counter()
bodies = [fetch(name) for name in SIZES]
sequential_3 = time.perf_counter() - started

labkit.claim("every page matches its file byte for byte (SHA-256)",
             all(hashlib.sha256(body).digest() == hashlib.sha256((PAGES / n).read_bytes()).digest()
                 for n, body in zip(SIZES, bodies)))
labkit.claim("three requests of 0.2 s took at least 0.6 s", sequential_3 >= 0.6,
             measured=f"{sequential_3:.3f} s")

# %% [markdown]
# ## The same three pages with gevent
#
# gevent only helps if `urlopen`'s socket operations switch greenlets while they wait, which
# takes `monkey.patch_all()`, and patching inside this notebook would break the kernel. So the
# gevent version runs as a script in a child process (its source is shown below). It sends
# back each request's status, size, SHA-256 and timing.

# %%
three = fetch_with("gevent", [page_url(name) for name in SIZES])
for name, result in zip(SIZES, three.results):
    labkit.claim(f"{result.size:>9,} bytes of {name}, SHA-256 verified", result.status == 200
                 and result.sha256 == hashlib.sha256((PAGES / name).read_bytes()).hexdigest(),
                 measured=f"status {result.status}")

labkit.claim("all three requests were sent before the first answer came",
             max_concurrent(three.spans) == 3)          # one "waiting" span per request
labkit.claim("gevent was faster than one after another", three.elapsed < sequential_3,
             measured=f"{three.elapsed:.3f} s vs {sequential_3:.3f} s")

# %% [markdown]
# The three waits overlapped, so gevent took about one latency instead of three. How much
# faster it is, we measure below with more requests, where a stray delay can't blur it.
#
# ## One harness, three strategies
#
# To compare fairly, every strategy uses the same `fetch_one` (one request: status, size,
# SHA-256, and a Span from first byte sent to last byte received) and the same `timed_run`
# harness. Only `download_many` differs.

# %%
labkit.show(pages.fetch_one)

# %%
labkit.show(pages.download_many_sequential)

# %%
labkit.show(pages.download_many_threads)

# %% [markdown]
# And the gevent strategy, the whole script run in the child process. Note the first two lines:

# %%
labkit.show("scripts/fetch_gevent")

# %% [markdown]
# ## Twenty requests, three ways, on one time axis

# %%
N, LATENCY = 20, 0.3
urls = [page_url("page-48k.html", i, delay=LATENCY) for i in range(1, N + 1)]
runs = {strategy: fetch_with(strategy, urls) for strategy in ("sequential", "threads", "gevent")}

expected = hashlib.sha256((PAGES / "page-48k.html").read_bytes()).hexdigest()
labkit.claim(f"all {3 * N} downloads complete and verified",
             all(run.statuses == {200: N} and all(r.sha256 == expected for r in run.results)
                 for run in runs.values()), measured=str({s: r.statuses for s, r in runs.items()}))

sequential = runs["sequential"].elapsed
labkit.claim("sequential takes at least the sum of the latencies (6 s), and at most 50% more",
             N * LATENCY <= sequential <= 1.5 * N * LATENCY, measured=f"{sequential:.3f} s")
for strategy in ("threads", "gevent"):
    labkit.claim(f"{strategy}: all twenty in less than two latencies (0.6 s), at least 10x faster",
                 runs[strategy].elapsed < 2 * LATENCY, measured=f"{runs[strategy].elapsed:.3f} s")
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
# same latency, so the sequential time for N pages is N times the average sequential request
# measured above; the speed-up is that divided by gevent's measured time. Each N runs twice,
# the rounds interleaved, and keeps its faster run: a stall of this machine then has to hit
# both runs of one N to show.

# %%
def gevent_run_and_cpu(n):
    """One gevent run of n requests, and the CPU seconds it cost the fetcher and the server."""
    server_before = server.cpu_seconds()
    run = fetch_with("gevent", [page_url("page-48k.html", i, delay=LATENCY) for i in range(n)])
    assert run.statuses == {200: n}
    return run.elapsed, run.cpu + server.cpu_seconds() - server_before

per_request = sequential / N
counts, ROUNDS = [1, 10, 50, 100, 200, 500], 2
wall, cpu = {n: [] for n in counts}, {n: [] for n in counts}
for _ in range(ROUNDS):
    for n in counts:
        elapsed, cpu_used = gevent_run_and_cpu(n)
        wall[n].append(elapsed)
        cpu[n].append(cpu_used)
wall, cpu = {n: min(w) for n, w in wall.items()}, {n: sum(c) / ROUNDS for n, c in cpu.items()}
speedups = {n: n * per_request / wall[n] for n in counts}

# %% [markdown]
# What the runs show, and the curve:

# %%
shown = ", ".join(f"N={n}: {s:.1f}x" for n, s in speedups.items())
labkit.claim("speed-up is at least a quarter of N up to N = 100",
             all(speedups[n] >= 0.25 * n for n in counts if n <= 100), measured=shown)
labkit.claim("it keeps growing with N",
             all(speedups[a] < speedups[b] for a, b in zip(counts, counts[1:])), measured=shown)
labkit.claim("but less than N does (speed-up / N is lower at 500 than at 10)",
             speedups[500] / 500 < speedups[10] / 10, measured=shown)
labkit.claim("CPU time (fetcher + server) at 500 requests is over 5x that at 10",
             cpu[500] > 5 * cpu[10], measured=f"{cpu[500]:.3f} s vs {cpu[10]:.3f} s")
print(f"from 10 to 500 requests, wall time grew by {(wall[500] - wall[10]) * 1000:.0f} ms "
      f"and CPU time by {(cpu[500] - cpu[10]) * 1000:.0f} ms")

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
# gevent's time grows with N. The waits overlap; the work around them costs CPU time, and
# that grows with N too (asserted above): building the request, parsing the answer and hashing
# 48 KB in the fetcher, parsing it and sending 48 KB in the server. The last line above puts
# the wall time that 490 more requests added beside the CPU time they added.

# %% [markdown]
# ## Sitting 2 of 2 (about 40 minutes) — a good place to stop
#
# The second of this lesson's two sittings starts here. Coming back to a fresh kernel? Select
# the cell below and choose **Run → Run All Above Selected Cell** first: this part uses what
# the cells above define (the slow server and the harness).

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
early = labkit.run_script("patch_too_late", slow_url, 10)
late = labkit.run_script("patch_too_late", slow_url, 10, "--late")
for run in (early, late):
    print(f"late={run.data['late']!s:5}  socket class: {run.data['socket_class']:<24} "
          f"pages: {run.data['ok']}/10")
labkit.claim("patched first: the ten waits overlap (under half of 10 x 0.1 s)",
             early.data["elapsed"] < 0.5, measured=f"{early.data['elapsed']:.3f} s")
labkit.claim("patched too late: one after another", late.data["elapsed"] >= 0.95,
             measured=f"{late.data['elapsed']:.3f} s")
labkit.claim("neither run wrote an error or a warning", early.stderr == late.stderr == "",
             measured=early.stderr + late.stderr)
assert early.data["ok"] == late.data["ok"] == 10
assert early.data["socket_class"] == "gevent._socket3.socket"
assert late.data["socket_class"] == "socket.socket"
compare_timelines({
    "patched first": labkit.timeline.spans_from_json(early.data["spans"]),
    "patched too late": labkit.timeline.spans_from_json(late.data["spans"])})

# %% [markdown]
# Both runs use gevent and both "work". Only the timeline shows that the late one is
# sequential, with no error, no warning. That is why gevent's documentation says to patch
# before anything else is imported.
#
# ## When some requests fail
#
# Real servers fail. Here one request in four is answered with `503`. A failed request is a
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
labkit.claim("every 200 carried the right page",
             all(r.sha256 == expected for r in flaky_run.results if r.status == 200))

# %% [markdown]
# That is all we need the lesson's server for:

# %%
server.stop()
labkit.claim("the server stopped", not server.alive)

# %% [markdown]
# ## Try it yourself
#
# `run_fetch` below is what the panel runs: N requests with a given latency and error rate,
# with the strategy you choose. It starts a slow server of its own for each run (the one above
# is stopped), and a run in which no request got any answer is an error, not a result. The
# timeline shows every request; *overlap* is the total waiting divided by the wall time (1 when
# sequential, up to N).

# %%
def run_fetch(n_requests=20, latency=0.2, error_rate=0.0, strategy="gevent", progress=None):
    with labkit.serve("latency_http", root=PAGES, delay=latency) as own:
        base = f"http://{own.host}:{own.port}"
        urls = [page_url("page-48k.html", i, base, error_rate=error_rate)
                for i in range(1, n_requests + 1)]
        return fetch_with(strategy, urls, progress).raise_if_unanswered()

check_run = run_fetch(n_requests=10, latency=0.3, strategy="threads")
labkit.claim("10 threaded requests all verified", check_run.statuses == {200: 10} and
             all(r.sha256 == expected for r in check_run.results))
labkit.claim("overlap above 5", check_run.overlap > 5, measured=f"{check_run.overlap:.1f}")

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
labkit.claim("its summary says so too", "NO REQUEST GOT AN ANSWER" in gone.summary())

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
# * Threads and gevent both overlap the waits. gevent does it in one thread, with one greenlet
#   per request.
# * gevent needs the blocking calls to be cooperative: `monkey.patch_all()` as the very first
#   thing. Patch late and the program still works, just sequentially.
# * Failed requests are results: count them, don't crash.
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint (call
# it again for the next one), `check(n, your_answer)` tells you if you have it, and `answer(n)`
# shows a worked solution with a sentence on why it is right: try first, then compare.

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
