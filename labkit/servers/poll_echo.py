"""An echo server on ``select.poll``: like select_echo, without select's 1024-descriptor limit.

``poll`` takes a list of (descriptor, events) registered once, instead of three lists rebuilt
on every call, and has no upper limit on descriptor numbers. It still hands the kernel the
whole list on every call, so its cost grows with the number of sockets watched.

    python -m labkit.servers.poll_echo --port 0
"""
import select
import socket

from labkit.servers import launch

HIGH_WATER = 1 << 20          # stop reading from a client that is this far behind in reading
READ, WRITE = select.POLLIN, select.POLLOUT
BROKEN = select.POLLHUP | select.POLLERR | select.POLLNVAL


def serve(listener, args):
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, READ)
    clients = {}                                    # fd -> [socket, outgoing bytearray]
    while True:
        for fd, events in poller.poll():            # blocks until something is ready
            if fd == listener.fileno():
                accept(poller, listener, clients)
            elif fd in clients:
                serve_client(poller, clients, fd, events)


def accept(poller, listener, clients):
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return
    conn.setblocking(False)
    clients[conn.fileno()] = [conn, bytearray()]
    poller.register(conn, READ)
    launch.counters.add(connections=1)


def serve_client(poller, clients, fd, events):
    conn, outgoing = clients[fd]
    try:
        if events & (READ | BROKEN):
            data = conn.recv(65536)                 # ready (or broken): returns at once
            if not data:
                return close(poller, clients, fd)
            launch.counters.add(bytes_in=len(data))
            outgoing += data
        if events & WRITE and outgoing:
            sent = conn.send(outgoing)              # may be partial: keep the rest
            del outgoing[:sent]
            launch.counters.add(bytes_out=sent)
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        return close(poller, clients, fd, error=True)
    wanted = (READ if len(outgoing) < HIGH_WATER else 0) | (WRITE if outgoing else 0)
    poller.modify(conn, wanted)


def close(poller, clients, fd, error=False):
    conn, _ = clients.pop(fd)
    poller.unregister(fd)
    conn.close()
    if error:
        launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)
