"""An echo server on ``select.select``: one thread, many clients, nothing lost.

Each round asks the kernel which sockets are ready, then does only calls that will not block:
``accept`` on a readable listener, ``recv`` on a readable client, and ``send`` right after the
``recv`` (a non-blocking ``send`` takes what fits in the kernel's buffer, almost always all).
What ``send`` could not take yet stays in that client's outgoing buffer, and only then do we
ask select() about writing to it; a client that closes its sending side still gets the rest
of its echo before we close.

Its limits, and what it does at each one:

* ``select()`` cannot watch a descriptor numbered ``FD_SETSIZE`` (1024 on Linux) or more. A
  client whose socket gets such a number is *refused*: closed at once, counted in the stats
  (``refused``) and logged in one line, while every other client goes on being served.
  (poll_echo and epoll_echo have no such limit.)
* Near the open-file limit: clients come in through a ``Door`` (labkit/accept_policy.py),
  which keeps descriptors spare, closes the client idle longest to make room
  (``evicted_idle``), or stays shut for a moment (``accept_paused``).
* Many clients connecting at once: a readable listener may hold a queue of them; we accept up
  to ``ACCEPT_BURST`` per round, so that the kernel's listen queue does not overflow.
* A client that sends but does not read: above ``HIGH_WATER`` bytes owed, we stop reading it.

    python -m labkit.servers.select_echo --port 0
"""

import select
import sys

from labkit import accept_policy, launch
from labkit.serving import CHUNK, HIGH_WATER, counts, hang_up

FD_SETSIZE = 1024  # select() cannot watch descriptors numbered this or more (Linux)
ACCEPT_BURST = 64  # clients accepted per round at most, so the others still get their turn
door = accept_policy.Door()  # lets a client in only while descriptors are to spare
outgoing = {}  # client socket -> bytearray not yet sent to it
finished = set()  # clients that closed their side: send the rest, close


def serve(listener, args):
    listener.setblocking(False)
    while True:
        # Read from a client only while its backlog is small (a slow reader must not make us
        # buffer without limit); ask about writing only where there is something to write.
        readers = [c for c, buf in outgoing.items() if len(buf) < HIGH_WATER and c not in finished]
        writers = [c for c, buf in outgoing.items() if buf]
        if door.accepting():  # (not while the door is shut a moment)
            readers.append(listener)
        readable, writable, _ = select.select(readers, writers, [], door.timeout())
        for sock in readable:
            if sock is listener:
                accept_some(listener)
            elif sock in outgoing:  # (not closed earlier this round, to make room)
                serve_client(sock, receive)
        for sock in writable:
            if outgoing.get(sock):  # (not closed, nor sent to, while reading this round)
                serve_client(sock, send_some)


def serve_client(conn, step):
    """One step (``receive`` or ``send_some``) for a client; a broken connection is closed."""
    try:
        step(conn)
    except OSError:  # reset, or broken some other way
        close(conn, error=True)


def accept_some(listener):
    """Accept the clients waiting, up to ACCEPT_BURST (the door may pause in between)."""
    for _ in range(ACCEPT_BURST):
        conn = door.accept(listener, close_idle)
        if conn is None or conn == accept_policy.PAUSED:  # the queue is empty; door shut
            return
        if conn.fileno() >= FD_SETSIZE:  # select() could not watch it: refuse it, not everyone
            refuse(conn)
            continue
        conn.setblocking(False)
        outgoing[conn] = bytearray()
        counts["connections"] += 1


def refuse(conn):
    message = f"its descriptor {conn.fileno()} is beyond select()'s FD_SETSIZE ({FD_SETSIZE})"
    print(f"refused a client: {message}", file=sys.stderr, flush=True)
    hang_up(conn, door)
    counts["refused"] += 1


def receive(conn):
    try:
        data = conn.recv(CHUNK)  # readable, so this returns at once
    except BlockingIOError:  # nothing after all (another process took it, say)
        return
    counts["bytes_in"] += len(data)
    if not data:  # the client closed its side: stop reading it ...
        finished.add(conn)
        if not outgoing[conn]:  # ... and close once it has all its echo
            close(conn)
        return
    queued = bool(outgoing[conn])
    outgoing[conn] += data  # select() says "writable" before it goes, unless it goes now:
    if not queued:  # nothing waits to go first: send at once, no need to ask select()
        send_some(conn)


def send_some(conn):
    buf = outgoing[conn]
    try:
        sent = conn.send(buf)  # non-blocking: takes what fits, maybe less than all of it
    except BlockingIOError:  # the kernel's buffer is full: select() says when to try again
        return
    counts["bytes_out"] += sent
    del buf[:sent]  # keep exactly what was not sent yet
    if not buf and conn in finished:
        close(conn)


def close_idle(conn):
    """The door's way to make room: close this client, unless we still owe it an echo."""
    if outgoing[conn]:
        return False
    close(conn)
    return True


def close(conn, error=False):
    del outgoing[conn]
    finished.discard(conn)
    hang_up(conn, door, error)


if __name__ == "__main__":
    launch.run(serve, __doc__)
