"""An echo server on ``select.poll``: like select_echo, without select's 1024-descriptor limit.

``poll`` takes a list of (descriptor, events) registered once, instead of three lists rebuilt
on every call, and has no upper limit on descriptor numbers. It still hands the kernel the
whole list on every call, so its cost grows with the number of sockets watched.

Like select_echo it stops reading a client that owes us more than ``HIGH_WATER`` bytes, sends
the rest of the echo to a client that closed its side, and stops accepting for a moment when
out of descriptors (EMFILE), counted as ``accept_paused``.

    python -m labkit.servers.poll_echo --port 0
"""

import select

from labkit import launch

HIGH_WATER = 1 << 20  # stop reading from a client that is this far behind in reading
READ, WRITE = select.POLLIN, select.POLLOUT
BROKEN = select.POLLHUP | select.POLLERR | select.POLLNVAL


class Client:
    def __init__(self, conn):
        self.conn = conn
        self.outgoing = bytearray()  # echoed bytes the client has not taken yet
        self.reading = True  # False once the client closed its sending side


def serve(listener, args):
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, READ)
    clients = {}  # fd -> Client
    pause = launch.AcceptPause()  # out of descriptors: stop accepting a moment
    while True:
        wait = pause.timeout()
        for fd, events in poller.poll(None if wait is None else wait * 1000):  # ms; blocks
            if fd == listener.fileno():
                if not accept(poller, listener, clients):
                    poller.unregister(listener)  # out of descriptors: stop watching it
                    pause.begin()
            elif fd in clients:  # (not one closed earlier this round)
                serve_client(poller, clients, fd, events)
        if pause.over():
            poller.register(listener, READ)


def accept(poller, listener, clients):
    """Accept one client. False when out of descriptors: the caller pauses accepting."""
    conn = launch.accept(listener)
    if conn is None or conn == launch.PAUSED:  # the client gave up; out of descriptors
        return conn is None
    conn.setblocking(False)
    clients[conn.fileno()] = Client(conn)
    poller.register(conn, READ)
    launch.counters.add(connections=1)
    return True


def serve_client(poller, clients, fd, events):
    client = clients[fd]
    try:
        if events & (READ | BROKEN) and client.reading:
            data = client.conn.recv(65536)  # ready (or broken): returns at once
            launch.counters.add(bytes_in=len(data))
            client.outgoing += data
            client.reading = bool(data)  # b"": the client closed its side
        if events & (WRITE | BROKEN) and client.outgoing:  # broken: send says why
            sent = client.conn.send(client.outgoing)  # may be partial: keep the rest
            del client.outgoing[:sent]
            launch.counters.add(bytes_out=sent)
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        return close(poller, clients, fd, error=True)
    if not client.reading and not client.outgoing:  # closed, and it has all its echo
        return close(poller, clients, fd)
    wanted = (READ if client.reading and len(client.outgoing) < HIGH_WATER else 0) | (
        WRITE if client.outgoing else 0
    )
    poller.modify(client.conn, wanted)


def close(poller, clients, fd, error=False):
    client = clients.pop(fd)
    poller.unregister(fd)
    client.conn.close()
    if error:
        launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)
