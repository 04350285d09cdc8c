# %% [markdown]
# # 00 · Start here
#
# **asynclab** teaches coroutines and asynchronous I/O in Python, from the ground up. It starts
# with generator coroutines, greenlet switching and gevent. Then come the event-driven model,
# `select`/`poll`/`epoll` and the `selectors` module, up to servers that hold thousands of
# clients.
#
# Every lesson runs real code against real servers on this machine. It measures what happens,
# draws it, and checks its own claims. A claim shows `✔` when it holds on your machine, and `✘`
# with the numbers when it does not.
#
# **After this notebook you can** check that your machine is ready, start one of the course's
# teaching servers in the background, talk to it over a socket, and stop it.
#
# **Time:** about 20 minutes.

# %% [markdown]
# ## The lessons
#
# Read them in order; each builds on the one before. Lessons 00 to 08 go from generators to a
# file server on `selectors`:
#
# * **00** [Start here](00_start_here.ipynb): the doctor, a first background echo server.
# * **01** [Coroutines with generators](01_coroutines.ipynb): `send`, a round-robin scheduler,
#   the cost of a switch.
# * **02** [greenlet](02_greenlet.ipynb): switching between functions, drawn as a timeline.
# * **03** [gevent basics](03_gevent_basics.ipynb): `spawn`, `joinall`, `Pool`, `Queue`, monkey
#   patching in a child.
# * **04** [Synchronous vs asynchronous I/O](04_sync_vs_async.ipynb): one page fetcher, three
#   strategies, measured.
# * **05** [The event-driven model](05_event_driven.ipynb): three tasks drawn from real runs; an
#   event loop from scratch.
# * **06** [A gevent socket server](06_gevent_server.ipynb): 100 clients, one thread, and a bug
#   that burns a CPU.
# * **07** [select, poll and epoll](07_select_poll_epoll.ipynb): what watching 10,000 sockets
#   costs.
# * **08** [The selectors file server](08_selectors_file_server.ipynb): framed get/put for a
#   thousand clients, byte for byte.

# %% [markdown]
# Lessons 09 to 13 take the same ideas to asyncio, CPU work and load testing:
#
# * **09** [From our event loop to asyncio](09_asyncio.ipynb): your own `TaskGroup`, workers on a
#   `Queue`, cancellation, `drain()`, bridges to threads, async generators.
# * **10** [CPU work and processes](10_cpu_and_processes.ipynb): one CPU request stalls the loop;
#   a process pool, pre-fork workers, gunicorn `-k gevent`.
# * **11** [gevent at work: load testing with Locust](11_locust.ipynb): Locust's users are
#   greenlets; requests/s and percentiles over time, your own locustfile, a master and workers.
# * **12** [Capstone: a server the course grades](12_capstone.ipynb): your own server, graded by
#   `labkit.grade`.
# * **13** [Appendix: what an echo costs](13_appendix_echo_costs.ipynb): system calls and CPU per
#   round trip, server by server.
#
# Each lesson's first cell says how long it takes, exercises included. The longer lessons are
# split into sittings of at most about 45 minutes. Each sitting starts at a heading that marks a
# good place to stop.
#
# The course's words, in English and Chinese, are in the [glossary](../docs/glossary.md) (术语表).
# Teaching a class? The [instructors' guide](../docs/instructors.md) has each lesson's goals and
# minutes, and how they were measured. It also has the misconceptions to watch for, and
# discussion questions.

# %% [markdown]
# ## How to use the notebooks
#
# * Run cells from the top with **Shift+Enter**, or **Run → Run All Cells**.
# * Each lesson imports `labkit`, the course's helper package. It starts the teaching servers,
#   drives clients, records what every task did and when, and draws it. Whenever a lesson
#   uses labkit for something that matters, it shows you the code.
# * Servers listen on `127.0.0.1` on a port the operating system picks, so many students can
#   share one machine. They stop when their `with` block ends, and when you restart the kernel.
#   They stop even when the kernel crashes: a server watches a pipe from the kernel and exits
#   when it closes.
# * Cells with sliders and a **Run** button redraw their figure when you press **Run**. Next to
#   each, a plain cell calls the same function with fixed values, so you can read the code that
#   the widget runs.
# * Each lesson ends with exercises. `hint(n)` gives a nudge, `check(n, answer)` tells you
#   whether you have it, and `answer(n)` shows a worked solution with why it is right.
# * Every lesson is also in Chinese: `python -m labkit lab --lang zh`. 每一课都有简体中文版：
#   `python -m labkit lab --lang zh`。

# %% [markdown]
# ## How the lessons check themselves
#
# Each lesson states its claims in code. `labkit.claim("sentence", condition)` prints
# `✔ sentence` when the condition holds on your machine. It returns nothing, so a cell that ends
# with a claim shows only that line.
#
# A claim about time runs the code in interleaved rounds: one at first, then more, up to a few,
# while the claim does not hold. It is judged on the fastest round, so a busy machine rarely
# fails it. If one still fails, it prints `✘` with the numbers
# and what this machine was doing, and the lesson goes on. Re-run that cell when the machine is
# quieter.

# %% [markdown]
# ## Is this machine ready?
#
# `labkit.doctor()` checks the platform, the Python and package versions, and the selector that
# `selectors` uses here. It reads the open-file limit: every socket is an open file, so this
# limit caps how many clients one process can hold. It reads the CPUs this kernel really gets (a
# hub's CPU quota included) and how busy the machine is. Last, it starts a real echo server,
# sends it 64 KiB and checks every byte that comes back.
#
# A limit of 1,024, common in containers and on hosted notebooks, still passes, with a note; a
# lower one fails. labkit raises its own limit as far as the system allows (the hard limit). If
# that is low too, the lessons that open many sockets run fewer clients, and say so. One usable
# CPU and a busy machine pass with a note too: the timed lessons then run slower.

# %%
import labkit

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

report = labkit.doctor()
labkit.claim("every check passed: this machine is ready for the course", report.ok,
             measured=str(report))

# %% [markdown]
# The whole report follows. Your numbers may differ from a classmate's, so the course's tests do
# not check this cell's output:

# %%
# NBVAL_IGNORE_OUTPUT
print(report)

# %% [markdown]
# ## A first server in the background
#
# `labkit.serve(name)` starts a teaching server in a child process and waits until it says it
# is listening. The `with` block guarantees it is stopped afterwards. Here is the server we start,
# one short module, exactly as it runs:

# %%
labkit.show("selectors_echo")

# %% [markdown]
# Now start it, connect, send a message and read the echo. TCP is a stream of bytes, not of
# messages. One `recv` may return only part of what was sent, so we read until we have as many
# bytes as we sent. And every call that could wait forever gets a timeout.

# %%
import socket

def echo(sock, message):
    """Send ``message``, then read until as many bytes came back (or the server closed)."""
    sock.sendall(message)
    echoed = b""
    while len(echoed) < len(message):
        chunk = sock.recv(4096)          # the socket's timeout ends a wait that lasts too long
        if not chunk:
            break
        echoed += chunk
    return echoed

message = "hello, asynclab! 你好".encode()

with labkit.serve("selectors_echo") as srv:
    labkit.claim("the server is running", srv.alive)
    with socket.create_connection((srv.host, srv.port), timeout=5) as sock:
        echoed = echo(sock, message)
    print("sent    :", message.decode())
    print("received:", echoed.decode())
    stats = srv.stats()
    print(f"the server counted {stats['connections']} connection and {stats['bytes_in']} bytes in")

labkit.claim("every byte came back, and the server counted one connection and those bytes",
             echoed == message and stats["connections"] == 1
             and stats["bytes_in"] == len(message), measured=f"{echoed!r}, {stats}")
labkit.claim("the server stopped at the end of the with block", not srv.alive)

# %% [markdown]
# The server's address and process id are on the handle (`srv.host`, `srv.port`, `srv.pid`).
# Its own output never mixes into your notebook; `srv.log()` returns it. If a server fails to
# start, `labkit.serve` raises an error that ends with the server's last log lines, so you see
# why. For example, asking a server to listen on every network interface is refused, because
# this machine is shared:

# %%
try:
    labkit.serve("selectors_echo", host="0.0.0.0").stop()   # stop it, should it ever start
    refusal = None
except labkit.ServerStartError as err:
    refusal = str(err).splitlines()[-1]
print(refusal)
labkit.claim("the server refused to listen on every interface",
             refusal is not None and refusal.startswith("refusing to bind '0.0.0.0'"))

# %% [markdown]
# A server also stops when the process that started it dies without any chance to clean up, as a
# crashed kernel does. The server reads a pipe from that process. When the process dies, the
# operating system closes the pipe.
#
# Here a child Python process stands in for the kernel. It starts an echo server and tells us its
# port. Then we kill it with `SIGKILL`, which runs none of its code, and watch the port:

# %%
import signal
import subprocess
import sys
import time

kernel = subprocess.Popen(                     # a stand-in for a notebook kernel
    [sys.executable, "-c", "import labkit, time\n"
     "srv = labkit.serve('selectors_echo')\n"
     "print(srv.port, flush=True)\n"
     "time.sleep(60)"],
    stdout=subprocess.PIPE, text=True)
port = int(kernel.stdout.readline())

def answers(port):
    """True if something accepts connections on this port of 127.0.0.1."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False

labkit.claim("the stand-in kernel's server answers", answers(port))
kernel.send_signal(signal.SIGKILL)             # a crash: nothing in the kernel cleans up
kernel.wait()
kernel.stdout.close()
deadline = time.monotonic() + 10
while answers(port) and time.monotonic() < deadline:
    time.sleep(0.05)                           # the server needs a moment to notice and exit
labkit.claim("after the kernel was killed, its server is gone", not answers(port))

# %% [markdown]
# ## Every socket is an open file
#
# The operating system gives each process a limit on open files, and every socket counts as one.
# Here we hold 2,000 connections to the echo server at once, and send a different message on
# each. We count this process's open files (`/dev/fd` lists them) before, during and after.
#
# If 2,000 do not fit under this machine's limit, `labkit.fit_clients` says so in one line. It
# then picks a number that fits. The lessons that open many sockets all do that.

# %%
import os

def open_files():
    return len(os.listdir("/dev/fd"))    # one entry per open file of this process

n_clients = labkit.fit_clients(2_000)
print("connecting the clients ...")
with labkit.serve("selectors_echo") as srv:
    before = open_files()
    clients = [socket.create_connection(srv.address, timeout=5) for _ in range(n_clients)]
    during = open_files()
    answers = [echo(sock, f"I am client {i}".encode()) for i, sock in enumerate(clients)]
    for sock in clients:
        sock.close()
    after = open_files()
labkit.claim("each connection was one more open file", during - before == n_clients,
             measured=f"{during - before} more files for {n_clients} connections")
labkit.claim("each client got its own message back",
             answers == [f"I am client {i}".encode() for i in range(n_clients)])
labkit.claim("closing them gave every file back", after == before,
             measured=f"{before} files before, {after} after")
# %% [markdown]
# ## Summary
#
# * `labkit.doctor()` tells you whether the machine is ready, and why not.
# * `with labkit.serve(name) as srv:` runs a teaching server on `127.0.0.1` at `srv.port`
#   and always stops it.
# * TCP delivers bytes, not messages: read until you have what you expect, and use timeouts.
# * Every socket is an open file; the open-file limit caps how many clients a process holds.
#
# **Next:** lesson 01, coroutines built from plain generators.
