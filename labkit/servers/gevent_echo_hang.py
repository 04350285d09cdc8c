"""BROKEN ON PURPOSE: the first version of gevent_echo, for lesson 06. It hangs every client.

The handler never checks for ``b""``. When a client closes its side, ``recv`` returns ``b""``
at once, every time, and gevent's ``sendall(b"")`` has nothing to send: neither call has to
wait, so neither switches to the hub. That greenlet loops forever and no other greenlet ever
runs again: the server accepts no one and answers no one, while it burns a CPU core.
(gevent_echo_spin adds ``gevent.sleep(0)``, which hides the hang; gevent_echo fixes it.)

    python -m labkit.servers.gevent_echo_hang --port 0
"""

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402

from labkit import launch  # noqa: E402


# gevent_echo_spin is this file plus two lines in handle, on purpose: lesson 06 sets the two
# side by side so that the difference, gevent.sleep(0), stands out.
def serve(listener, args):
    while True:
        conn, _ = listener.accept()
        launch.counters.add(connections=1)
        gevent.spawn(handle, conn)


def handle(conn):
    try:
        while True:
            data = conn.recv(65536)  # after the client closes: b"", without waiting
            conn.sendall(data)  # BUG: no `if not data: break` before this
    except OSError:
        conn.close()


if __name__ == "__main__":
    launch.run(serve, __doc__)
