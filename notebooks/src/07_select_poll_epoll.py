# %% [markdown]
# # 07 · select, poll and epoll: one thread watching many sockets
#
# gevent's hub and asyncio's loop rest on one kind of system call: "here are my sockets; sleep
# until one of them is ready, and tell me which". Linux offers three: `select`, `poll` and
# `epoll`.
#
# This lesson writes an echo server with each, and measures what watching 10 to 10,000 sockets
# costs. It shows the two bugs that bite every first version: a partial `send`, and trusting
# one `recv` to be one message.
#
# **After this lesson you can**
# * tell a blocking from a non-blocking socket by what its calls do.
# * write a select server with read and write sets and per-client buffers that lose nothing.
# * say what select's third list reports on Linux (urgent data, not errors), from an
#   experiment, and how Windows differs.
# * explain level- vs edge-triggered notification from an experiment.
# * say why select and poll slow down with many sockets and epoll does not, with measurements.
# * explain `ValueError: filedescriptor out of range in select()`, and the original course's
#   wall at about 500 clients on Windows.
#
# **Time:** about 70 minutes: 45 reading and running, 25 exercises; sittings of 30 + 40.

# %%
import errno
import fcntl
import os
import random
import select
import selectors
import socket
import struct
import threading

import matplotlib.pyplot as plt
from ipywidgets import IntSlider

import labkit
from labkit.clients.echo import echo_late_reader, push_without_reading
from labkit.clients.load import receive_exactly, run_echo_clients
from labkit.limits import SCALED_DOWN
from labkit.widgets import panel

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

# %% [markdown]
# ## Blocking and non-blocking sockets
#
# A **blocking** socket's `recv` waits until data arrives. A **non-blocking** socket's `recv`
# never waits: with nothing to read it raises `BlockingIOError` at once. Which one a socket
# is, is one flag the kernel keeps on it, `O_NONBLOCK`, and `fcntl` reads it. An event loop
# uses non-blocking sockets and asks `select` (or `poll`, `epoll`) *when* to call them.
#
# Each wait below is timed once, and again (up to 3 interleaved runs) only while its claim
# fails. It is judged on its fastest run: a busy machine only ever adds time. First a blocking
# `recv`, with data sent 0.2 s after it starts:

# %%
def nonblocking(sock):
    """The kernel's O_NONBLOCK flag on this socket: it decides whether recv may wait."""
    return bool(fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK)

left, right = socket.socketpair()
# A truly blocking recv. It cannot hang: a thread sends 0.2 s after it starts, and the
# kernel's own receive timeout (SO_RCVTIMEO, 5 s; the socket stays blocking) is a second guard.
left.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0))

def recv_late_data():
    sender = threading.Timer(0.2, right.sendall, [b"late"])
    sender.start()
    data = left.recv(100)                      # sleeps in the kernel until the data comes
    sender.join()
    assert data == b"late", data

blocking = labkit.Timing({"blocking": recv_late_data}, rounds=3, seconds=5)
labkit.claim("blocking: the kernel's O_NONBLOCK flag is off", not nonblocking(left))
_ = blocking.claim("recv slept until the data came, 0.2 s later",
                   lambda t: abs(t["blocking"] - 0.2), below=0.1)

# %% [markdown]
# Python's `settimeout(t)` is a mix of both. It *sets* `O_NONBLOCK`, and Python itself then
# waits (in `poll()`) for at most `t` seconds before raising `TimeoutError`. Yet
# `getblocking()` still says `True`: to Python, "blocking" means any timeout other than 0.
# Here are a socket with a timeout and a non-blocking one, each asked for data nobody sends:

# %%
left.settimeout(0.2)
quiet, talker = socket.socketpair()
quiet.setblocking(False)
print("settimeout(0.2): getblocking() =", left.getblocking(), "| O_NONBLOCK:", nonblocking(left))
labkit.claim("with a timeout, Python says blocking while the kernel's O_NONBLOCK is on",
             left.getblocking() and nonblocking(left))
labkit.claim("setblocking(False): both say non-blocking",
             not quiet.getblocking() and nonblocking(quiet))

def recv_raises(error, sock):
    """recv on a socket nobody sends to must raise ``error`` (any other outcome propagates)."""
    try:
        sock.recv(100)
    except error:
        return
    raise AssertionError("recv returned, though nobody sent anything")

waits = labkit.Timing({"timeout": lambda: recv_raises(TimeoutError, left),
                       "non-blocking": lambda: recv_raises(BlockingIOError, quiet)},
                      rounds=3, seconds=5)
waits.claim("settimeout(0.2): Python waited 0.2 s, then raised TimeoutError",
            lambda t: abs(t["timeout"] - 0.2), below=0.1)
_ = waits.claim("non-blocking: recv raised BlockingIOError without waiting (under 10 ms)",
                lambda t: t["non-blocking"], below=0.01)

# %%
talker.sendall(b"hello")
readable, _, _ = select.select([quiet], [], [], 1.0)
labkit.claim("once data is there, select says the non-blocking socket is readable",
             readable == [quiet])
print("recv:", quiet.recv(100))
for s in (left, right, quiet, talker):
    s.close()

# %% [markdown]
# ## The select server
#
# `select_echo` keeps, for each client, the bytes it still owes it. Each round it asks `select`
# which sockets are readable (the listener: a new client; a client: data or a close). It sends
# each echo right after the `recv` that brought it, unless older bytes still wait to go. What
# `send` could not take stays in the buffer, and only for such clients does it ask `select`
# which are writable. Asked about every client, `select` would report each idle socket
# writable, round after round.

# %%
labkit.show("select_echo")

# %% [markdown]
# `select` takes a third list too, and `select_echo` passes it nothing. The documentation calls
# it "exceptional conditions", which suggests errors. On Linux, for a TCP socket, it reports
# **urgent data**: a byte sent with `MSG_OOB`, which new programs are told not to use. A
# connection reset by the other side is reported as *readable*, and the `recv` that follows
# raises the error:

# %%
with socket.create_server(("127.0.0.1", 0)) as listener:
    listener.settimeout(5)
    sender = socket.create_connection(listener.getsockname(), timeout=5)
    receiver, _ = listener.accept()
    sender.send(b"!", socket.MSG_OOB)                   # one byte of urgent data
    _, _, exceptional = select.select([], [], [receiver], 1.0)
    resetter = socket.create_connection(listener.getsockname(), timeout=5)
    victim, _ = listener.accept()
    victim.settimeout(5)
    # SO_LINGER with a zero timeout: close() sends a reset (RST) instead of a polite FIN
    resetter.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    resetter.close()
    readable, _, failed = select.select([victim], [], [victim], 1.0)
    try:
        victim.recv(100)
        error = None
    except ConnectionResetError as err:
        error = type(err).__name__
    for s in (sender, receiver, victim):
        s.close()
print("urgent data, third list:", len(exceptional), "socket; reset:", len(readable),
      "readable,", len(failed), "in the third list; recv raised", error)
_ = labkit.claim("urgent data lands in the third list; a reset connection is readable, not there",
                 exceptional == [receiver] and readable == [victim] and failed == []
                 and error == "ConnectionResetError")

# %% [markdown]
# A connection that fails to open is not in the third list on Linux either. A non-blocking
# `connect` returns at once; when the refusal comes, the socket turns readable *and* writable,
# and the `SO_ERROR` option says why:

# %%
with socket.socket() as nobody, socket.socket() as caller:
    nobody.bind(("127.0.0.1", 0))              # a port of ours with no listener: refused
    caller.setblocking(False)
    started = errno.errorcode[caller.connect_ex(nobody.getsockname())]
    readable, writable, third = select.select([caller], [caller], [caller], 1.0)
    why = errno.errorcode[caller.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)]
print(f"connect_ex: {started}; then {len(readable)} readable, {len(writable)} writable, "
      f"{len(third)} in the third list; SO_ERROR: {why}")
_ = labkit.claim("a refused connect: readable and writable, not in the third list, ECONNREFUSED",
                 (len(readable), len(writable), third, why) == (1, 1, [], "ECONNREFUSED"))

# %% [markdown]
# Windows differs here, and the original course ran there. Winsock's `select` also puts a
# non-blocking `connect` that *failed* in the third list, beside urgent data. So on Windows
# the third list does carry one kind of error. On Linux an error shows as readable (or
# writable), and the next call, or `SO_ERROR`, says which.

# %% [markdown]
# The original course's client opened two sockets and sent a message in three parts on each,
# reading the answer after each part. It assumed that one `recv` returns exactly one answer.
# TCP promises only the bytes, in order: answers can arrive split or merged. Our version
# reads exactly as many bytes as it sent:

# %%
parts = [b"This is the message. ", b"It will be sent ", b"in parts."]
with labkit.serve("select_echo") as server:
    socks = [socket.create_connection(server.address, timeout=5) for _ in range(2)]
    answers = []
    for part in parts:
        for s in socks:
            s.sendall(part)
        for i, s in enumerate(socks, 1):
            answers.append(receive_exactly(s, len(part)))
            print(f"socket {i} got back: {answers[-1]!r}")
    for s in socks:
        s.close()
_ = labkit.claim("each socket got back exactly each part it sent",
                 answers == [part for part in parts for _ in socks])

# %% [markdown]
# ## Bug 1: ignoring what `send` returns
#
# On a non-blocking socket, `send(data)` takes only what fits in the kernel's buffer *now*. It
# returns how much that was. `select_echo_naive` sends everything it has queued in one call and
# forgets it, whatever `send` returned:

# %%
labkit.show("select_echo_naive")

# %% [markdown]
# While the client reads fast, every `send` takes everything and the bug hides. 20 clients with
# 3 messages of 4 KiB each get every byte back. So our next client reads *late*. It sends 16 MB
# and reads nothing until the server has gone quiet, then reads. (Quiet: none of the server's
# threads is running or ready to run, says `/proc`; it has read all it will.) The queue grows,
# and one `send` can take only part of it.

# %%
payload = random.Random(7).randbytes(16_000_000)
outcomes = {}
for name in ("select_echo_naive", "select_echo"):
    with labkit.serve(name) as server:
        fast = run_echo_clients(server.address, n_clients=20, messages=3, size=4096)
        back = echo_late_reader(server.address, payload, server_pid=server.pid)
        outcomes[name] = (fast, back == payload, len(payload) - len(back), server.stats())

naive_fast, naive_ok, naive_lost, naive_stats = outcomes["select_echo_naive"]
fixed_fast, fixed_ok, fixed_lost, _ = outcomes["select_echo"]
fast_ok = all(f.round_trips == 60 and f.bytes_verified == 60 * 4096 and not f.errors
              for f in (naive_fast, fixed_fast))
labkit.claim("fast readers: every byte came back from both servers", fast_ok)
labkit.claim("late reader, naive server: the echo lost bytes, and the server counted them",
             not naive_ok and naive_lost == naive_stats["bytes_lost"] > 0,
             measured=f"lost {naive_lost}, counted {naive_stats['bytes_lost']}")
_ = labkit.claim("late reader, fixed server: echo intact, no byte lost",
                 fixed_ok and fixed_lost == 0, measured=f"lost {fixed_lost}")

# %% [markdown]
# The fix is two lines: `sent = conn.send(buf)`, then `del buf[:sent]`.
#
# The fixed server also stops *reading* from a client that is far behind in reading its echo
# (its buffer has reached `HIGH_WATER`, 1 MiB). So a slow reader cannot make it buffer without
# limit. The client's bytes then wait in the kernel's socket buffers until those are full, and
# its `send` must wait too: TCP's flow control. Here a client offers 64 MiB and reads nothing:

# %%
labkit.show(push_without_reading)

# %%
from labkit.servers.select_echo import HIGH_WATER

with labkit.serve("select_echo") as server:
    pushed = push_without_reading(server.address)
    counters = server.stats()
held = counters["bytes_in"] - counters["bytes_out"]   # read from the client, not yet echoed
measured = f"pushed {pushed:,}, server read {counters['bytes_in']:,}, held {held:,}"
labkit.claim("the client's send had to wait long before 64 MiB", pushed < 64 << 20, measured)
labkit.claim("the server held at most HIGH_WATER plus one recv (64 KiB)",
             held <= HIGH_WATER + 65536, measured)
_ = labkit.claim("the rest waited in the kernel's socket buffers", pushed > counters["bytes_in"],
                 measured)

# %% [markdown]
# ## poll and epoll
#
# Python's `select.poll` object remembers the descriptors you register. So your code no longer
# rebuilds three lists, and there is no limit on descriptor numbers. But each `poll()` call
# still hands the kernel the whole array: the `poll` system call takes it every time, as
# `select` takes its lists. `epoll` keeps the watched set *inside the kernel*; each call
# returns only the ready sockets.

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
    labkit.claim(f"{variant}: 900 round trips, no errors, every byte verified",
                 result.round_trips == 900 and not result.errors
                 and result.bytes_verified == 300 * 3 * 4096, measured=result.summary())

# %% [markdown]
# ## Level-triggered or edge-triggered?
#
# With **level-triggered** notification (select, poll, and epoll by default), a socket is
# reported as long as it *is* readable: the call looks at its state. With **edge-triggered**
# epoll (`EPOLLET`), it is reported when its state *changes*: new data arrived since the last
# report. Here is the difference on one socket with 10 bytes waiting, of which we read only 4,
# then one more byte arrives:

# %%
def experiment(edge):
    a, b = socket.socketpair()
    a.settimeout(5)                             # the data is there: recv will not wait
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
labkit.claim("level-triggered reported all three times", experiment(False) == (True, True, True))
_ = labkit.claim("edge-triggered did not report the 6 bytes left unread, only the new one",
                 experiment(True) == (True, False, True))

# %% [markdown]
# Edge-triggered reports the arrival, not the presence, of data. The 6 unread bytes were not
# reported again. And the new byte was reported although the socket had been readable all along
# (it never "became" readable).
#
# So a server must read (and write) until the call raises `BlockingIOError`: unread bytes are
# never reported again on their own. `epoll_echo --edge` does exactly that
# (`while move_bytes(client) and edge`). It also remembers a client it stopped reading for
# back-pressure, since no new edge will come for the bytes left in that socket.

# %% [markdown]
# ## Sitting 2 of 2 (about 40 minutes) — a good place to stop
#
# The second of this lesson's two sittings starts here. Coming back to a fresh kernel? Select
# the cell below and choose **Run → Run All Above Selected Cell** first. This part uses the
# imports of the first code cell.

# %% [markdown]
# ## What watching many sockets costs
#
# `select` and `poll` hand the kernel the whole list of sockets on *every* call, and the kernel
# checks each one. `epoll` was told the list once; a call only collects what is ready.
#
# This script measures one call, with a timeout of 0 and nothing ready, for 10 to 10,000 idle
# sockets. It runs in a fresh process, so that select's sockets get descriptor numbers below
# 1024. It counts CPU time and interleaves the sizes, so a busy machine slows them all alike:

# %%
labkit.show("scripts/watch_cost")

# %%
def watch_cost(max_sockets=10_000, progress=None):
    labkit.check_client_count(max_sockets, what="sockets")   # a clear message if they won't fit
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
    ax.set_ylabel("CPU microseconds per call")
    ax.legend(); ax.grid(alpha=0.3)
    plt.close(fig)
    return fig

# %% [markdown]
# From 10 sockets to the most measured, how much more a call costs, and what one more watched
# socket adds:

# %%
def per_extra_socket(costs, kind):
    """What one more watched socket adds to a call: the slope from 10 sockets to the most
    this kind was measured with (select stops below descriptor 1024)."""
    most = max(n for n, c in costs.items() if kind in c)
    return (costs[most][kind] - costs[10][kind]) / (most - 10), costs[most][kind] / costs[10][kind]

costs = watch_cost(labkit.fit_clients(10_000, what="sockets"))   # fewer if ulimit -n is low
slope = {kind: per_extra_socket(costs, kind)[0] for kind in ("select", "poll", "epoll")}
growth = {kind: per_extra_socket(costs, kind)[1] for kind in ("select", "poll")}
for kind in ("select", "poll"):
    labkit.claim(f"{kind}: costs at least 10x more with the most sockets than with 10",
                 growth[kind] >= 10, measured=f"{growth[kind]:.1f}x")
labkit.claim("epoll: one more socket adds less than 1/20 of what it adds to select or poll",
             slope["epoll"] < min(slope["select"], slope["poll"]) / 20, measured=str(slope))
labkit.claim("selectors.DefaultSelector here is EpollSelector (asyncio's loop uses it)",
             selectors.DefaultSelector is selectors.EpollSelector)
import gevent   # not patched: only to ask which call its hub's loop waits in
labkit.claim("gevent's hub waits in epoll too", gevent.get_hub().loop.backend == "epoll")
plot_costs(costs)

# %% [markdown]
# select and poll grow with the number of sockets (asserted above; on the log-log plot their
# lines climb steadily). Every watched socket costs something on every call, even when none is
# ready. epoll's line stays flat. A server with many mostly idle connections pays that cost on
# every turn of its loop. This is why `selectors.DefaultSelector` is `EpollSelector` on Linux
# (and kqueue on macOS).
#
# ## select's hard limit
#
# `select` describes its sockets as a bitmap of fixed size, `FD_SETSIZE`: 1024 on Linux. A
# socket whose *descriptor number* is 1024 or more cannot be watched at all, however few
# sockets you pass. Python checks the number before it calls `select()` (the bitmap has no bit
# for it) and refuses. `poll` takes a list of numbers instead, so it accepts 1500 and answers
# for it. For our socket it answers its state (an unconnected socket reports `POLLHUP`). Where
# this process cannot have a descriptor 1500 at all, it answers `POLLNVAL`: "fd not open", in
# the words of poll(2).

# %%
soft_limit, _ = labkit.raise_open_file_limit()
probe = socket.socket()
if soft_limit > 1500:
    os.dup2(probe.fileno(), 1500)              # the same socket, as descriptor number 1500
else:                                          # descriptor 1500 cannot exist in this process
    print(f"{SCALED_DOWN} this process may open only {soft_limit:,} files (ulimit -n), so no "
          "socket can have number 1500 here; Python refuses the number all the same.")
try:
    select.select([1500], [], [], 0)
except ValueError as err:
    refused = err
print("select() with descriptor 1500:", f"ValueError: {refused}")
labkit.claim("select() refuses it: out of range", "out of range" in str(refused))
poller = select.poll()
poller.register(1500, select.POLLIN)
answer = poller.poll(0)                        # [(descriptor, events)]
exists = soft_limit > 1500
if exists:
    os.close(1500)
probe.close()
labkit.claim("poll() accepts descriptor 1500 and answers for it",
             [fd for fd, _ in answer] == [1500])
expected = select.POLLHUP if exists else select.POLLNVAL
_ = labkit.claim("its answer: POLLHUP for our unconnected socket, or POLLNVAL where none can exist",
                 [events for _, events in answer] == [expected], measured=str(answer))

# %% [markdown]
# The original course's selectors server hit a wall at about 500 clients on Windows, with
# `ValueError: too many file descriptors in select()`. Same idea, different number:
# `selectors.DefaultSelector` is select there. Python's Windows build sets `FD_SETSIZE` to 512
# and counts *sockets* rather than descriptor numbers. On Linux the limit is descriptor 1024,
# and the default selector is epoll, which has neither limit.
#
# ## Try it yourself
#
# The panel measures the costs again, up to the number of sockets you choose. More sockets than
# the open-file limit allows gives a message saying so. `labkit.max_clients()` tells you how
# many fit here.

# %%
# NBVAL_IGNORE_OUTPUT
panel(watch_cost, draw=plot_costs,
      controls={"max_sockets": IntSlider(min(3000, labkit.max_clients()), min=100, max=30_000,
                                         step=100, description="sockets")})

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
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint; call
# it again for the next one. `check(n, your_answer)` tells you if you have it. `answer(n)`
# shows a worked solution with a sentence on why it is right. Try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(7)

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
# **Exercise 4.** Why did the original course's selectors server fail at about 500 clients on
# Windows? (a) its `DefaultSelector` there is select, which takes at most 512 sockets on
# Windows, (b) the machine ran out of ports, (c) 500 threads were too many for Windows. Answer
# `"a"`, `"b"` or `"c"`.

# %%
check(4, ...)
