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

Each worker runs compute_selectors' loop without a pool: a WORK line burns in the worker that
read it. The parent serves no client: it forks the workers before READY (so they listen when
clients come), then waits for them (labkit/supervisor.py). Stopping the parent (SIGTERM) stops
them; each worker also watches its parent and exits within a quarter second when the parent is
gone, even by SIGKILL. A worker that dies is not replaced (gunicorn's master would fork a new
one). ``stats()`` gives the parent's view: ``workers`` (how many live) and ``worker1_pid``...;
the clients count how the work spread from the pid in every answer.
"""

import os
import signal
import socket
import traceback

from labkit import launch, supervisor
from labkit.child import watch_parent
from labkit.servers.compute_selectors import Server
from labkit.supervisor import say

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
workers: dict[int, int] = {}  # the parent's live workers: pid -> worker number
PARENT = os.getpid()  # a worker inherits this module, and must not do the parent's clean-up


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
    for number in range(1, args.workers + 1):
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            os.close(ready_r)
            worker(listener, args, PARENT, ready_w)
        workers[pid] = number
        launch.counters.add(workers=1)
        launch.counters.peak(**{f"worker{number}_pid": pid})
    os.close(ready_w)  # now only the workers hold it: EOF once each has written or died
    listening = supervisor.wait_until_ready(ready_r, args.workers)
    if listening < args.workers:
        raise OSError(f"only {listening} of {args.workers} workers started (see the log)")
    return listener


def serve(listener, args):
    """The parent's whole job once READY: wait for its workers, say when one dies."""
    supervisor.reap(workers, gone=lambda pid: launch.counters.add(workers=-1))
    stop_workers.exit_unless_stopping("no worker left: the server stops")


@supervisor.Stop
def stop_workers():
    """At stop, in the parent only (a worker inherits this clean-up too): SIGTERM every worker,
    SIGKILL any still there after a second."""
    if os.getpid() == PARENT:
        supervisor.stop(workers)


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


def serve_clients(listener):
    """compute_selectors' loop, without a pool: WORK burns here, and this worker's other
    clients wait meanwhile (the other workers' do not)."""
    Server(listener, pool=None).run()


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, binder=start)
