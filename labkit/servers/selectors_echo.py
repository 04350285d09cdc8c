"""An echo server on ``selectors.DefaultSelector`` (epoll on Linux, kqueue on macOS).

Each client's state lives in ``key.data``. We send the echo right after the ``recv`` that
brought it: the kernel's send buffer almost always has room, so asking the selector first
would cost a wait and two ``modify`` calls (each a system call) for nothing. Only when
``send`` cannot take everything do we ask for EVENT_WRITE, until the rest has gone: this is
what asyncio's transports do. ``--wait-writable`` is the slower way, kept to compare: it asks
the selector before every send.

We stop reading a client that owes us ``HIGH_WATER`` bytes and send the rest of the echo to a
client that closed its side. Clients come in through a ``Door`` (labkit/accept_policy.py): near
the open-file limit it closes the client idle longest (``evicted_idle``), or stays shut a moment
(``accept_paused``) while the next client waits in the listen backlog. ``recv_now``,
``send_now`` and ``accept_ready`` (labkit/serving.py) are one call each, which counts its bytes.

    python -m labkit.servers.selectors_echo --port 0 [--wait-writable] [--count-calls]
"""

import selectors

from labkit import accept_policy, launch
from labkit.serving import HIGH_WATER, accept_ready, hang_up, recv_now, send_now

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
door = accept_policy.Door()  # lets a client in only while descriptors are to spare
send_at_once = True  # False with --wait-writable: wait for EVENT_WRITE before each send


class Client:
    """What the server remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.outgoing = bytearray()  # echoed bytes the client has not taken yet
        self.reading = True  # False once the client closed its sending side
        self.events = READ  # what the selector watches this socket for


def serve(listener, args):
    global send_at_once
    send_at_once = not args.wait_writable
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, READ, data=None)
    while True:
        for key, events in sel.select(door.timeout()):  # blocks until something is ready
            client = key.data
            if client is None:  # the listener: a client is waiting
                if conn := accept_ready(sel, listener, door, lambda idle: close_idle(sel, idle)):
                    sel.register(conn, READ, data=Client(conn))
                continue
            try:
                if events & READ and client.conn.fileno() != -1:  # (not closed to make room)
                    receive(sel, client)
                if events & WRITE and client.conn.fileno() != -1:  # (not closed just now)
                    send_some(sel, client)
            except OSError:  # reset, or broken some other way
                close(sel, client, error=True)
        if door.over():  # the door was shut a moment: watch the listener again
            sel.register(listener, READ, data=None)


def receive(sel, client):
    data = recv_now(client.conn)  # readable: returns at once
    if data is None:
        return
    client.reading = bool(data)  # b"": the client closed its side
    if data and send_at_once and not client.outgoing:  # nothing queued to go first: send now
        sent = send_now(client.conn, data)
        if sent == len(data):
            return  # all sent, the usual case: nothing changes
        data = data[sent:]
    client.outgoing += data  # the rest goes when the selector says writable
    update_interest(sel, client)


def send_some(sel, client):
    del client.outgoing[: send_now(client.conn, client.outgoing)]
    update_interest(sel, client)


def update_interest(sel, client):
    """Write interest only while bytes wait; read interest only while the backlog is small.
    A client that closed its side and has all its echo is done. ``modify`` is a system call:
    only when the interest changes."""
    reading = client.reading and len(client.outgoing) < HIGH_WATER
    wanted = (READ if reading else 0) | (WRITE if client.outgoing else 0)
    if not wanted:
        close(sel, client)
    elif wanted != client.events:
        sel.modify(client.conn, wanted, data=client)
        client.events = wanted


def close_idle(sel, conn):
    """The door's way to make room: close this client, unless we still owe it an echo."""
    client = sel.get_key(conn).data
    if client.outgoing:
        return False
    close(sel, client)
    return True


def close(sel, client, error=False):
    sel.unregister(client.conn)
    hang_up(client.conn, door, error)


def add_arguments(p):
    p.add_argument(
        "--wait-writable",
        action="store_true",
        help="wait for EVENT_WRITE before every send (slower: to compare)",
    )


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
