"""An echo server on ``gevent.server.StreamServer`` with a ``Pool`` capping concurrency.

StreamServer does the accept loop and spawns ``handle(socket, address)`` for each client. With
``spawn=Pool(n)`` at most n handlers run at once; the next client waits (in the listen backlog)
until one finishes. That protects a server from more work than it can do.

StreamServer also survives running out of descriptors (EMFILE): when ``accept`` fails it stops
accepting for 10 ms, doubling up to 1 s while it keeps failing, and logs each failure. We only
count those (``accept_paused``). A client silent for ``--client-timeout`` seconds is dropped.

    python -m labkit.servers.gevent_stream_echo --port 0 --pool 100
"""

from gevent import monkey

monkey.patch_all()

from gevent.pool import Pool  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from labkit import launch  # noqa: E402

active = 0
client_timeout = 30.0  # set from --client-timeout: a silent client must not hold a slot forever


def handle(conn, address):
    global active
    active += 1
    conn.settimeout(client_timeout)
    launch.counters.add(connections=1)
    launch.counters.peak(most_active=active)  # the most handlers ever running at once
    try:
        while data := conn.recv(65536):  # b"": the client closed
            launch.counters.add(bytes_in=len(data))
            conn.sendall(data)
            launch.counters.add(bytes_out=len(data))
    except OSError:
        launch.counters.add(errors=1)
    finally:
        active -= 1
        conn.close()


class CountingStreamServer(launch.CountsAcceptPauses, StreamServer):
    """StreamServer, counting the accepts that failed when out of descriptors."""


def serve(listener, args):
    global client_timeout
    client_timeout = args.client_timeout
    server = CountingStreamServer(listener, handle, spawn=Pool(args.pool))
    server.serve_forever()


def add_arguments(p):
    p.add_argument("--pool", type=int, default=1000, help="most clients served at once")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
