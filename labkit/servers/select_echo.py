"""An echo server on ``select.select``: one thread, many clients, nothing lost.

Each round asks the kernel which sockets are ready, then does only calls that will not block:
``accept`` on a readable listener, ``recv`` on a readable client, ``send`` on a writable one.
What ``send`` could not take yet stays in that client's outgoing buffer for the next round; a
client that closes its sending side still gets the rest of its echo before we close.

Its limits, and what it does at each one:

* ``select()`` cannot watch a descriptor numbered ``FD_SETSIZE`` (1024 on Linux) or more. A
  client whose socket gets such a number is *refused*: closed at once, counted in the stats
  (``refused``) and logged in one line, while every other client goes on being served.
  (poll_echo and epoll_echo have no such limit.)
* Out of descriptors (EMFILE): it stops accepting for a moment (``accept_paused``).
* A client that sends but does not read: above ``HIGH_WATER`` bytes owed, we stop reading it.

    python -m labkit.servers.select_echo --port 0
"""

import select
import sys

from labkit import launch

HIGH_WATER = 1 << 20  # stop reading from a client that is this far behind in reading our echo
FD_SETSIZE = 1024  # select() cannot watch descriptors numbered this or more (Linux)


def serve(listener, args):
    listener.setblocking(False)
    outgoing = {}  # client socket -> bytearray not yet sent to it
    finished = set()  # clients that closed their side: send the rest, close
    pause = launch.AcceptPause()  # out of descriptors: stop accepting for a moment
    while True:
        # Read from a client only while its backlog is small (a slow reader must not make us
        # buffer without limit); ask about writing only where there is something to write.
        readers = [c for c, buf in outgoing.items() if len(buf) < HIGH_WATER and c not in finished]
        writers = [c for c, buf in outgoing.items() if buf]
        if pause.accepting():
            readers.append(listener)
        readable, writable, _ = select.select(readers, writers, [], pause.timeout())
        for sock in readable:
            if sock is not listener:
                receive(sock, outgoing, finished)
            elif not accept(listener, outgoing):
                pause.begin()
        for sock in writable:
            if sock in outgoing:  # it may have been closed while reading this round
                send_some(sock, outgoing, finished)


def accept(listener, outgoing):
    """Accept one client. False when out of descriptors: the caller pauses accepting."""
    conn = launch.accept(listener)  # ready, so this does not block
    if conn is None or conn == launch.PAUSED:  # the client gave up; out of descriptors
        return conn is None
    if conn.fileno() >= FD_SETSIZE:  # select() could not watch it: refuse it, not everyone
        print(
            f"refused a client: its descriptor {conn.fileno()} is beyond select()'s "
            f"FD_SETSIZE ({FD_SETSIZE})",
            file=sys.stderr,
            flush=True,
        )
        conn.close()
        launch.counters.add(refused=1)
        return True
    conn.setblocking(False)
    outgoing[conn] = bytearray()
    launch.counters.add(connections=1)
    return True


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
    launch.counters.add(bytes_in=len(data))
    outgoing[conn] += data


def send_some(conn, outgoing, finished):
    buf = outgoing[conn]
    try:
        sent = conn.send(buf)  # may take only part of buf: that is normal
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(conn, outgoing, finished, error=True)
    del buf[:sent]  # keep exactly what was not sent yet
    launch.counters.add(bytes_out=sent)
    if not buf and conn in finished:
        close(conn, outgoing, finished)


def close(conn, outgoing, finished, error=False):
    del outgoing[conn]
    finished.discard(conn)
    conn.close()
    if error:
        launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)
