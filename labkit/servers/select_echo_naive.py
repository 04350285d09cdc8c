"""BROKEN ON PURPOSE: a select echo server that ignores partial sends, for lesson 07.

It queues what it receives and, when a client's socket is writable, sends everything queued
for it in one ``send`` call and empties the queue, whatever ``send`` returned. But ``send`` on a
non-blocking socket takes only what fits in the kernel's buffer right now. While the client
reads fast that is everything; when it reads slowly the queue grows, one ``send`` takes only
part of it, and the rest is silently lost. (The fix, in select_echo: keep ``buffer[sent:]``.)

    python -m labkit.servers.select_echo_naive --port 0
"""

import queue
import select

from labkit import launch


def serve(listener, args):
    listener.setblocking(False)
    inputs, outputs, queues = [listener], [], {}
    while True:
        readable, writable, _ = select.select(inputs, outputs, [])
        for sock in readable:
            if sock is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                inputs.append(conn)
                queues[conn] = queue.Queue()
                launch.counters.add(connections=1)
            else:
                receive(sock, inputs, outputs, queues)
        for sock in writable:
            if sock in queues:
                send_queued(sock, outputs, queues[sock])


def receive(sock, inputs, outputs, queues):
    try:
        data = sock.recv(65536)
    except OSError:
        data = b""
    if not data:
        inputs.remove(sock)
        if sock in outputs:
            outputs.remove(sock)
        del queues[sock]
        sock.close()
        return
    launch.counters.add(bytes_in=len(data))
    queues[sock].put(data)
    if sock not in outputs:
        outputs.append(sock)


def send_queued(sock, outputs, pending):
    chunks = []
    while not pending.empty():
        chunks.append(pending.get_nowait())
    outputs.remove(sock)
    data = b"".join(chunks)
    try:
        sent = sock.send(data)  # BUG: may send only part of data ...
    except BlockingIOError:
        sent = 0  # ... or nothing at all
    launch.counters.add(bytes_out=sent, bytes_lost=len(data) - sent)  # ... and forgets it


if __name__ == "__main__":
    launch.run(serve, __doc__)
