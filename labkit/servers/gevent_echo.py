"""An echo server on gevent: plain blocking-style code, one greenlet per client.

After ``monkey.patch_all()`` the standard ``socket`` module is gevent's: ``accept`` and ``recv``
look blocking, but each one switches to gevent's hub while it waits, and the hub runs other
greenlets. One thread serves every client. A client silent (or not reading) for
``--client-timeout`` seconds is dropped; when out of descriptors (EMFILE) the accept loop
pauses for a moment (``accept_paused``) while the other greenlets go on.

    python -m labkit.servers.gevent_echo --port 0
"""

from gevent import monkey

monkey.patch_all()  # first: launch's listener and every socket after it are gevent sockets

import gevent  # noqa: E402

from labkit import launch  # noqa: E402


def serve(listener, args):
    while True:
        conn = launch.accept_waiting(listener)  # waits cooperatively: other greenlets run
        launch.counters.add(connections=1)
        gevent.spawn(handle, conn, args.client_timeout)


def handle(conn, timeout):
    conn.settimeout(timeout)
    with conn:
        try:
            while True:
                data = conn.recv(65536)  # switches to the hub until data arrives
                if not data:  # the client closed: stop, don't spin on b""
                    return
                launch.counters.add(bytes_in=len(data))
                conn.sendall(data)
                launch.counters.add(bytes_out=len(data))
        except OSError:
            launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)
