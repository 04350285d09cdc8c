# %% [markdown]
# # 13 · Appendix: what an echo costs
#
# Lesson 09 taught asyncio; this appendix weighs it. The same echo, one message in and the same
# message out, served by asyncio's two APIs, by uvloop, by lesson 00's selectors server and by
# lesson 06's gevent server. We count the system calls each makes per round trip, then measure
# the CPU each spends.
#
# **After this appendix you can**
# * write an echo server with asyncio's streams API or its protocol API, on asyncio's loop or
#   on uvloop.
# * count a server's system calls per round trip, and say why asyncio's streams need one more.
# * compare servers by the CPU they spend per round trip, measured from `/proc`.
#
# **Time:** about 20 minutes: 15 reading and running, 5 exercises.

# %%
import labkit

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

# %% [markdown]
# ## The echo server on asyncio, and on uvloop
#
# asyncio offers two ways to write a server. The **streams** API is one coroutine per client
# (`await reader.read()`, `writer.write()`, `await writer.drain()`): it reads like lesson 06's
# gevent server. The **protocol** API is the layer underneath: the loop calls
# `data_received` on an object, as lesson 08's selectors server calls `receive(conn)`, and
# `transport.write` never blocks. **uvloop** is a drop-in replacement for asyncio's loop,
# written in Cython on libuv (the C event loop under Node.js): the same coroutines and
# protocols, on a loop its README calls 2-4x faster. `asyncio_echo` is both, on either loop.

# %%
labkit.show("asyncio_echo")

# %% [markdown]
# ## Why one loop is cheaper: count the system calls
#
# A system call (`recv`, `send`, `epoll_wait`, `epoll_ctl`) asks the kernel for something,
# and each one is a trip into the kernel and back. `selectors_echo`, the server of lesson 00,
# sends the echo right after the `recv` that brought it. The kernel's send buffer almost
# always has room, so it asks for EVENT_WRITE only when `send` could not take everything, as
# asyncio's transports do. Started with `wait_writable=True`, it asks the selector first,
# before every reply: register for EVENT_WRITE (`modify`, an `epoll_ctl`), wait for
# `select()` to say the socket is writable, `send`, then `modify` back.
#
# strace (`strace -c -f -p PID`) counts a process's system calls, but it may be missing, or
# not allowed to attach (ptrace), on a hosted notebook server. So each server counts its own
# with `count_calls=True`: every `recv`, `send`, `select` and `modify` it makes through
# Python's `socket` and `selectors` modules is one system call, named as strace names it (the
# course's tests check the two counts agree where strace runs). One client, 500 echoes of
# 1 KiB, on both selectors servers, on both asyncio APIs and on gevent.

# %%
from labkit.server_cpu import plot_system_calls, system_calls_per_round_trip

calls = system_calls_per_round_trip({
    "selectors, asks first": ("selectors_echo", {"wait_writable": True}),
    "selectors, sends at once": ("selectors_echo", {}),
    "asyncio protocol": ("asyncio_echo", {"api": "protocol"}),
    "asyncio streams": ("asyncio_echo", {"api": "streams"}),
})
for label, per_round_trip in calls.items():
    print(f"{label:>25}:", ", ".join(f"{n:.1f} {call}" for call, n in per_round_trip.items()))

def about(counts, **expected):
    """Each call made that many times per round trip, give or take 0.1."""
    return all(abs(counts.get(call, 0) - n) < 0.1 for call, n in expected.items())

first, at_once = calls["selectors, asks first"], calls["selectors, sends at once"]
labkit.claim("asking first: two epoll_ctl and two epoll_wait per round trip",
             about(first, recvfrom=1, sendto=1, epoll_wait=2, epoll_ctl=2), measured=str(first))
labkit.claim("sending at once: one recv, one send, one epoll_wait, no epoll_ctl per message",
             about(at_once, recvfrom=1, sendto=1, epoll_wait=1, epoll_ctl=0), measured=str(at_once))
labkit.claim("asking first adds three system calls per round trip, to the three of sending at once",
             abs(sum(first.values()) - sum(at_once.values()) - 3) < 0.3, measured=str(calls))
labkit.claim("asyncio's protocol API: the same three calls as sending at once",
             about(calls["asyncio protocol"], recvfrom=1, sendto=1, epoll_wait=1, epoll_ctl=0))
labkit.claim("asyncio's streams API: the same recv and send, and two epoll_wait per round trip",
             about(calls["asyncio streams"], recvfrom=1, sendto=1, epoll_wait=2, epoll_ctl=0))

# %%
# gevent's recv and epoll_wait per round trip vary with timing (see below): claimed, not printed
calls["gevent"] = g = system_calls_per_round_trip({"gevent": ("gevent_echo", {})})["gevent"]
labkit.claim("gevent: one send per round trip, and each wait in the hub one epoll_wait and one "
             "more recv", about(g, sendto=1) and abs(g["recvfrom"] - 1 - g["epoll_wait"]) < 0.1,
             measured=str(g))
plot_system_calls(calls)

# %% [markdown]
# The protocol API makes the same three calls as `selectors_echo`: the loop calls
# `data_received` right after the `recv`, and `transport.write` sends at once. The streams API
# needs a second `epoll_wait` per message. Its `recv` only feeds a `StreamReader`, which wakes
# the handler's task with `call_soon`. Each pass of asyncio's loop polls, then runs the
# callbacks ready by then; those they schedule wait for the next pass. So the handler runs on
# the next pass, which starts with one more `epoll_wait` (timeout 0: work is waiting).
#
# gevent's count depends on timing. Its `recv` tries the socket first and waits only after
# EAGAIN. A message already there costs one call; one on its way costs a failed `recv`, an
# `epoll_wait` and a second `recv` (claimed above). The `epoll_wait`s are libev's count. Its
# bar lacks what labkit does not count. In our strace runs: a `getsockopt` per `sendall` (to
# size its chunks), and inside libev a `getpid` per wait (its fork check) and its `epoll_ctl`.
# uvloop makes all its calls in C, in libuv. strace shows one `epoll_pwait`, one `read` and one
# `write` per round trip with either API: it runs ready callbacks before it polls again (the
# course's tests check this).

# %% [markdown]
# Which costs the server less CPU per round trip? Each server is started once; 20 clients send
# 200 messages of 1 KiB each and check every echo, the servers taking turns five times (up
# to ten while a claim does not hold yet). We read each server's CPU time from `/proc`. The
# same work can take more CPU time in one round than in another (lesson 05 measured it), so
# the claims compare two servers within each round, and take the median over the rounds. The
# figure draws each server's least. The servers and
# the clients share one core (`together=True`), as on a one-core machine: while a server waits
# for the core, the clients' next messages queue up, so each wake-up finds several sockets
# ready, as a busy server does. (In our runs with a core of its own, a server faster than its
# clients woke for every message, and the wake-ups hid the loops' differences.) uvloop is pinned in
# this course's requirements; where it cannot be installed, its servers are left out, and the
# cell says so.

# %%
import importlib.util

from labkit.server_cpu import EchoCpuRounds, plot_cpu_per_round_trip

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None
ECHO_SERVERS = {"selectors, asks first": ("selectors_echo", {"wait_writable": True}),
                "selectors (00)": ("selectors_echo", {}), "gevent (06)": ("gevent_echo", {})}
for loop_name in ("asyncio", "uvloop"):
    if loop_name == "uvloop" and not HAVE_UVLOOP:
        print("uvloop is not installed here (pip install uvloop): its servers are skipped.")
        continue
    for api in ("streams", "protocol"):
        ECHO_SERVERS[f"{loop_name} {api}"] = ("asyncio_echo", {"api": api, "loop": loop_name})

def relative(t, label):  # CPU per round trip / the selectors server's, each round: the median
    return t.median_ratio((label, "µs"), ("selectors (00)", "µs"))

with EchoCpuRounds(ECHO_SERVERS, together=True, least_rounds=5) as rounds:
    PAIRED = rounds.median_of_rounds   # how the claims below are judged
    rounds.claim("asking the selector first costs over 1.15x the CPU per round trip",
                 lambda t: relative(t, "selectors, asks first"), above=1.15, judged_on=PAIRED)
    rounds.claim("all within a factor of 4 of the selectors server, per round trip",
                 lambda t: max(max(relative(t, s), 1 / relative(t, s)) for s in ECHO_SERVERS),
                 below=4, judged_on=PAIRED)
    asyncio_servers = [s for s in ECHO_SERVERS if s.endswith(("streams", "protocol"))]
    rounds.claim("the cheapest asyncio server costs less per round trip than our gevent server",
                 lambda t: min(relative(t, s) for s in asyncio_servers)
                 / relative(t, "gevent (06)"), below=1, judged_on=PAIRED)
    cpu = rounds.us_per_round_trip()
plot_cpu_per_round_trip(cpu, reference="selectors (00)")

# %% [markdown]
# The two selectors bars are the same server, but for the three system calls per round
# trip counted above. The "asyncio streams" bar pays for its extra loop pass per message (an
# `epoll_wait`), and both streams bars for the coroutine step that runs the handler; the
# protocol API skips both. gevent's handler switches to the hub and back whenever its `recv`
# has to wait. uvloop runs the same Python handlers on a loop written in C. This cell's claims
# do not rank those:
# `python -m benchmarks echo` does, with more runs (`benchmarks/results.md`). A few thousand
# round trips on a busy machine are a small sample: run the cell again and the order of close
# bars may change; the claims above hold only what holds by a wide margin.

# %% [markdown]
# ## Summary
#
# * asyncio's streams API is a coroutine per client; its protocol API is callbacks on an object.
#   uvloop runs both on a loop written in C.
# * Per echo, sending right after `recv` takes three system calls, asking first six; asyncio's
#   streams add a loop pass (an `epoll_wait`).
# * All our echo servers cost the same order of CPU per round trip; `python -m benchmarks echo`
#   ranks them with more runs.
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint (call
# it again for the next one), `check(n, your_answer)` tells you if you have it, and `answer(n)`
# shows a worked solution with a sentence on why it is right: try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(13)

# %% [markdown]
# **Exercise 1.** Lesson 07's `select_echo` serves one client that sends 1 KiB messages, one at
# a time. How many system calls does it make per round trip? Predict, then measure with
# `system_calls_per_round_trip` and answer with the total.

# %%
check(1, ...)
