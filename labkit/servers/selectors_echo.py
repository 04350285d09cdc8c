"""An echo server on ``selectors.DefaultSelector`` (epoll on Linux, kqueue on macOS).

Each client's state lives in ``key.data``; we ask for EVENT_WRITE only while that client has
bytes waiting, so an idle socket is never reported writable over and over.

    python -m labkit.servers.selectors_echo --port 0
"""
import selectors

from labkit.servers import launch

HIGH_WATER = 1 << 20   # stop reading from a client that is this far behind in reading our echo
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Client:
    """What the server remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.outgoing = bytearray()   # echoed bytes the client has not taken yet


def serve(listener, args):
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, READ, data=None)
    while True:
        for key, events in sel.select():             # blocks until something is ready
            if key.data is None:
                accept(sel, listener)
                continue
            client = key.data
            if events & READ:
                receive(sel, client)
            if events & WRITE and client.conn.fileno() != -1:
                send_some(sel, client)


def accept(sel, listener):
    try:
        conn, _ = listener.accept()                  # ready, so this does not block
    except BlockingIOError:
        return
    conn.setblocking(False)
    sel.register(conn, READ, data=Client(conn))
    launch.counters.add(connections=1)


def receive(sel, client):
    try:
        data = client.conn.recv(65536)               # readable: returns at once
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(sel, client, error=True)
    if not data:                                     # peer closed
        return close(sel, client)
    launch.counters.add(bytes_in=len(data))
    client.outgoing += data
    update_interest(sel, client)


def send_some(sel, client):
    try:
        sent = client.conn.send(client.outgoing)     # writable: takes what fits, maybe not all
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(sel, client, error=True)
    del client.outgoing[:sent]
    launch.counters.add(bytes_out=sent)
    update_interest(sel, client)


def update_interest(sel, client):
    """Write interest only while bytes wait; read interest only while the backlog is small."""
    wanted = (READ if len(client.outgoing) < HIGH_WATER else 0) | (WRITE if client.outgoing else 0)
    if sel.get_key(client.conn).events != wanted:
        sel.modify(client.conn, wanted, data=client)


def close(sel, client, error=False):
    sel.unregister(client.conn)
    client.conn.close()
    if error:
        launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)

