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
import time

from labkit.servers import launch

HIGH_WATER = 1 << 20          # stop reading from a client that is this far behind in reading
ACCEPT_PAUSE = 0.1            # seconds to stop accepting when out of descriptors
READ, WRITE = select.POLLIN, select.POLLOUT
BROKEN = select.POLLHUP | select.POLLERR | select.POLLNVAL


class Client:
    def __init__(self, conn):
        self.conn = conn
        self.outgoing = bytearray()     # echoed bytes the client has not taken yet
        self.reading = True             # False once the client closed its sending side


def serve(listener, args):
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, READ)
    clients = {}                                    # fd -> Client
    accept_again = None                             # set while accepting is paused
    while True:
        wait_ms = None if accept_again is None else max(0, accept_again - time.monotonic()) * 1000
        for fd, events in poller.poll(wait_ms):     # blocks until something is ready
            if fd == listener.fileno() and not accept(poller, listener, clients):
                poller.unregister(listener)         # out of descriptors: stop watching it
                accept_again = time.monotonic() + ACCEPT_PAUSE
            elif fd in clients:
                serve_client(poller, clients, fd, events)
        if accept_again is not None and time.monotonic() >= accept_again:
            poller.register(listener, READ)
            accept_again = None


def accept(poller, listener, clients):
    """Accept one client. False when out of descriptors: the caller pauses accepting."""
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, ConnectionAbortedError):
        return True
    except OSError:                                 # EMFILE/ENFILE
        launch.counters.add(accept_paused=1)
        return False
    conn.setblocking(False)
    clients[conn.fileno()] = Client(conn)
    poller.register(conn, READ)
    launch.counters.add(connections=1)
    return True


def serve_client(poller, clients, fd, events):
    client = clients[fd]
    try:
        if events & (READ | BROKEN) and client.reading:
            data = client.conn.recv(65536)          # ready (or broken): returns at once
            launch.counters.add(bytes_in=len(data))
            client.outgoing += data
            client.reading = bool(data)             # b"": the client closed its side
        if events & (WRITE | BROKEN) and client.outgoing:   # broken: send says why
            sent = client.conn.send(client.outgoing)   # may be partial: keep the rest
            del client.outgoing[:sent]
            launch.counters.add(bytes_out=sent)
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        return close(poller, clients, fd, error=True)
    if not client.reading and not client.outgoing:  # closed, and it has all its echo
        return close(poller, clients, fd)
    wanted = (READ if client.reading and len(client.outgoing) < HIGH_WATER else 0) | \
             (WRITE if client.outgoing else 0)
    poller.modify(client.conn, wanted)


def close(poller, clients, fd, error=False):
    client = clients.pop(fd)
    poller.unregister(fd)
    client.conn.close()
    if error:
        launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)
