"""An echo server on ``select.poll``: like select_echo, without select's 1024-descriptor limit.

``poll`` takes a list of (descriptor, events) registered once, instead of three lists rebuilt
on every call, and has no upper limit on descriptor numbers. It still hands the kernel the
whole list on every call, so its cost grows with the number of sockets watched. Two things
keep each pass cheap with thousands of sockets:

* We send right after the ``recv``, and ask for POLLOUT only while ``send`` could not take
  everything: a changed list must be copied again (all of it) before the next ``poll``.
* A readable listener means a queue of clients: we accept up to ``ACCEPT_BURST`` of them per
  pass, not one. With 19,000 sockets a pass took milliseconds in our benchmark runs (appendix
  13's idle run); one accept per pass would let the kernel's listen queue overflow (and drop
  clients) while thousands connect at once.

Like select_echo it stops reading a client that owes us more than ``HIGH_WATER`` bytes, sends
the rest of the echo to a client that closed its side, and lets clients in through a ``Door``
(labkit/accept_policy.py): near the open-file limit it closes the client idle longest, or
stays shut for a moment.

    python -m labkit.servers.poll_echo --port 0
"""

import select

from labkit import accept_policy, launch
from labkit.serving import CHUNK, HIGH_WATER, counts, hang_up

ACCEPT_BURST = 256  # clients accepted per pass at most, so the others still get their turn
READ, WRITE = select.POLLIN, select.POLLOUT
BROKEN = select.POLLHUP | select.POLLERR | select.POLLNVAL
door = accept_policy.Door()  # lets a client in only while descriptors are to spare


class Client:
    """What the server remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.outgoing = bytearray()  # echoed bytes the client has not taken yet
        self.reading = True  # False once the client closed its sending side
        self.events = READ  # what poll watches this socket for


def serve(listener, args):
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, READ)
    clients = {}  # fd -> Client
    while True:
        wait = door.timeout()
        for fd, events in poller.poll(None if wait is None else wait * 1000):  # ms; blocks
            if fd == listener.fileno():
                if not accept_some(poller, listener, clients):
                    poller.unregister(listener)  # the door is shut a moment: stop watching
            elif fd in clients:  # (not one closed earlier this round)
                serve_client(poller, clients, fd, events)
        if door.over():
            poller.register(listener, READ)


def accept_some(poller, listener, clients):
    """Accept the clients waiting, up to ACCEPT_BURST. False when the door pauses."""
    for _ in range(ACCEPT_BURST):
        conn = door.accept(listener, lambda idle: close_idle(poller, clients, idle.fileno()))
        if conn is None or conn == accept_policy.PAUSED:  # the queue is empty; door shut
            return conn is None
        conn.setblocking(False)
        clients[conn.fileno()] = Client(conn)
        poller.register(conn, READ)
        counts["connections"] += 1
    return True


def serve_client(poller, clients, fd, events):
    client = clients[fd]
    try:
        if events & (READ | BROKEN) and client.reading:  # broken: recv or send says why
            receive(client)
        elif events & (WRITE | BROKEN) and client.outgoing:
            send_some(client)
    except OSError:  # reset, or broken some other way
        return close(poller, clients, fd, error=True)
    if not client.reading and not client.outgoing:  # closed, and it has all its echo
        return close(poller, clients, fd)
    reading = client.reading and len(client.outgoing) < HIGH_WATER
    wanted = (READ if reading else 0) | (WRITE if client.outgoing else 0)
    if wanted != client.events:  # poll copies its whole list again after a change
        poller.modify(client.conn, wanted)
        client.events = wanted


def receive(client):
    try:
        data = client.conn.recv(CHUNK)  # ready (or broken): returns at once
    except BlockingIOError:  # nothing after all (another process took it, say)
        return
    counts["bytes_in"] += len(data)
    client.reading = bool(data)  # b"": the client closed its side
    queued = bool(client.outgoing)
    client.outgoing += data  # what send() cannot take yet waits for POLLOUT
    if data and not queued:  # nothing waits to go first: send at once, no need to ask poll
        send_some(client)


def send_some(client):
    try:
        sent = client.conn.send(client.outgoing)  # non-blocking: takes what fits, maybe less
    except BlockingIOError:  # the kernel's buffer is full: POLLOUT says when to try again
        return
    counts["bytes_out"] += sent
    del client.outgoing[:sent]  # keep exactly what was not sent yet


def close_idle(poller, clients, fd):  # and close: as in epoll_echo, on purpose (each read alone)
    """The door's way to make room: close this client, unless we still owe it an echo."""
    if clients[fd].outgoing:
        return False
    close(poller, clients, fd)
    return True


def close(poller, clients, fd, error=False):
    poller.unregister(fd)
    hang_up(clients.pop(fd).conn, door, error)


if __name__ == "__main__":
    launch.run(serve, __doc__)
