"""An echo server with one OS thread per client.

The accept loop hands each connection to a new thread, where blocking ``recv``/``sendall``
only block that thread. Simple, but every client costs a thread (stack, scheduling). A client
silent (or not reading) for ``--client-timeout`` seconds is dropped. Clients come in through a
``Door`` (labkit/accept_policy.py): near the open-file limit it closes the client idle longest,
or new clients wait in the listen backlog; out of threads they are turned away.

The timeout is the kernel's (``SO_RCVTIMEO``/``SO_SNDTIMEO``): with ``settimeout`` Python would
call ``poll()`` before every ``recv`` and ``send``, two more system calls per echo.

With ``--delay`` it stands in for a slow service (a database, a far-away web site): each piece
it receives is echoed after that many seconds, and one client's wait never delays another's.

    python -m labkit.servers.thread_echo --port 0 [--delay 0.1]
"""

import contextlib
import socket
import struct
import threading
import time

from labkit import accept_policy, launch

door = accept_policy.Door()  # lets a client in only while descriptors are to spare
echoing = set()  # clients whose echo is on its way: never closed to make room


def serve(listener, args):
    while True:
        conn = door.accept_waiting(listener, close_idle)  # blocks until a client connects
        launch.counters.add(connections=1)
        kernel_timeout(conn, args.client_timeout)
        try:
            threading.Thread(target=handle, args=(conn, args.delay), daemon=True).start()
        except RuntimeError:  # "can't start new thread": turn this one away
            launch.counters.add(refused=1)
            door.closed(conn)
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
                echoing.add(conn)
                counts["bytes_in"] += len(data)
                if delay:
                    time.sleep(delay)  # the "slow service"
                conn.sendall(data)
                counts["bytes_out"] += len(data)
                echoing.discard(conn)
        except OSError:  # reset; or the timeout (BlockingIOError: EAGAIN)
            counts["errors"] += 1
        finally:
            echoing.discard(conn)
            door.closed(conn)


def close_idle(conn):
    """The door's way to make room: end this client unless its echo is on its way. Its thread,
    waiting in ``recv``, reads an end of stream and closes the socket; the door has also
    checked that the kernel received nothing from it for a while (its thread is not between
    ``recv`` and ``echoing.add``)."""
    if conn in echoing:
        return False
    with contextlib.suppress(OSError):  # (already reset by the client: its thread ends anyway)
        conn.shutdown(socket.SHUT_RDWR)
    return True


def add_arguments(p):
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each echo")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
