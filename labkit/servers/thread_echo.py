"""An echo server with one OS thread per client.

The accept loop hands each connection to a new thread, where blocking ``recv``/``sendall``
only block that thread. Simple, but every client costs a thread (stack, scheduling). A client
silent (or not reading) for ``--client-timeout`` seconds is dropped; when the process is out of
descriptors (EMFILE) or threads, new clients wait or are turned away, and the others go on.

The timeout is the kernel's (``SO_RCVTIMEO``/``SO_SNDTIMEO``): with ``settimeout`` Python would
call ``poll()`` before every ``recv`` and ``send``, two more system calls per echo.

With ``--delay`` it stands in for a slow service (a database, a far-away web site): each piece
it receives is echoed after that many seconds, and one client's wait never delays another's.

    python -m labkit.servers.thread_echo --port 0 [--delay 0.1]
"""

import socket
import struct
import threading
import time

from labkit import launch


def serve(listener, args):
    while True:
        conn = launch.accept_waiting(listener)  # blocks until a client connects
        launch.counters.add(connections=1)
        kernel_timeout(conn, args.client_timeout)
        try:
            threading.Thread(target=handle, args=(conn, args.delay), daemon=True).start()
        except RuntimeError:  # "can't start new thread": turn this one away
            launch.counters.add(refused=1)
            conn.close()


def kernel_timeout(conn, seconds):
    """A blocking socket whose recv and send fail (EAGAIN) after waiting ``seconds``."""
    conn.setblocking(True)
    wait = struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))  # a struct timeval
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, wait)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, wait)


def handle(conn, delay):
    counts = launch.counters.for_this_thread()  # this thread's own: no lock, nearly free
    with conn:
        try:
            while data := conn.recv(65536):  # blocks this thread only, up to the timeout
                counts["bytes_in"] += len(data)
                if delay:
                    time.sleep(delay)  # the "slow service"
                conn.sendall(data)
                counts["bytes_out"] += len(data)
        except OSError:  # reset; or the timeout (BlockingIOError: EAGAIN)
            counts["errors"] += 1


def add_arguments(p):
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each echo")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
