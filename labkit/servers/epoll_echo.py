"""An echo server on ``select.epoll`` (Linux), level- or edge-triggered.

epoll keeps the watched set inside the kernel: registering is one call per socket, and each
``poll()`` returns only the ready ones, so its cost does not grow with the number of idle
sockets.

* Level-triggered (the default): a socket is reported as long as it is readable (or writable).
* Edge-triggered (``--edge``): a socket is reported once per *change*. After an event we must
  read (or write) until the call would block, or the rest waits forever: no new edge will come.

    python -m labkit.servers.epoll_echo --port 0 [--edge]
"""
import select

from labkit.servers import launch

HIGH_WATER = 1 << 20
READ, WRITE = select.EPOLLIN, select.EPOLLOUT
BROKEN = select.EPOLLHUP | select.EPOLLERR


def serve(listener, args):
    listener.setblocking(False)
    edge = select.EPOLLET if args.edge else 0
    ep = select.epoll()
    ep.register(listener.fileno(), READ | edge)
    clients = {}                                    # fd -> [socket, outgoing bytearray]
    while True:
        for fd, events in ep.poll():                # blocks; returns only ready sockets
            if fd == listener.fileno():
                accept_all(ep, listener, clients, edge)
            elif fd in clients:
                serve_client(ep, clients, fd, events, edge)


def accept_all(ep, listener, clients, edge):
    while True:                                     # edge-triggered: drain the whole backlog
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        clients[conn.fileno()] = [conn, bytearray()]
        ep.register(conn.fileno(), READ | WRITE | edge if edge else READ)
        launch.counters.add(connections=1)
        if not edge:
            return                                  # level-triggered: the rest are reported again


def serve_client(ep, clients, fd, events, edge):
    conn, outgoing = clients[fd]
    try:
        if events & (READ | BROKEN):
            if not read_available(conn, outgoing, drain=bool(edge)):
                return close(ep, clients, fd)
        if outgoing:
            write_available(conn, outgoing, drain=bool(edge))
    except OSError:
        return close(ep, clients, fd, error=True)
    if not edge:                                    # level: ask only for what we need now
        wanted = (READ if len(outgoing) < HIGH_WATER else 0) | (WRITE if outgoing else 0)
        ep.modify(fd, wanted)


def read_available(conn, outgoing, drain):
    """Read once (level) or until EAGAIN (edge). False when the client has closed."""
    while True:
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        launch.counters.add(bytes_in=len(data))
        outgoing += data
        if not drain:
            return True


def write_available(conn, outgoing, drain):
    """Send once (level) or until EAGAIN or empty (edge); keep what was not sent."""
    while outgoing:
        try:
            sent = conn.send(outgoing)
        except BlockingIOError:
            return
        del outgoing[:sent]
        launch.counters.add(bytes_out=sent)
        if not drain:
            return


def close(ep, clients, fd, error=False):
    conn, _ = clients.pop(fd)
    ep.unregister(fd)
    conn.close()
    if error:
        launch.counters.add(errors=1)


def add_arguments(p):
    p.add_argument("--edge", action="store_true", help="edge-triggered instead of level")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
