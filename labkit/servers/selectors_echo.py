"""An echo server on ``selectors.DefaultSelector`` (epoll on Linux, kqueue on macOS).

Each client's state lives in ``key.data``; we ask for EVENT_WRITE only while that client has
bytes waiting, so an idle socket is never reported writable over and over. We stop reading a
client that owes us ``HIGH_WATER`` bytes, send the rest of the echo to a client that closed its
side, and stop accepting for a moment when out of descriptors (EMFILE: ``accept_paused``).

    python -m labkit.servers.selectors_echo --port 0
"""

import selectors

from labkit import launch

HIGH_WATER = 1 << 20  # stop reading from a client that is this far behind in reading our echo
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Client:
    """What the server remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.outgoing = bytearray()  # echoed bytes the client has not taken yet
        self.reading = True  # False once the client closed its sending side


def serve(listener, args):
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, READ, data=None)
    pause = launch.AcceptPause()  # out of descriptors: stop accepting a moment
    while True:
        for key, events in sel.select(pause.timeout()):  # blocks until something is ready
            if key.data is None:
                if not accept(sel, listener):
                    sel.unregister(listener)  # out of descriptors: stop watching it
                    pause.begin()
                continue
            client = key.data
            if events & READ:
                receive(sel, client)
            if events & WRITE and client.conn.fileno() != -1:
                send_some(sel, client)
        if pause.over():
            sel.register(listener, READ, data=None)


def accept(sel, listener):
    """Accept one client. False when out of descriptors: the caller pauses accepting."""
    conn = launch.accept(listener)  # ready, so this does not block
    if conn is None or conn == launch.PAUSED:  # the client gave up; out of descriptors
        return conn is None
    conn.setblocking(False)
    sel.register(conn, READ, data=Client(conn))
    launch.counters.add(connections=1)
    return True


def receive(sel, client):
    try:
        data = client.conn.recv(65536)  # readable: returns at once
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(sel, client, error=True)
    launch.counters.add(bytes_in=len(data))
    client.outgoing += data
    client.reading = bool(data)  # b"": the client closed its side
    update_interest(sel, client)


def send_some(sel, client):
    try:
        sent = client.conn.send(client.outgoing)  # writable: takes what fits, maybe not all
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(sel, client, error=True)
    del client.outgoing[:sent]
    launch.counters.add(bytes_out=sent)
    update_interest(sel, client)


def update_interest(sel, client):
    """Write interest only while bytes wait; read interest only while the backlog is small.
    A client that closed its side and has all its echo is done."""
    wanted = (READ if client.reading and len(client.outgoing) < HIGH_WATER else 0) | (
        WRITE if client.outgoing else 0
    )
    if not wanted:
        close(sel, client)
    elif sel.get_key(client.conn).events != wanted:
        sel.modify(client.conn, wanted, data=client)


def close(sel, client, error=False):
    sel.unregister(client.conn)
    client.conn.close()
    if error:
        launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)
