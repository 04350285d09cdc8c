"""An echo server on gevent: plain blocking-style code, one greenlet per client.

After ``monkey.patch_all()`` the standard ``socket`` module is gevent's: ``accept`` and ``recv``
look blocking, but each one switches to gevent's hub while it waits, and the hub runs other
greenlets. One thread serves every client. Clients come in through a ``Door``
(labkit/accept_policy.py): near the open-file limit it closes the client idle longest
(``evicted_idle``), or the accept loop pauses a moment (``accept_paused``) while the other
greenlets go on.

A client silent (or not reading) for ``--client-timeout`` seconds is dropped. Not with a
timeout on each ``recv``: gevent would start and stop a timer for every message. One greenlet,
``drop_silent``, looks at every client a few times per timeout instead; each message only
resets its client's count of looks.

    python -m labkit.servers.gevent_echo --port 0
"""

from gevent import monkey

monkey.patch_all()  # first: launch's listener and every socket after it are gevent sockets

import gevent  # noqa: E402

from labkit import accept_policy, launch  # noqa: E402

counts = launch.counters.for_this_thread()  # every greenlet runs in this one thread
unheard = {}  # client socket -> looks by drop_silent since it last sent us something
LOOKS = 4  # drop_silent looks this many times per timeout: a client goes within 1.25 timeouts
door = accept_policy.Door()  # lets a client in only while descriptors are to spare
echoing = set()  # clients whose echo is being sent: never closed to make room


def serve(listener, args):
    gevent.spawn(drop_silent, args.client_timeout)
    while True:
        conn = door.accept_waiting(listener, close_idle)  # waits cooperatively
        counts["connections"] += 1
        gevent.spawn(handle, conn)


# handle and drop_silent stand again in gevent_stream_echo, on purpose: lesson 06 shows each
# server whole, so a student reads one file and sees all it does.
def handle(conn):
    unheard[conn] = 0
    with conn:
        try:
            while data := conn.recv(65536):  # switches to the hub until data arrives
                unheard[conn] = 0  # cheaper than a timer per recv
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
            door.closed(conn)


def close_idle(conn):
    """The door's way to make room: close this client unless its echo is being sent. Its
    handler, waiting in ``recv``, gets an OSError and ends."""
    if conn in echoing:
        return False
    conn.close()
    return True


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


if __name__ == "__main__":
    launch.run(serve, __doc__)
