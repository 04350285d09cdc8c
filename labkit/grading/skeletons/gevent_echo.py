"""My echo server on gevent (lesson 12's capstone): every byte a client sends comes back.

It runs as it is, and fails some of the grader's checks: the TODOs say what is left to do.

    labkit.grade("my_server.py")        # in the notebook: the course's batteries
    python my_server.py --port 0        # by hand
"""

from gevent import monkey

monkey.patch_all()  # first: every socket after this is gevent's

import gevent  # noqa: E402

from labkit import launch  # noqa: E402


def serve(listener, args):
    while True:
        conn, _ = listener.accept()  # TODO: out of descriptors: OSError; pause
        gevent.spawn(handle, conn)  # one greenlet per client


def handle(conn):
    while True:
        data = conn.recv(65536)  # no bytes yet? it switches to the hub until some arrive
        # TODO: b"" means the client closed: stop (and close the socket).
        # TODO: a client that never reads blocks sendall forever
        #       (conn.settimeout(args.client_timeout)).
        conn.sendall(data)
        # TODO: a reset raises OSError in recv or in sendall: catch it, close this client quietly.


if __name__ == "__main__":
    launch.run(serve, __doc__)
