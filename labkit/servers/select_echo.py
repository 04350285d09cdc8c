"""An echo server on ``select.select``: one thread, many clients, nothing lost.

Each round asks the kernel which sockets are ready, then does only calls that will not block:
``accept`` on a readable listener, ``recv`` on a readable client, ``send`` on a writable one.
What ``send`` could not take yet stays in that client's outgoing buffer for the next round.

    python -m labkit.servers.select_echo --port 0
"""
import select

from labkit.servers import launch

HIGH_WATER = 1 << 20   # stop reading from a client that is this far behind in reading our echo


def serve(listener, args):
    listener.setblocking(False)
    outgoing = {}                       # client socket -> bytearray not yet sent to it
    while True:
        # Read from a client only while its backlog is small (a slow reader must not make us
        # buffer without limit); ask about writing only where there is something to write.
        readers = [listener] + [c for c, buf in outgoing.items() if len(buf) < HIGH_WATER]
        writers = [c for c, buf in outgoing.items() if buf]
        readable, writable, _ = select.select(readers, writers, [])  # blocks until one is ready
        for sock in readable:
            if sock is listener:
                accept(listener, outgoing)
            else:
                receive(sock, outgoing)
        for sock in writable:
            if sock in outgoing:        # it may have been closed while reading this round
                send_some(sock, outgoing)


def accept(listener, outgoing):
    try:
        conn, _ = listener.accept()     # ready, so this does not block
    except BlockingIOError:             # the client gave up before we got to it
        return
    conn.setblocking(False)
    outgoing[conn] = bytearray()
    launch.counters.add(connections=1)


def receive(conn, outgoing):
    try:
        data = conn.recv(65536)         # readable, so this returns at once
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(conn, outgoing, error=True)
    if not data:                        # the client closed: don't spin on b"", close
        return close(conn, outgoing)
    launch.counters.add(bytes_in=len(data))
    outgoing[conn] += data


def send_some(conn, outgoing):
    buf = outgoing[conn]
    try:
        sent = conn.send(buf)           # may take only part of buf: that is normal
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(conn, outgoing, error=True)
    del buf[:sent]                      # keep exactly what was not sent yet
    launch.counters.add(bytes_out=sent)


def close(conn, outgoing, error=False):
    del outgoing[conn]
    conn.close()
    if error:
        launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)
