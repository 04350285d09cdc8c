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
(``accept_paused``) while the next client waits in the listen backlog.

    python -m labkit.servers.selectors_echo --port 0 [--wait-writable] [--count-calls]
"""

import selectors

from labkit import accept_policy, launch
from labkit.serving import CHUNK, HIGH_WATER, counts, hang_up

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
                accept(sel, listener)
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


def accept(sel, listener):
    conn = door.accept(listener, lambda idle: close_idle(sel, idle))  # ready: does not block
    if conn == accept_policy.PAUSED:  # no room: stop watching the listener a moment, while
        sel.unregister(listener)  # the next clients wait in the kernel's listen backlog
    elif conn is not None:  # (None: the client gave up, or another process took it)
        conn.setblocking(False)
        sel.register(conn, READ, data=Client(conn))
        counts["connections"] += 1


def receive(sel, client):
    try:
        data = client.conn.recv(CHUNK)  # readable: returns at once
    except BlockingIOError:  # nothing after all (another process took it, say)
        return
    counts["bytes_in"] += len(data)
    client.reading = bool(data)  # b"": the client closed its side
    queued = bool(client.outgoing)
    client.outgoing += data  # what send() cannot take yet goes when the selector says writable
    if data and send_at_once and not queued:  # nothing waits to go first: send now
        send_some(sel, client)
    else:
        update_interest(sel, client)


def send_some(sel, client):
    try:
        sent = client.conn.send(client.outgoing)  # non-blocking: takes what fits, maybe less
    except BlockingIOError:  # the kernel's buffer is full: wait until writable
        sent = 0
    counts["bytes_out"] += sent
    del client.outgoing[:sent]  # keep exactly what was not sent yet
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
