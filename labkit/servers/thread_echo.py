"""An echo server with one OS thread per client.

The accept loop hands each connection to a new thread, where blocking ``recv``/``sendall``
only block that thread. Simple, but every client costs a thread (stack, scheduling). A client
silent (or not reading) for ``--client-timeout`` seconds is dropped; when the process is out of
descriptors (EMFILE) or threads, new clients wait or are turned away, and the others go on.

With ``--delay`` it stands in for a slow service (a database, a far-away web site): each piece
it receives is echoed after that many seconds, and one client's wait never delays another's.

    python -m labkit.servers.thread_echo --port 0 [--delay 0.1]
"""

import threading
import time

from labkit import launch


def serve(listener, args):
    while True:
        conn = launch.accept_waiting(listener)  # blocks until a client connects
        launch.counters.add(connections=1)
        conn.settimeout(args.client_timeout)
        try:
            threading.Thread(target=handle, args=(conn, args.delay), daemon=True).start()
        except RuntimeError:  # "can't start new thread": turn this one away
            launch.counters.add(refused=1)
            conn.close()


def handle(conn, delay):
    with conn:
        try:
            while data := conn.recv(65536):  # blocks this thread only
                launch.counters.add(bytes_in=len(data))
                if delay:
                    time.sleep(delay)  # the "slow service"
                conn.sendall(data)
                launch.counters.add(bytes_out=len(data))
        except OSError:
            launch.counters.add(errors=1)


def add_arguments(p):
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each echo")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
