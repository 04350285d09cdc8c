# %% [markdown]
# # 07 · select, poll and epoll: one thread watching many sockets
#
# gevent and every event loop rest on one system call: "here are my sockets; sleep until one
# of them is ready, and tell me which". Linux offers three versions, `select`, `poll` and
# `epoll`. This lesson writes an echo server with each, shows the two bugs that bite every
# first version (a partial `send`, and trusting one `recv` to be one message), compares
# level- and edge-triggered epoll, and measures what watching 10 to 10,000 sockets costs.
#
# **After this lesson you can**
# * tell a blocking from a non-blocking socket by what its calls do;
# * write a select server with read and write sets and per-client buffers that lose nothing;
# * explain level- vs edge-triggered notification from an experiment;
# * say why select and poll slow down with many sockets and epoll does not, with measurements;
# * explain `ValueError: filedescriptor out of range in select()`, and the original course's
#   wall at about 500 clients on Windows.
#
# **Time:** about 35 minutes.

# %%
import os
import random
import select
import socket
import time

import matplotlib.pyplot as plt
from ipywidgets import IntSlider

import labkit
from labkit.clients.echo import echo_late_reader
from labkit.clients.load import receive_exactly, run_echo_clients
from labkit.widgets import panel

# %% [markdown]
# ## Blocking and non-blocking sockets
#
# A **blocking** socket's `recv` waits until data arrives (here, until its timeout). A
# **non-blocking** socket's `recv` never waits: with nothing to read it raises
# `BlockingIOError` at once. An event loop uses non-blocking sockets and asks `select` (or
# `poll`, `epoll`) *when* to call them.

# %%
left, right = socket.socketpair()
left.settimeout(0.2)
started = time.perf_counter()
try:
    left.recv(100)
except TimeoutError:
    print(f"blocking recv: waited, then raised TimeoutError (after about 0.2 s: "
          f"{0.19 < time.perf_counter() - started < 1})")

left.setblocking(False)
started = time.perf_counter()
try:
    left.recv(100)
except BlockingIOError:
    print(f"non-blocking recv: raised BlockingIOError at once: {time.perf_counter() - started < 0.01}")

right.sendall(b"hello")
readable, _, _ = select.select([left], [], [], 1.0)
print("select says it is readable now:", readable == [left], "| recv:", left.recv(100))
left.close(); right.close()

# %% [markdown]
# ## The select server
#
# `select_echo` keeps, for each client, the bytes it still owes it. Each round it asks `select`
# which sockets are readable (the listener: a new client; a client: data or a close) and which
# are writable, but only for clients that have something waiting, otherwise an idle socket
# would be reported writable over and over. What `send` could not take stays in the buffer.

# %%
labkit.show("select_echo")

# %% [markdown]
# The original course's client opened two sockets and sent a message in three parts on each,
# reading the answer after each part. It assumed that one `recv` returns exactly one answer.
# TCP promises only the bytes, in order: answers can arrive split or merged. Our version
# reads exactly as many bytes as it sent:

# %%
parts = [b"This is the message. ", b"It will be sent ", b"in parts."]
with labkit.serve("select_echo") as server:
    socks = [socket.create_connection(server.address, timeout=5) for _ in range(2)]
    for part in parts:
        for i, s in enumerate(socks, 1):
            s.sendall(part)
        for i, s in enumerate(socks, 1):
            print(f"socket {i} got back: {receive_exactly(s, len(part))!r}")
    for s in socks:
        s.close()

# %% [markdown]
# ## Bug 1: ignoring what `send` returns
#
# On a non-blocking socket, `send(data)` takes only what fits in the kernel's buffer *now* and
# returns how much that was. `select_echo_naive` sends everything it has queued in one call and
# forgets it, whatever `send` returned:

# %%
labkit.show("select_echo_naive")

# %% [markdown]
# While the client reads fast, every `send` takes everything and the bug hides. So our client
# reads *late*: it sends 16 MB, waits half a second, then reads. The queue grows, and one
# `send` can take only part of it.

# %%
payload = random.Random(7).randbytes(16_000_000)
outcomes = {}
for name in ("select_echo_naive", "select_echo"):
    with labkit.serve(name) as server:
        back = echo_late_reader(server.address, payload)
        outcomes[name] = (back == payload, len(payload) - len(back), server.stats())

naive_ok, naive_lost, naive_stats = outcomes["select_echo_naive"]
fixed_ok, fixed_lost, _ = outcomes["select_echo"]
print("naive server: echo intact:", naive_ok, "| bytes lost:", naive_lost > 0,
      "| it counted what it dropped:", naive_stats["bytes_lost"] == naive_lost)
print("fixed server: echo intact:", fixed_ok, "| bytes lost:", fixed_lost)
assert not naive_ok and naive_lost == naive_stats["bytes_lost"] > 0
assert fixed_ok and fixed_lost == 0

# %% [markdown]
# The fix is two lines: `sent = conn.send(buf)`, then `del buf[:sent]`. The fixed server also
# stops *reading* from a client that is far behind in reading its echo (its buffer is above a
# high-water mark), so a slow reader cannot make the server buffer without limit. Its client
# then simply waits: TCP flow control does the rest.
#
# ## poll and epoll
#
# `poll` takes a registered set of descriptors instead of three lists rebuilt on each call,
# and has no limit on descriptor numbers. `epoll` keeps the watched set *inside the kernel*;
# each call returns only the ready sockets.

# %%
labkit.show("poll_echo")

# %%
labkit.show("epoll_echo")

# %% [markdown]
# Each server, including epoll in both modes, gets 300 concurrent clients sending random bytes:

# %%
VARIANTS = {"select_echo": {}, "poll_echo": {}, "epoll_echo (level)": {},
            "epoll_echo (edge)": {"edge": True}}
for variant, options in VARIANTS.items():
    with labkit.serve(variant.split()[0], **options) as server:
        result = run_echo_clients(server.address, n_clients=300, messages=3, size=4096)
    print(f"{variant:<20} round trips {result.round_trips}, errors {len(result.errors)}, "
          f"every byte verified: {result.bytes_verified == 300 * 3 * 4096}")
    assert result.round_trips == 900 and not result.errors

# %% [markdown]
# ## Level-triggered or edge-triggered?
#
# With **level-triggered** notification (select, poll, and epoll by default), a socket is
# reported as long as it *is* readable. With **edge-triggered** epoll (`EPOLLET`), it is
# reported when it *becomes* readable: once per arrival of new data. Here is the difference
# on one socket with 10 bytes waiting, of which we read only 4:

# %%
def experiment(edge):
    a, b = socket.socketpair()
    ep = select.epoll()
    ep.register(a.fileno(), select.EPOLLIN | (select.EPOLLET if edge else 0))
    b.sendall(b"0123456789")
    first = bool(ep.poll(0.1))
    a.recv(4)                                   # read only part of what is there
    second = bool(ep.poll(0.1))                 # 6 bytes are still waiting
    b.sendall(b"!")                             # new data: a new edge
    third = bool(ep.poll(0.1))
    ep.close(); a.close(); b.close()
    return first, second, third

for edge in (False, True):
    first, second, third = experiment(edge)
    print(f"{'edge-triggered' if edge else 'level-triggered':<15}: reported at first: {first}, "
          f"again with 6 bytes left unread: {second}, after new data: {third}")
assert experiment(False) == (True, True, True) and experiment(True) == (True, False, True)

# %% [markdown]
# Edge-triggered reports each arrival once, so a server must read (and write) until the call
# raises `BlockingIOError`: the unread 6 bytes will never be reported again on their own.
# `epoll_echo --edge` does exactly that (`drain=True`).
#
# ## What watching many sockets costs
#
# `select` and `poll` hand the kernel the whole list of sockets on *every* call, and the
# kernel checks each one. `epoll` was told the list once; a call only collects what is ready.
# This script measures one call, with a timeout of 0 and nothing ready, for 10 to 10,000 idle
# sockets, in a fresh process (so that select's sockets get descriptor numbers below 1024):

# %%
labkit.show("scripts/watch_cost")

# %%
def watch_cost(max_sockets=10_000, progress=None):
    labkit.check_client_count(max_sockets)     # a clear message if the open-file limit is lower
    counts = [n for n in (10, 30, 100, 300, 1000, 3000, 10_000) if n < max_sockets] + [max_sockets]
    run = labkit.run_script("watch_cost", *counts, on_progress=progress)
    return {int(n): c for n, c in run.data["costs"].items()}

def plot_costs(costs):
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, color in (("select", "#ff7f0e"), ("poll", "#2ca02c"), ("epoll", "#1f77b4")):
        points = [(n, c[kind] * 1e6) for n, c in costs.items() if kind in c]
        ax.plot(*zip(*points), "o-", label=kind, color=color)
    ax.set_xscale("log"); ax.set_yscale("log")
    ax.set_xlabel("sockets watched (all idle)")
    ax.set_ylabel("microseconds per call")
    ax.legend(); ax.grid(alpha=0.3)
    plt.close(fig)
    return fig

costs = watch_cost(10_000)
select_ratio = costs[1000]["select"] / costs[10]["select"]
poll_ratio = costs[1000]["poll"] / costs[10]["poll"]
epoll_ratio = costs[10_000]["epoll"] / costs[10]["epoll"]
print("select at 1,000 sockets costs at least 20x its cost at 10:", select_ratio >= 20)
print("poll at 1,000 sockets costs at least 20x its cost at 10:  ", poll_ratio >= 20)
print("epoll at 10,000 sockets is within 1.5x of its cost at 10: ", epoll_ratio <= 1.5)
print("select could not be measured at 10,000 sockets:", "select" not in costs[10_000])
assert select_ratio >= 20 and poll_ratio >= 20 and epoll_ratio <= 1.5
plot_costs(costs)

# %% [markdown]
# select and poll grow with the number of sockets (the 20x ratios asserted above; the plot
# shows it growing steadily): every watched socket costs something on every call, even when
# none is ready. A server with 10,000 mostly idle connections pays that on every turn of its
# loop. epoll's cost stays flat. This is why `selectors.DefaultSelector` is `EpollSelector`
# on Linux (and kqueue on macOS).
#
# ## select's hard limit
#
# `select` describes its sockets as a bitmap of fixed size, `FD_SETSIZE`: 1024 on Linux.
# A socket whose *descriptor number* is 1024 or more cannot be watched at all, however few
# sockets you pass:

# %%
probe = socket.socket()
high = os.dup2(probe.fileno(), 1500)          # the same socket, as descriptor number 1500
try:
    select.select([high], [], [], 0)
except ValueError as err:
    print("select() with descriptor 1500:", f"ValueError: {err}")
finally:
    os.close(high)
    probe.close()
print("poll() takes it without complaint:", select.poll().register(1500, select.POLLIN) is None)

# %% [markdown]
# The original course hit a wall at about 500 clients on Windows with
# `ValueError: too many file descriptors in select()`. Same idea, different number: Python's
# Windows build sets `FD_SETSIZE` to 512 and counts *sockets* rather than descriptor numbers,
# and `selectors.DefaultSelector` is select there. On Linux the limit is descriptor 1024,
# and the default selector is epoll, which has neither limit.
#
# ## Try it yourself
#
# The panel measures the costs again, up to the number of sockets you choose. More sockets
# than the open-file limit allows gives a message saying so (`labkit.max_clients()` tells
# you the limit here).

# %%
# NBVAL_IGNORE_OUTPUT
panel(watch_cost, draw=plot_costs,
      controls={"max_sockets": IntSlider(3000, min=100, max=30_000, step=100,
                                         description="sockets")})

# %% [markdown]
# ## Summary
#
# * Non-blocking sockets never wait; `select`/`poll`/`epoll` tell you when to call them.
# * Keep a buffer per client: send what `send` accepts, keep the rest; read until you have the
#   whole message; ask for write readiness only while you have something to write.
# * Level-triggered reports a state; edge-triggered reports a change, so drain until
#   `BlockingIOError`.
# * select and poll cost grows with every watched socket; epoll's does not. select cannot watch
#   descriptor 1024 or above (512 sockets on Windows).
#
# ## Exercises

# %%
from labkit.exercises import lesson
hint, check = lesson(7)

# %% [markdown]
# **Exercise 1.** Which call's cost stays flat as the number of watched sockets grows:
# `"select"`, `"poll"` or `"epoll"`?

# %%
check(1, ...)

# %% [markdown]
# **Exercise 2.** Write `send_some(sock, buffer)` for a non-blocking socket: send what the kernel
# takes, remove exactly that from the front of the `bytearray`, and return the count (0 if
# nothing fits).

# %%
def send_some(sock, buffer):
    ...   # your code here

check(2, send_some)

# %% [markdown]
# **Exercise 3.** Edge-triggered epoll reported `EPOLLIN` for 10 bytes; you read 4. If nothing
# new arrives, does the next `poll()` report the socket again? Answer `True` or `False`.

# %%
check(3, ...)

# %% [markdown]
# **Exercise 4.** Why did the original course's select server fail at about 500 clients on
# Windows? (a) Python's Windows select takes at most 512 sockets, (b) the machine ran out of
# ports, (c) 500 threads were too many for Windows. Answer `"a"`, `"b"` or `"c"`.

# %%
check(4, ...)
