"""A peer for benchmarks/echo: a plain gevent ``StreamServer`` echo, as gevent's examples write it.

``StreamServer`` accepts and spawns one greenlet per client running ``echo(socket, address)``;
the socket it hands over is already gevent's, so nothing is monkey-patched (gevent's
``examples/echoserver.py`` reads lines through ``makefile``; we ``recv`` up to 64 KiB, as its
binary echo servers do). No pool, no counters, no timeouts. The plumbing (port 0, READY, dying
with the parent) is labkit's, so that ``benchmarks/echo.py`` starts it like our servers.

    python benchmarks/echo_peers/gevent_peer.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # labkit, from a plain checkout

import gevent.socket
from gevent.server import StreamServer

from labkit import launch


def echo(socket, address):
    while data := socket.recv(65536):
        socket.sendall(data)
    socket.close()


def serve(listener, args):
    # labkit binds a standard socket; StreamServer waits on a gevent one (given the standard
    # one, unpatched, it never accepts), so the same descriptor is handed over as gevent's.
    listener = gevent.socket.socket(fileno=listener.detach())
    StreamServer(listener, echo).serve_forever()


if __name__ == "__main__":
    launch.run(serve, __doc__)
