"""Lesson 10's compute server (``labkit.compute``: PING, WORK) on gevent, one greenlet a client.

``--offload none``: a WORK request burns the CPU in its greenlet. A greenlet gives way only
where it waits (``recv``, ``sendall``, ``sleep``); pure-Python arithmetic never waits, so the
hub, and every other client, waits until the burn is over.
``--offload threads``: ``burn`` runs in the hub's thread pool, real OS threads. That is the
right tool for a blocking call that releases the GIL (a C library, a file read), not for this
one: ``burn`` holds the GIL, and the hub's thread gets it back only when the burning thread is
made to drop it, every ``sys.getswitchinterval()`` (5 ms). Each wake-up of the hub waits for
that, so the more clients, the longer the wait; and two WORKs take as long as one after the
other: the second core stays idle.
``--offload pool``: ``burn`` runs in a process pool (``--pool-size`` workers, each with its own
GIL); a thread of the hub's pool waits for the result, and the greenlet waits for that thread.
``--monitor``: gevent's monitor thread checks the hub every ``max_blocking_time`` (0.1 s); when
it has not run for that long, it prints the blocked greenlet's stack to the log (``burn`` in it).

Not monkey-patched: the process pool needs real threads and locks. The sockets are gevent's own
(``StreamServer``). A client silent for ``--client-timeout`` seconds is dropped; one that does
not read its replies blocks its own ``sendall`` (and is not read from) while others go on.
Clients come in through a ``Door`` (labkit/accept_policy.py): near the open-file limit it
closes the client idle longest between requests, or stays shut for a moment.

    python -m labkit.servers.compute_gevent --port 0 --offload pool --monitor
"""

import os

import gevent
from gevent.server import StreamServer

from labkit import compute, launch
from labkit.accept_policy import AcceptsThroughDoor


class ComputeServer(AcceptsThroughDoor, StreamServer):
    """One greenlet a client, running ``handle``. The door closes a client only between
    requests: its handler, waiting in recv, gets an OSError and ends."""

    def handle(self, conn, address):
        args = self.args
        launch.counters.add(connections=1)
        conn.settimeout(args.client_timeout)
        incoming = bytearray()  # the start of a line not yet complete
        try:
            while data := receive(self, conn, between_requests=not incoming):  # b"": it closed
                launch.counters.add(bytes_in=len(data))
                incoming += data
                lines, too_long = compute.take_lines(incoming)
                replies = b"".join(answer(line, args) for line in lines)
                if too_long:
                    replies += compute.TOO_LONG
                conn.sendall(replies)  # waits (this greenlet only) while the client is behind
                launch.counters.add(bytes_out=len(replies))
                if too_long:
                    return
        except OSError:  # reset, or silent for too long
            launch.counters.add(errors=1)
        finally:
            conn.close()


def receive(server, conn, between_requests):
    with server.between_requests(conn, between_requests):  # the door may close it meanwhile
        return conn.recv(65536)


def answer(line, args):
    request = compute.parse(line)
    if request[0] != "WORK" or args.offload == "none":
        return compute.answer(line, os.getpid())  # WORK here: the hub waits for it
    threads = gevent.get_hub().threadpool  # real threads; this greenlet waits, others run
    if args.offload == "threads":
        threads.apply(compute.burn, (int(request[1]),))
    else:
        threads.apply(args.pool.submit(compute.burn, int(request[1])).result)
    return compute.reply(request, os.getpid())


def serve(listener, args):
    listener.setblocking(False)  # StreamServer accepts when the hub says it is ready
    server = ComputeServer(listener)
    server.args = args
    server.serve_forever()


def setup(args):
    """Before the hub exists (the monitor is read when it starts) and before any socket."""
    if args.monitor:
        gevent.config.monitor_thread = True
        gevent.config.max_blocking_time = 0.1
    return compute.start_pool(args)


def add_arguments(p):
    p.add_argument("--offload", choices=["none", "threads", "pool"], default="none")
    p.add_argument("--pool-size", type=int, default=2, help="worker processes with --offload pool")
    p.add_argument("--monitor", action="store_true", help="report a blocked hub, with its stack")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, setup=setup)
