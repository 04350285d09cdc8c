"""An echo server on ``select.epoll`` (Linux), level- or edge-triggered.

epoll keeps the watched set inside the kernel: registering is one call per socket, and each
``poll()`` returns only the ready ones, so its cost does not grow with idle sockets.

* Level-triggered (the default): a socket is reported as long as it is readable (or writable).
* Edge-triggered (``--edge``): a socket is reported once per *change*. After an event we must
  read (or write) until the call would block, or the rest waits until new data brings a new
  edge: forever, if the client waits for its answer first.

So each client remembers whether its socket may be ``readable`` or ``writable``. We send right
after the ``recv``; in level mode we ask for EPOLLOUT (a ``modify``: one system call) only while
bytes wait. We stop reading a client that owes us ``HIGH_WATER`` bytes; in edge mode no new
edge will report its unread bytes, so we read again as soon as it takes its echo. Clients come
in through a ``Door`` (labkit/accept_policy.py), as in select_echo.

    python -m labkit.servers.epoll_echo --port 0 [--edge]
"""

import select

from labkit import accept_policy, launch
from labkit.serving import CHUNK, HIGH_WATER, counts, hang_up

READ, WRITE = select.EPOLLIN, select.EPOLLOUT
BROKEN = select.EPOLLHUP | select.EPOLLERR
door = accept_policy.Door()  # lets a client in only while descriptors are to spare


class Client:
    """What the server remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.outgoing = bytearray()  # echoed bytes the client has not taken yet
        self.reading = True  # False once the client closed its sending side
        self.readable = False  # the socket may hold bytes we have not read yet
        self.writable = True  # the socket may take more bytes now
        self.events = READ  # what epoll watches this socket for (level mode)


def serve(listener, args):
    listener.setblocking(False)
    edge = select.EPOLLET if args.edge else 0
    ep = select.epoll()
    ep.register(listener.fileno(), READ | edge)
    clients = {}  # fd -> Client
    while True:
        for fd, events in ep.poll(door.timeout()):  # blocks; returns only ready sockets
            if fd == listener.fileno():
                if not accept_all(ep, listener, clients, edge):
                    ep.unregister(fd)  # the door is shut a moment: stop watching
            elif fd in clients:  # (not one closed earlier this round)
                serve_client(ep, clients, fd, events, edge)
        if door.over():
            ep.register(listener.fileno(), READ | edge)  # reports clients already waiting


def accept_all(ep, listener, clients, edge):
    """Accept one client (level) or all waiting (edge). False when the door pauses."""
    while True:  # edge-triggered: drain the whole backlog
        conn = door.accept(listener, lambda idle: close_idle(ep, clients, idle.fileno()))
        if conn is None or conn == accept_policy.PAUSED:  # none waiting; the door is shut
            return conn is None
        conn.setblocking(False)
        clients[conn.fileno()] = Client(conn)
        ep.register(conn.fileno(), READ | WRITE | edge if edge else READ)
        counts["connections"] += 1
        if not edge:
            return True  # level-triggered: the rest are reported again


def serve_client(ep, clients, fd, events, edge):
    client = clients[fd]
    if events & (READ | BROKEN):  # (broken: recv or send will say why)
        client.readable = True
    if events & (WRITE | BROKEN):
        client.writable = True
    try:
        while move_bytes(client) and edge:  # edge: until nothing more can move
            pass
    except OSError:
        return close(ep, clients, fd, error=True)
    if not client.reading and not client.outgoing:  # closed, and it has all its echo
        return close(ep, clients, fd)
    if not edge:  # level: ask only for what we need now, and tell epoll only of a change
        reading = client.reading and len(client.outgoing) < HIGH_WATER
        wanted = (READ if reading else 0) | (WRITE if client.outgoing else 0)
        if wanted != client.events:
            ep.modify(fd, wanted)
            client.events = wanted


def move_bytes(client):
    """One recv (if the backlog has room) and one send. True if any byte moved."""
    moved = False
    if client.readable and client.reading and len(client.outgoing) < HIGH_WATER:
        try:
            data = client.conn.recv(CHUNK)
        except BlockingIOError:  # drained: wait for the next event
            client.readable = False
        else:
            counts["bytes_in"] += len(data)
            client.reading = moved = bool(data)  # b"": the client closed its side
            client.outgoing += data  # sent at once below, unless the socket is full
    if client.writable and client.outgoing:
        try:
            sent = client.conn.send(client.outgoing)  # non-blocking: takes what fits
        except BlockingIOError:  # its buffer is full: wait for the next event
            client.writable = False
        else:
            counts["bytes_out"] += sent
            del client.outgoing[:sent]  # keep exactly what was not sent yet
            moved = True
    return moved


def close_idle(ep, clients, fd):  # and close: as in poll_echo, on purpose (each read alone)
    """The door's way to make room: close this client, unless we still owe it an echo."""
    if clients[fd].outgoing:
        return False
    close(ep, clients, fd)
    return True


def close(ep, clients, fd, error=False):
    ep.unregister(fd)
    hang_up(clients.pop(fd).conn, door, error)


def add_arguments(p):
    p.add_argument("--edge", action="store_true", help="edge-triggered instead of level")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
