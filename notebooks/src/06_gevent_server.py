# %% [markdown]
# # 06 · A gevent socket server: many clients, one thread
#
# With monkey patching, a server written in the simplest blocking style (accept, then
# `recv`/`sendall` in a loop per client) serves many clients at once on one thread. Each client
# gets a greenlet, and every wait switches to gevent's hub.
#
# This lesson runs such a server in the background and drives it with 100 threaded clients, as
# the original course did. It finds a bug that hangs every client. It sees how a common patch
# turns it into one that quietly burns a CPU core. Last, it caps concurrency with
# `StreamServer` and a `Pool`.
#
# **After this lesson you can**
# * write a gevent echo server and explain why its blocking-looking calls don't block.
# * load a server with many clients and read the timeline, throughput and latency.
# * spot, measure and fix a server that spins on a closed connection.
# * tell a client that waits for an answer from one that waits to be served at all.
# * cap how many clients a server handles at once.
#
# **Time:** about 50 minutes: 30 reading and running, 20 exercises.

# %%
import contextlib
import os
import statistics

import matplotlib.pyplot as plt
from ipywidgets import Dropdown, IntSlider

import labkit
from labkit.clients.load import LoadResult, run_echo_clients
from labkit.timeline import max_concurrent, plot_timeline
from labkit.widgets import panel

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

# %% [markdown]
# ## The server
#
# `gevent_echo` patches first, then uses the ordinary `socket` API. `accept()` and `recv()`
# look blocking, but each one switches to the hub while it waits. Every client is a greenlet.

# %%
labkit.show("gevent_echo")

# %% [markdown]
# ## 100 clients at once, one thread per client
#
# As in the original course, each client is a thread with its own socket. Each sends 3
# messages of 1 KiB and reads every echo back in full. TCP is a byte stream, so it reads until
# it has all 1,024 bytes rather than trusting one `recv` to return one message.

# %%
labkit.show(labkit.clients.load.one_echo_client)

# %%
with labkit.serve("gevent_echo") as server:
    result = run_echo_clients(server.address, n_clients=100, messages=3, size=1024)
    stats = server.stats()
    server_threads = len(os.listdir(f"/proc/{server.pid}/task"))   # its OS threads, from /proc

labkit.claim("100 clients made their 300 round trips without an error",
             result.round_trips == 300 and not result.errors, measured=result.summary())
labkit.claim("every byte echoed matches what was sent, and the server counted them all",
             result.bytes_verified == stats["bytes_in"] == 100 * 3 * 1024)
labkit.claim("the server saw 100 connections", stats["connections"] == 100)
labkit.claim("round trips of different clients overlapped", max_concurrent(result.spans) > 1)
labkit.claim("server OS threads: 1 serving + labkit's lifeline, parent-watch and signal "
             "threads = 4", server_threads == 4, measured=f"{server_threads} threads")
plot_timeline(result.spans, title=f"100 clients, {result.throughput:,.0f} round trips/s, "
                                  f"p99 latency {result.percentile(99) * 1000:.1f} ms")

# %% [markdown]
# Round trips of different clients overlap on the time axis. The server did it with one
# thread doing the serving. The other three are labkit's: two watch for the notebook going
# away (its pipe closing, or its process ending), and one waits for the stop signal. With
# many rows the figure shows a sample of them.
#
# The client code is plain threads and sockets. Monkey-patch it too, and the *same code*
# runs 500 clients as greenlets in a child process. The script counts its real OS threads
# (from `/proc`) while the clients run. There are the main one and labkit's two that watch
# for the notebook going away. And there is the pool where gevent runs `getaddrinfo`: the
# standard `getaddrinfo` blocks, so gevent's default resolver calls it in a thread.

# %%
labkit.show("scripts/gevent_echo_clients")

# %%
with labkit.serve("gevent_echo") as server:
    run = labkit.run_script("gevent_echo_clients", server.host, server.port, 500)
greenlet_clients = LoadResult.from_dict(run.data["result"])
most_threads, resolver_pool = run.data["most_os_threads"], run.data["resolver_pool_size"]
labkit.claim("500 greenlet clients made their 1,500 round trips without an error",
             greenlet_clients.round_trips == 1500 and not greenlet_clients.errors,
             measured=greenlet_clients.summary())
_ = labkit.claim(f"OS threads while they ran: at most 3 + the resolver pool of {resolver_pool}",
                 most_threads <= 3 + resolver_pool, measured=f"{most_threads} threads")

# %% [markdown]
# ## A bug that hangs every client
#
# Leave one line out of the handler and see what happens. When a client closes its side,
# `recv` returns `b""`, immediately, and keeps doing so. Without `if not data: return`, the
# loop never waits again. Neither call in it has to wait (`sendall(b"")` has nothing to send),
# so neither switches to the hub, and on one thread nothing else can run:

# %%
labkit.show("gevent_echo_hang")

# %% [markdown]
# To see it, one client comes, echoes three messages and leaves. While nobody is connected, we
# read the server's CPU time from `/proc`. We stop when one of the servers has used 0.3 s of
# it, or when 6 s have passed. Then five new clients connect, each giving up after 1 s without
# an answer.

# %%
from labkit.server_cpu import idle_cpu

labkit.show(idle_cpu)

# %%
def one_leaves_then_five_come(*names):
    """For each server: one client's visit, its idle CPU afterwards, and five later clients."""
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(labkit.serve(name)) for name in names}
        first = {name: run_echo_clients(srv.address, n_clients=1) for name, srv in servers.items()}
        cpu, window = idle_cpu(servers)
        later = {name: run_echo_clients(srv.address, n_clients=5, timeout=1.0)
                 for name, srv in servers.items()}
    return first, cpu, window, later

first, hang_cpu, hang_window, later = one_leaves_then_five_come("gevent_echo_hang")
hung = later["gevent_echo_hang"]
labkit.claim("the first client was served", first["gevent_echo_hang"].round_trips == 3)
labkit.claim("the five after it got no answer, each gave up after its 1 s timeout",
             hung.round_trips == 0 and len(hung.errors) == 5
             and all("TimeoutError" in e for e in hung.errors) and hung.elapsed >= 1.0,
             measured=f"{hung.round_trips} round trips, {hung.errors}, {hung.elapsed:.2f} s")
labkit.claim("meanwhile the server used CPU with nobody connected",
             hang_cpu["gevent_echo_hang"] >= 0.3, measured=f"{hang_cpu} over {hang_window:.2f} s")
_ = labkit.claim("yet all five connected (the kernel accepted them for the server)",
                 len(hung.connect_times) == 5)

# %% [markdown]
# The server is still running, and still accepts connections at the TCP level: the kernel
# completes the handshake and queues them. But its one thread is stuck in a loop that never
# yields. Every new client waits until its timeout.
#
# ## The usual patch: `gevent.sleep(0)`
#
# A tempting fix is to yield inside the loop. `gevent_echo_spin` adds `gevent.sleep(0)`:

# %%
labkit.show("gevent_echo_spin")

# %% [markdown]
# Now every turn of the loop switches to the hub, which runs the other greenlets and, every
# few milliseconds at least, looks for I/O. So other clients are served, and they see nothing
# wrong. The bug is still there: the loop never *waits*. We run the same experiment on
# `gevent_echo_spin` and on the fixed `gevent_echo`, side by side, over the same window.

# %%
first, cpu, window, later = one_leaves_then_five_come("gevent_echo_spin", "gevent_echo")
labkit.claim("both served the first client and the five after it, every byte verified",
             all(first[n].round_trips == 3 and later[n].round_trips == 15 and not later[n].errors
                 for n in first))
labkit.claim("with nobody connected, the spinning server used 0.3 s of CPU",
             cpu["gevent_echo_spin"] >= 0.3, measured=f"{cpu} over {window:.2f} s")
labkit.claim("over the same window the fixed server used under 0.03 s",
             cpu["gevent_echo"] < 0.03, measured=f"{cpu} over {window:.2f} s")

shares = {"gevent_echo (fixed)": cpu["gevent_echo"] / window,
          "gevent_echo_spin": cpu["gevent_echo_spin"] / window,
          "gevent_echo_hang": hang_cpu["gevent_echo_hang"] / hang_window}
fig, ax = plt.subplots(figsize=(6, 2))
ax.barh(list(shares), list(shares.values()), color=["#1f77b4", "#d62728", "#d62728"])
ax.set_xlabel("share of a CPU core used with no client connected")
ax.set_xlim(0, 1.05)
plt.show()

# %% [markdown]
# The spinning greenlet holds a core for as long as the server runs. On a machine shared with
# other work it gets less than a whole core (the figure shows what it got here). But it never
# rests: the fixed server's `if not data: return` is the only real fix.
#
# ## Capping concurrency: StreamServer and a Pool
#
# A server that accepts every client at once can be swamped. `gevent.server.StreamServer`
# runs the accept loop for us and hands each client to `handle(conn, address)`. With
# `spawn=Pool(10)` at most 10 handlers run at once, and the next client waits in the listen
# backlog until one finishes. The server counts the most handlers it ever had running.

# %%
labkit.show("gevent_stream_echo")

# %% [markdown]
# 50 clients come at once, and each holds its connection for 0.1 s. The run is repeated a few
# times if a timing claim does not hold at first, since a busy machine can spoil a run. Each
# timing claim is judged on its best run: the fastest connects, and the longest queue.

# %%
capped_runs = []    # every run's LoadResult; the figure draws the last one

def fifty_clients(address):
    """50 clients at once against the capped server; what they measured."""
    run = run_echo_clients(address, n_clients=50, messages=2, pause=0.1, mark_queue=True)
    capped_runs.append(run)
    queued = sorted(s.length for s in run.spans if s.state == "queued")
    return {"slowest connect": max(run.connect_times, default=float("inf")),
            "median queued beyond the pool": statistics.median(queued[10:] or [0.0]),
            "served at once": max_concurrent(run.spans, states=("waiting", "idle"))}

with labkit.serve("gevent_stream_echo", pool=10) as server:
    capped = labkit.Timing(lambda: fifty_clients(server.address), rounds=3, seconds=20)
    capped.claim("every connect returned within 0.1 s",
                 lambda t: t.best("slowest connect"), below=0.1)
    capped.claim("of the 40 clients that waited longest, half were queued for over 0.1 s",
                 lambda t: t.most("median queued beyond the pool"), above=0.1)
    most_active = server.stats()["most_active"]
labkit.claim("all 50 clients served, every byte verified, in every run",
             all(r.round_trips == 100 and not r.errors and len(r.connect_times) == 50
                 for r in capped_runs))
print("the most handlers running at once, counted by the server:", most_active)
print("the most clients being served at once, seen by the clients:",
      round(capped.most("served at once")))
labkit.claim("both counts are the pool's size, 10",
             most_active == capped.most("served at once") == 10)
plot_timeline(capped_runs[-1].spans, title="Pool(10), 50 clients holding their connection 0.1 s")

# %% [markdown]
# `connect` returned within 0.1 s for every client (a run's `connect_times` say how long each
# took). Yet half of the 40 clients beyond the pool then waited over 0.1 s to be served. The
# kernel completes the handshake and puts the connection in the listen backlog. The server's
# code accepts it only when a handler is free. So a client's *first* message waits there,
# unanswered: that is the orange "queued" part. It lasts from `connect`'s return until the echo
# of a first byte comes back (each client sends one byte first).
#
# Once accepted, a client holds its handler for 0.1 s (pale: idle between its two messages).
# Its round trips (grey, mostly too short to see) are quick. At most ten are served at a time:
# a queued client's first byte is answered only once one of the ten has left.

# %% [markdown]
# ## Try it yourself
#
# `run_clients` is what the panel runs; each client's row starts with its time in the queue.
# Try 2,000 clients; try the Pool; try the thread-per-client server. Asking for more clients
# than the open-file limit allows gives a message saying so, as the last lines below show.

# %%
SERVERS = {"gevent_echo": {}, "gevent_stream_echo (Pool 100)": {"pool": 100},
           "thread_echo": {}, "select_echo": {}}

def run_clients(n_clients=100, server="gevent_echo", progress=None):
    name = server.split()[0]
    with labkit.serve(name, **SERVERS[server]) as srv:
        return run_echo_clients(srv.address, n_clients=n_clients, progress=progress,
                                mark_queue=True)

checked = run_clients(n_clients=20, server="gevent_stream_echo (Pool 100)")
labkit.claim("20 clients, 60 round trips, all verified",
             checked.round_trips == 60 and not checked.errors, measured=checked.summary())
try:
    run_clients(n_clients=labkit.max_clients() + 1)
    refused = None
except labkit.TooManyClients as err:
    refused = str(err)
_ = labkit.claim("one client more than fits is refused, with advice",
                 refused is not None and "ulimit -n" in refused, measured=str(refused))

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
#   forgets the second rule spins on a closed connection: it never yields, so every other
#   client hangs. `gevent.sleep(0)` in the loop hides the hang, not the spin: a core still
#   burns.
# * `StreamServer(listener, handle, spawn=Pool(n))` runs the accept loop and caps concurrency.
#   The clients it does not serve yet wait, connected, in the listen backlog. Draw that wait as
#   its own state (`queued`), or it looks like a slow answer.
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint; call
# it again for the next one. `check(n, your_answer)` tells you if you have it. `answer(n)`
# shows a worked solution with a sentence on why it is right. Try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(6)

# %% [markdown]
# **Exercise 1.** Write `handle(conn)`: echo each piece of data as soon as it arrives, and
# return when the client closes. (The check runs it in a plain thread against a socket pair; like
# the lesson's clients, it waits for the echo of its first message before it sends the rest.)

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
