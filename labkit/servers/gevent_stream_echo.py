"""An echo server on ``gevent.server.StreamServer``, with a ``Pool`` to cap concurrency.

StreamServer does the accept loop and spawns ``handle(socket, address)`` for each client. With
``--pool n`` it spawns them in a ``Pool(n)``: at most n handlers run at once, and the next
client waits, unanswered, in the listen backlog until one finishes. That protects a server from
more *work* than it can do (CPU, a database). But an echo client that is connected and silent
holds its slot until it closes or ``--client-timeout`` drops it: with 1,000 such clients, the
1,001st waits that long. So by default (``--pool 0``) there is no cap: a waiting socket costs
gevent a few KiB, not a thread, and the open-file limit is the only limit.

StreamServer also survives running out of descriptors (EMFILE): when ``accept`` fails it stops
accepting for 10 ms, doubling up to 1 s while it keeps failing, and logs each failure. We keep
it from getting there: clients come in through a ``Door`` (labkit/accept_policy.py) mixed into
StreamServer, which keeps descriptors spare, closes the client idle longest to make room, or
stays shut a moment. A client silent (or not reading) for ``--client-timeout`` seconds is
dropped, by one greenlet that looks at every client a few times per timeout (a timeout on each
``recv`` would start and stop a timer for every message).

    python -m labkit.servers.gevent_stream_echo --port 0 [--pool 100]
"""

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from labkit import accept_policy, launch  # noqa: E402

counts = launch.counters.for_this_thread()  # every greenlet runs in this one thread
unheard = {}  # client socket -> looks by drop_silent since it last sent us something
LOOKS = 4  # drop_silent looks this many times per timeout: a client goes within 1.25 timeouts
echoing = set()  # clients whose echo is being sent: never closed to make room


# handle and drop_silent stand again in gevent_echo, on purpose: lesson 06 shows each server
# whole, so a student reads one file and sees all it does.
def handle(conn, address):
    unheard[conn] = 0
    counts["connections"] += 1
    launch.counters.peak(most_active=len(unheard))  # the most handlers ever running at once
    try:
        while data := conn.recv(65536):  # b"": the client closed
            unheard[conn] = 0
            counts["bytes_in"] += len(data)
            echoing.add(conn)
            conn.sendall(data)
            echoing.discard(conn)
            counts["bytes_out"] += len(data)
    except OSError:  # reset; or closed by drop_silent or the door while we waited
        counts["errors"] += 1
    finally:
        del unheard[conn]
        echoing.discard(conn)
        conn.close()


def drop_silent(timeout):
    """Close every client we have not heard from for ``timeout`` seconds. Its handler, waiting
    in ``recv`` or ``sendall``, gets an OSError and ends."""
    while True:
        gevent.sleep(timeout / LOOKS)
        for conn, looks in list(unheard.items()):
            if looks >= LOOKS:
                conn.close()
            else:
                unheard[conn] = looks + 1


class EchoServer(accept_policy.AcceptsThroughDoor, StreamServer):
    def close_idle(self, conn):
        """The door's way to make room: close this client unless its echo is being sent.
        Its handler, waiting in ``recv``, gets an OSError and ends."""
        if conn in echoing:
            return False
        conn.close()
        return True


def serve(listener, args):
    gevent.spawn(drop_silent, args.client_timeout)
    spawn = Pool(args.pool) if args.pool else "default"  # "default": a greenlet each, no cap
    EchoServer(listener, handle, spawn=spawn).serve_forever()


def add_arguments(p):
    p.add_argument(
        "--pool", type=int, default=0, help="most clients served at once (0: no cap, the default)"
    )


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
