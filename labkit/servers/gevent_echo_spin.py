"""BROKEN ON PURPOSE: gevent_echo with a classic bug, for lesson 06.

The handler never checks for ``b""``. When a client closes its side, ``recv`` returns ``b""``
at once, every time, forever: the greenlet spins, never waits, and burns a whole CPU core
long after the client is gone. (The fix, in gevent_echo: ``if not data: return``.)

    python -m labkit.servers.gevent_echo_spin --port 0
"""

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402

from labkit import launch  # noqa: E402


# gevent_echo_hang is this file less two lines in handle, on purpose: lesson 06 sets the two
# side by side so that the difference, gevent.sleep(0), stands out.
def serve(listener, args):
    while True:
        conn, _ = listener.accept()
        launch.counters.add(connections=1)
        gevent.spawn(handle, conn)


def handle(conn):
    try:
        while True:
            data = conn.recv(65536)  # after the client closes: b"", immediately
            conn.sendall(data)  # BUG: no `if not data: break` before this
            launch.counters.add(loops=1)
            gevent.sleep(0)  # let other greenlets run (it still never rests)
    except OSError:
        conn.close()


if __name__ == "__main__":
    launch.run(serve, __doc__)
