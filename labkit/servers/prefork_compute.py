"""Pre-fork: one parent, N worker processes, each running the same small selectors loop that
answers the compute protocol (``PING``/``WORK``, lesson 10). One event loop uses one core;
N processes can use N cores, and a CPU request in one worker leaves the others' clients alone.

    python -m labkit.servers.prefork_compute --workers 2 --balance shared
    python -m labkit.servers.prefork_compute --workers 2 --balance reuseport

Two ways for N processes to serve one port, and what the kernel does in each:

* ``shared``: the parent binds and listens once, then forks; every worker inherits that one
  listening socket, so there is ONE accept queue. Every idle worker waits in epoll on it; a new
  connection wakes the waiting workers (several may wake, one wins ``accept()``, the others find
  nothing: ``BlockingIOError``). A worker busy with CPU work is not waiting, so the idle ones
  take the new clients: the spread follows who is free, and may be very uneven.
* ``reuseport``: each worker binds its OWN socket to the same port with ``SO_REUSEPORT`` and
  listens: one accept queue per worker. The kernel picks a socket for each new connection by a
  hash of its addresses and ports, so over many client ports the spread is even, busy or not:
  a client hashed to a worker stuck in CPU work waits for it. The parent only holds the port
  (bound, not listening: ``launch.reserve_port``); a socket that does not listen gets nothing.

The parent serves no client: it forks the workers before READY (so they listen when clients
come), then waits for them. Stopping the parent (SIGTERM) stops them; each worker also watches
its parent and exits within a quarter second when the parent is gone, even by SIGKILL. A worker
that dies is not replaced (gunicorn's master would fork a new one). ``stats()`` gives the
parent's view: ``workers`` (how many live) and ``worker1_pid``...; the clients count how the
work spread from the pid in every answer.
"""

import os
import select
import selectors
import signal
import socket
import threading
import time
import traceback

from labkit import accept_policy, compute, launch
from labkit.child import exit_now, watch_parent

HIGH_WATER = 1 << 20  # stop reading from a client that is this far behind in reading answers
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
workers: dict[int, int] = {}  # the parent's live workers: pid -> worker number
stopping = threading.Event()  # set once the parent is stopping its workers
PARENT = os.getpid()  # a worker inherits this module, and must not do the parent's clean-up
door = accept_policy.Door()  # each worker's own: a client only while descriptors are to spare


def add_arguments(p):
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--balance",
        choices=("shared", "reuseport"),
        default="shared",
        help="shared: all accept on one socket; reuseport: one SO_REUSEPORT socket each",
    )


# == the parent ====================================================================================
def start(args):
    """Bind (or, for reuseport, only hold the port), fork the workers, wait until each listens."""
    if args.workers < 1:
        raise launch.SetupError("--workers must be at least 1")
    shared = args.balance == "shared"
    listener = launch.bind(args) if shared else launch.reserve_port(args)
    launch.at_stop(stop_workers)
    ready_r, ready_w = os.pipe()  # each worker writes one byte once it listens
    parent = os.getpid()
    for number in range(1, args.workers + 1):
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            os.close(ready_r)
            worker(listener, args, parent, ready_w)
        workers[pid] = number
        launch.counters.add(workers=1)
        launch.counters.peak(**{f"worker{number}_pid": pid})
    os.close(ready_w)  # now only the workers hold it: EOF once each has written or died
    listening = wait_for_workers(ready_r, args.workers)
    if listening < args.workers:
        raise OSError(f"only {listening} of {args.workers} workers started (see the log)")
    return listener


def wait_for_workers(ready_r, expected, timeout=10.0):
    got, deadline = 0, time.monotonic() + timeout
    while got < expected and select.select([ready_r], [], [], deadline - time.monotonic())[0]:
        chunk = os.read(ready_r, expected)  # readable: returns at once
        if not chunk:  # every worker wrote or died
            break
        got += len(chunk)
    os.close(ready_r)
    return got


def serve(listener, args):
    """The parent's whole job once READY: wait for its workers, say when one dies."""
    while workers:
        try:
            pid, status = os.wait()  # blocks until a worker exits
        except ChildProcessError:  # reaped by stop_workers meanwhile
            break
        if workers.pop(pid, None) is not None:
            launch.counters.add(workers=-1)
            say(f"worker {pid} exited: {describe(status)}")
    while stopping.is_set():  # we are being stopped: the thread doing it exits for us
        time.sleep(1)
    say("no worker left: the server stops")
    exit_now(1)


def say(text):
    """One line into the server's log in ONE write: the parent and its workers share that pipe,
    and a line written in pieces (as ``print`` does) could be cut by another's READY line."""
    os.write(1, f"{text}\n".encode())


def describe(status):
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def stop_workers():
    """At stop (in the parent only: a worker inherits this clean-up too): SIGTERM every worker,
    SIGKILL any still there after a second."""
    if os.getpid() != PARENT:
        return
    stopping.set()
    for sig, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 1.0)):
        for pid in list(workers):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                workers.pop(pid, None)
        deadline = time.monotonic() + grace
        while workers and time.monotonic() < deadline:
            for pid in list(workers):
                if reaped(pid):
                    workers.pop(pid, None)
            time.sleep(0.01)


def reaped(pid):
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:  # already reaped (by serve's wait)
        return True


# == a worker ======================================================================================
def worker(listener, args, parent, ready_w):
    """Runs in the forked child. fork() copied only the thread that called it: the parent's
    signal thread and lifeline are not here, and SIGTERM/SIGINT are still blocked (the mask is
    inherited). So: default actions back, unblocked (a stop kills the worker at once, even mid
    CPU work), and a thread of our own that exits when the parent is gone."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    watch_parent(parent)
    code = 0
    try:
        if args.balance == "reuseport":
            port = listener.getsockname()[1]
            listener.close()  # the parent's port holder: we listen on a socket of our own
            listener = socket.create_server(
                (args.host, port), family=listener.family, backlog=args.backlog, reuse_port=True
            )
        say(f"worker {os.getpid()} serving ({args.balance})")  # before READY, not amid it
        os.write(ready_w, b"1")
        os.close(ready_w)
        serve_clients(listener)
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)  # never the parent's clean-ups, never back into launch.run


class Client:
    """What a worker remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.incoming = bytearray()  # bytes of a request line not complete yet
        self.outgoing = bytearray()  # answers the client has not taken yet
        self.reading = True  # False once the client closed its side (or sent too long a line)


def serve_clients(listener):
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, READ, data=None)
    while True:
        for key, events in sel.select(door.timeout()):  # blocks until something is ready
            if key.data is None:
                if not accept(sel, listener):
                    sel.unregister(listener)  # the door is shut a moment
                continue
            client = key.data
            if events & READ and client.conn.fileno() != -1:  # (not closed to make room)
                receive(sel, client)
            if events & WRITE and client.conn.fileno() != -1:
                send_some(sel, client)
        if door.over():
            sel.register(listener, READ, data=None)


def accept(sel, listener):
    """Accept one client. False when the door pauses: the caller stops watching."""
    conn = door.accept(listener, lambda idle: close_idle(sel, idle))
    if conn is None or conn == accept_policy.PAUSED:  # None: another worker took it, or it left
        return conn is None
    conn.setblocking(False)
    sel.register(conn, READ, data=Client(conn))
    return True


def receive(sel, client):
    try:
        data = client.conn.recv(65536)  # readable: returns at once
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(sel, client)
    client.incoming += data
    client.reading = bool(data)  # b"": the client closed its side
    answer_lines(client)
    update_interest(sel, client)


def answer_lines(client):
    """Answer every complete line (a WORK line burns CPU right here: meanwhile this worker
    serves no one else); a line over MAX_LINE gets TOO_LONG, then the connection ends."""
    lines, too_long = compute.take_lines(client.incoming)
    for line in lines:
        client.outgoing += compute.answer(line, os.getpid())
    if too_long:
        client.outgoing += compute.TOO_LONG
        client.incoming.clear()
        client.reading = False  # send what we owe, then close


def send_some(sel, client):
    try:
        sent = client.conn.send(client.outgoing)  # writable: takes what fits, maybe not all
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(sel, client)
    del client.outgoing[:sent]
    update_interest(sel, client)


def update_interest(sel, client):
    """Write interest only while answers wait; read interest only while the backlog is small.
    A client that closed its side and has all its answers is done."""
    wanted = (READ if client.reading and len(client.outgoing) < HIGH_WATER else 0) | (
        WRITE if client.outgoing else 0
    )
    if not wanted:
        close(sel, client)
    elif sel.get_key(client.conn).events != wanted:
        sel.modify(client.conn, wanted, data=client)


def close_idle(sel, conn):
    """The door's way to make room: close a client with nothing asked and nothing owed."""
    client = sel.get_key(conn).data
    if client.incoming or client.outgoing:
        return False
    close(sel, client)
    return True


def close(sel, client):
    sel.unregister(client.conn)
    door.closed(client.conn)
    client.conn.close()


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, binder=start)
