# %% [markdown]
# # 06 · A gevent socket server: many clients, one thread
#
# With monkey patching, a server written in the simplest blocking style (accept, then
# `recv`/`sendall` in a loop per client) serves many clients at once on one thread: each client
# gets a greenlet, and every wait switches to gevent's hub. This lesson runs such a server in
# the background, drives it with 100 threaded clients as the original course did, finds a bug
# that quietly burns a CPU core, and caps concurrency with `StreamServer` and a `Pool`.
#
# **After this lesson you can**
# * write a gevent echo server and explain why its blocking-looking calls don't block;
# * load a server with many clients and read the timeline, throughput and latency;
# * spot, measure and fix a server that spins on a closed connection;
# * cap how many clients a server handles at once.
#
# **Time:** about 25 minutes.

# %%
import os
import time

import matplotlib.pyplot as plt
from ipywidgets import Dropdown, IntSlider

import labkit
from labkit.clients.load import LoadResult, run_echo_clients
from labkit.timeline import max_concurrent, plot_timeline
from labkit.widgets import panel

# %% [markdown]
# ## The server
#
# `gevent_echo` patches first, then uses the ordinary `socket` API: `accept()` and `recv()` look
# blocking, but each one switches to the hub while it waits. Every client is a greenlet.

# %%
labkit.show("gevent_echo")

# %% [markdown]
# ## 100 clients at once, one thread per client
#
# As in the original course, each client is a thread with its own socket. Each sends 3
# messages of 1 KiB and reads every echo back in full: TCP is a byte stream, so it reads until
# it has all 1,024 bytes rather than trusting one `recv` to return one message.

# %%
labkit.show(labkit.clients.load.one_echo_client)

# %%
with labkit.serve("gevent_echo") as server:
    result = run_echo_clients(server.address, n_clients=100, messages=3, size=1024)
    stats = server.stats()
    server_threads = len(os.listdir(f"/proc/{server.pid}/task"))   # its OS threads, from /proc

print("round trips:", result.round_trips, "| errors:", len(result.errors))
print("every byte echoed matches what was sent:", result.bytes_verified == 100 * 3 * 1024)
print("the server saw 100 connections:", stats["connections"] == 100)
print("round trips of different clients overlapped:", max_concurrent(result.spans) > 1)
print("server OS threads: 1 serving + labkit's lifeline and signal threads =", server_threads)
assert result.round_trips == 300 and not result.errors
assert max_concurrent(result.spans) > 1 and server_threads == 3
assert result.bytes_verified == stats["bytes_in"] == 100 * 3 * 1024
plot_timeline(result.spans, title=f"100 clients, {result.throughput:,.0f} round trips/s, "
                                  f"p99 latency {result.percentile(99) * 1000:.1f} ms")

# %% [markdown]
# Round trips of different clients overlap on the time axis, and the server did it with one
# thread doing the serving (the other two are labkit's: one watches for the notebook going
# away, one waits for the stop signal). With many rows the figure shows a sample of them.
#
# The client code is plain threads and sockets. Monkey-patch it too, and the *same code*
# runs 500 clients as greenlets in one thread of a child process:

# %%
with labkit.serve("gevent_echo") as server:
    run = labkit.run_script("gevent_echo_clients", server.host, server.port, 500)
greenlet_clients = LoadResult.from_dict(run.data["result"])
print("500 greenlet clients, round trips:", greenlet_clients.round_trips,
      "| errors:", len(greenlet_clients.errors))
assert greenlet_clients.round_trips == 1500 and not greenlet_clients.errors

# %% [markdown]
# ## A bug that burns a CPU core
#
# A common first version of the handler forgets one line. When a client closes its side,
# `recv` returns `b""`, immediately, and keeps doing so. Without `if not data: return`, the
# loop never waits again:

# %%
labkit.show("gevent_echo_spin")

# %% [markdown]
# The clients see nothing wrong: every echo is correct. The damage shows *after* they leave.
# We run 10 clients against each server, then read the server process's CPU time (from
# `/proc`) over the next second, while no client is connected.

# %%
def idle_cpu_after_clients(name):
    with labkit.serve(name) as server:
        result = run_echo_clients(server.address, n_clients=10)
        before = server.cpu_seconds()
        time.sleep(1.0)
        return result, server.cpu_seconds() - before

spin_result, spin_cpu = idle_cpu_after_clients("gevent_echo_spin")
fixed_result, fixed_cpu = idle_cpu_after_clients("gevent_echo")
print("both served every client correctly:",
      spin_result.round_trips == fixed_result.round_trips == 30)
print("the buggy server burned over half a core with no client connected:", spin_cpu > 0.5)
print("the fixed server rested (under 0.1 s of CPU in that second):     ", fixed_cpu < 0.1)
assert spin_result.round_trips == fixed_result.round_trips == 30
assert spin_cpu > 0.5 and fixed_cpu < 0.1

fig, ax = plt.subplots(figsize=(6, 2))
ax.barh(["gevent_echo (fixed)", "gevent_echo_spin"], [fixed_cpu, spin_cpu],
        color=["#1f77b4", "#d62728"])
ax.set_xlabel("server CPU seconds in the 1 s after all clients left")
ax.set_xlim(0, 1.1)
plt.show()

# %% [markdown]
# ## Capping concurrency: StreamServer and a Pool
#
# A server that accepts every client at once can be swamped. `gevent.server.StreamServer`
# runs the accept loop for us and hands each client to `handle(conn, address)`; with
# `spawn=Pool(10)` at most 10 handlers run at once, and the next client waits in the listen
# backlog until one finishes. The server counts the most handlers it ever had running.

# %%
labkit.show("gevent_stream_echo")

# %%
with labkit.serve("gevent_stream_echo", pool=10) as server:
    capped = run_echo_clients(server.address, n_clients=50, messages=2, pause=0.1)
    stats = server.stats()
print("all 50 clients served, every byte verified:", capped.round_trips == 100 and not capped.errors)
print("the most handlers running at once:", stats["most_active"])
assert capped.round_trips == 100 and not capped.errors and stats["most_active"] == 10
plot_timeline(capped.spans, title="Pool(10), 50 clients holding their connection 0.1 s")

# %% [markdown]
# Each client's second round trip waits until a handler is free: the clients are served in
# waves of ten.
#
# ## Try it yourself
#
# `run_clients` is what the panel runs. Try 2,000 clients; try the thread-per-client server.
# Asking for more clients than the open-file limit allows gives a message saying so.

# %%
SERVERS = {"gevent_echo": {}, "gevent_stream_echo (Pool 100)": {"pool": 100},
           "thread_echo": {}, "select_echo": {}}

def run_clients(n_clients=100, server="gevent_echo", progress=None):
    name = server.split()[0]
    with labkit.serve(name, **SERVERS[server]) as srv:
        return run_echo_clients(srv.address, n_clients=n_clients, progress=progress)

checked = run_clients(n_clients=20, server="gevent_stream_echo (Pool 100)")
print("20 clients, 60 round trips, all verified:", checked.round_trips == 60 and not checked.errors)
assert checked.round_trips == 60 and not checked.errors

# %%
# NBVAL_IGNORE_OUTPUT
panel(run_clients, draw=lambda r: plot_timeline(r.spans, title=r.summary()[:90]),
      controls={"n_clients": IntSlider(100, min=10, max=2000, step=10, description="clients"),
                "server": Dropdown(options=list(SERVERS), value="gevent_echo",
                                   description="server")},
      summary=lambda r: r.summary())

# %% [markdown]
# ## Summary
#
# * After `monkey.patch_all()`, blocking-style socket code serves many clients on one thread:
#   every wait switches greenlets.
# * Read until you have the whole message; stop when `recv` returns `b""`. A handler that
#   forgets the second rule spins forever on a closed connection and burns a core.
# * `StreamServer(listener, handle, spawn=Pool(n))` runs the accept loop and caps concurrency.
#
# ## Exercises

# %%
from labkit.exercises import lesson
hint, check = lesson(6)

# %% [markdown]
# **Exercise 1.** Write `handle(conn)`: echo everything the client sends, and return when the
# client closes. (The check runs it in a plain thread against a socket pair.)

# %%
def handle(conn):
    ...   # your code here

check(1, handle)

# %% [markdown]
# **Exercise 2.** A `StreamServer` with `spawn=Pool(10)` gets 100 clients at once; each keeps its
# handler busy for 0.1 s. About how many seconds until all are served?

# %%
check(2, ...)

# %% [markdown]
# **Exercise 3.** What does `sock.recv(1024)` return once the other side has closed the
# connection and everything it sent has been read?

# %%
check(3, ...)
