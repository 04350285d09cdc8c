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

HIGH_WATER = 1 << 20  # stop reading from a client that is this far behind in reading our echo
FD_SETSIZE = 1024  # select() cannot watch descriptors numbered this or more (Linux)
ACCEPT_BURST = 64  # clients accepted per round at most, so the others still get their turn
counts = launch.counters.for_this_thread()  # our one thread's counters: no lock, nearly free
door = accept_policy.Door()  # lets a client in only while descriptors are to spare


def serve(listener, args):
    listener.setblocking(False)
    outgoing = {}  # client socket -> bytearray not yet sent to it
    finished = set()  # clients that closed their side: send the rest, close
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
                accept_some(listener, outgoing, finished)
            elif sock in outgoing:  # (not closed earlier this round, to make room)
                receive(sock, outgoing, finished)
        for sock in writable:
            if outgoing.get(sock):  # (not closed, nor sent to, while reading this round)
                send_some(sock, outgoing, finished)


def accept_some(listener, outgoing, finished):
    """Accept the clients waiting, up to ACCEPT_BURST (the door may pause in between)."""
    for _ in range(ACCEPT_BURST):
        conn = door.accept(listener, lambda idle: close_idle(idle, outgoing, finished))
        if conn is None or conn == accept_policy.PAUSED:  # the queue is empty; door shut
            return
        add_client(conn, outgoing)


def add_client(conn, outgoing):
    if conn.fileno() >= FD_SETSIZE:  # select() could not watch it: refuse it, not everyone
        print(
            f"refused a client: its descriptor {conn.fileno()} is beyond select()'s "
            f"FD_SETSIZE ({FD_SETSIZE})",
            file=sys.stderr,
            flush=True,
        )
        door.closed(conn)
        conn.close()
        counts["refused"] += 1
        return
    conn.setblocking(False)
    outgoing[conn] = bytearray()
    counts["connections"] += 1


def receive(conn, outgoing, finished):
    try:
        data = conn.recv(65536)  # readable, so this returns at once
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(conn, outgoing, finished, error=True)
    if not data:  # the client closed its side: stop reading it ...
        finished.add(conn)
        if not outgoing[conn]:  # ... and close once it has all its echo
            close(conn, outgoing, finished)
        return
    counts["bytes_in"] += len(data)
    if not outgoing[conn]:  # nothing waits to go first: send at once, no need to ask select()
        sent = send_now(conn, data, outgoing, finished)
        if sent is None:  # the client is gone
            return
        data = data[sent:]
    outgoing[conn] += data  # what did not fit waits for select() to say "writable"


def send_some(conn, outgoing, finished):
    buf = outgoing[conn]
    sent = send_now(conn, buf, outgoing, finished)
    if sent is None:  # the client is gone
        return
    del buf[:sent]  # keep exactly what was not sent yet
    if not buf and conn in finished:
        close(conn, outgoing, finished)


def send_now(conn, data, outgoing, finished):
    """Send what the kernel takes now: the number of bytes sent, None if the client is gone."""
    try:
        sent = conn.send(data)  # may take only part of data: that is normal
    except (BlockingIOError, InterruptedError):
        return 0  # the kernel's buffer is full
    except OSError:
        return close(conn, outgoing, finished, error=True)
    counts["bytes_out"] += sent
    return sent


def close_idle(conn, outgoing, finished):
    """The door's way to make room: close this client, unless we still owe it an echo."""
    if outgoing[conn]:
        return False
    close(conn, outgoing, finished)
    return True


def close(conn, outgoing, finished, error=False):
    del outgoing[conn]
    door.closed(conn)
    finished.discard(conn)
    conn.close()
    if error:
        counts["errors"] += 1


if __name__ == "__main__":
    launch.run(serve, __doc__)
