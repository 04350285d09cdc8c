"""What the teaching servers share besides ``launch``, written once so each server shows its idea.

* ``counts``: the server's counters (``counts["bytes_in"] += n``), read by ``stats()``.
* ``recv_now`` and ``send_now``: one non-blocking call on a socket the loop found ready, which
  counts its bytes and says plainly when nothing could move (a broken connection raises
  ``OSError``: the server closes it).
* ``hang_up``: close a client's socket, give the door its descriptors back, count an error;
  ``last_word`` first tells a client why, if its socket has room.
* ``accept_ready``: a loop on ``selectors`` lets a client in through the accept policy's
  ``Door`` (labkit/accept_policy.py), and stops watching the listener while the door is shut.
* ``watch``: set what a selector watches a client for, with a system call only on a change.
* ``Mailbox``: results that another thread (a pool's) hands to a selectors loop, waking it.
* ``SelectorServer``: the whole selectors loop, for a server whose idea lies elsewhere
  (selectors_echo spells its loop out; compute_selectors, whose idea is the pool, uses this).
* ``ClosesIdle``: a gevent server's door closes only the connections waiting between requests.

``HIGH_WATER`` is the bytes a server will hold for one client, not yet taken, before it stops
reading that client: a client that sends but does not read must not make it buffer without
limit. The echo servers hold 1 MiB (here); a server whose replies are small or come from a
file says in its own ``HIGH_WATER`` why it holds less.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from labkit.accept_policy import PAUSED, AcceptsThroughDoor, Door
from labkit.counters import counters

__all__ = [
    "counts",
    "recv_now",
    "send_now",
    "hang_up",
    "last_word",
    "accept_ready",
    "watch",
    "Mailbox",
    "SelectorServer",
    "ClosesIdle",
]

CHUNK = 65536  # bytes asked of one recv
HIGH_WATER = 1 << 20  # an echo owes back every byte it reads: a client may write a message of
# up to 1 MiB before it reads its echo, and still never be stopped
counts = counters.for_this_thread()  # the importing thread's: a server's loop, no lock at all


def recv_now(conn: socket.socket, size: int = CHUNK) -> bytes | None:
    """Bytes from a socket reported readable (the call returns at once); ``b""`` once the client
    closed its side; None if nothing came after all (another process took it, say)."""
    try:
        data = conn.recv(size)
    except (BlockingIOError, InterruptedError):
        return None
    counts["bytes_in"] += len(data)
    return data


def send_now(conn: socket.socket, data: bytes | bytearray) -> int:
    """Send what the kernel takes now: the number of bytes sent, maybe fewer than ``data`` (that
    is normal), 0 when the socket's buffer is full."""
    try:
        sent = conn.send(data)  # non-blocking: takes what fits, never waits
    except (BlockingIOError, InterruptedError):
        return 0
    counts["bytes_out"] += sent
    return sent


def hang_up(conn: socket.socket, door: Door, error: bool = False) -> None:
    """Close a client's socket, and tell the door its descriptors are free; count an error."""
    door.closed(conn)
    conn.close()
    if error:
        counts["errors"] += 1


def last_word(conn: socket.socket, line: bytes) -> None:
    """Say why, just before closing: one non-blocking send, so it fits (nothing else waits to go
    to this client) or is lost, and a client that does not read cannot hold us."""
    with contextlib.suppress(OSError):
        conn.send(line)


def accept_ready(
    sel: selectors.BaseSelector,
    listener: socket.socket,
    door: Door,
    close_idle: Callable[[Any], bool],
) -> socket.socket | None:
    """Accept one client from a listener the selector reported readable, through ``door``: the
    new non-blocking socket, or None (the client gave up, another process took it, or the door
    is shut). When the door shuts, the listener leaves ``sel``; the loop registers it again
    once ``door.over()``, and waits at most ``door.timeout()`` meanwhile."""
    conn = door.accept(listener, close_idle)  # ready: does not block
    if conn == PAUSED:
        sel.unregister(listener)  # waiting clients stay in the listen backlog
        return None
    if conn is not None:
        conn.setblocking(False)
        counts["connections"] += 1
    return conn


def watch(sel: selectors.BaseSelector, client: Any, wanted: int) -> None:
    """Make ``sel`` watch ``client.conn`` for ``wanted`` (0: not at all, it leaves the selector),
    remembered in ``client.events``. Each change is one system call: none when nothing changes."""
    if wanted == client.events:
        return
    if not wanted:
        sel.unregister(client.conn)
    elif not client.events:
        sel.register(client.conn, wanted, data=client)
    else:
        sel.modify(client.conn, wanted, data=client)
    client.events = wanted


class Mailbox:
    """What another thread (a pool's) hands to a selectors loop: ``put`` queues it and wakes the
    loop by one byte into a socketpair that ``sel`` watches (with ``data``), the classic wake-up
    trick; the loop, woken, takes it all with ``take_all``. A thread may not touch the selector
    itself."""

    def __init__(self, sel: selectors.BaseSelector, data: Any) -> None:
        self._items: deque[Any] = deque()  # appended and popped whole: safe across threads
        self._r, self._w = socket.socketpair()
        for s in (self._r, self._w):
            s.setblocking(False)
        sel.register(self._r, selectors.EVENT_READ, data=data)

    def put(self, item: Any) -> None:
        """From any thread: queue ``item`` and wake the loop."""
        self._items.append(item)
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already: it is awake
            self._w.send(b"!")

    def take_all(self) -> Iterator[Any]:
        """In the loop: what was put, oldest first, once the wake-ups are read."""
        with contextlib.suppress(BlockingIOError):
            while self._r.recv(4096):  # ready: returns at once, until it would block
                pass
        while self._items:
            yield self._items.popleft()


class SelectorServer:
    """A loop on ``selectors`` over clients kept in their keys' ``data``, each with ``conn`` and
    ``events`` (what it is watched for, see ``watch``). It lets clients in through ``door`` and
    calls the subclass's ``connected(conn)``, then ``receive(client)`` when one is readable and
    ``send_some(client)`` when writable, and ``close_idle(conn)`` when the door needs room. A
    callable ``data`` (a Mailbox's, say) is called when ready. A broken connection is closed."""

    def __init__(self, listener: socket.socket, door: Door) -> None:
        listener.setblocking(False)  # a client that gave up, or another process took, is None
        self.listener, self.door = listener, door
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, data=None)

    def run(self) -> None:
        while True:
            for key, events in self.sel.select(self.door.timeout()):  # blocks until ready
                client = key.data
                if client is None:  # the listener: a client is waiting
                    if conn := accept_ready(self.sel, self.listener, self.door, self.close_idle):
                        self.connected(conn)
                elif callable(client):
                    client()
                else:
                    self._serve(client, events)
            if self.door.over():  # the door was shut a moment: watch the listener again
                self.sel.register(self.listener, selectors.EVENT_READ, data=None)

    def _serve(self, client: Any, events: int) -> None:
        try:
            if events & selectors.EVENT_READ and client.events:  # (not closed to make room)
                self.receive(client)
            if events & selectors.EVENT_WRITE and client.events:  # (not closed just now)
                self.send_some(client)
        except OSError:  # reset, or broken some other way
            self.close(client, error=True)

    def connected(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def receive(self, client: Any) -> None:
        raise NotImplementedError

    def send_some(self, client: Any) -> None:
        raise NotImplementedError

    def close_idle(self, conn: socket.socket) -> bool:
        return False  # unless the server says which clients are idle, none is closed

    def close(self, client: Any, error: bool = False) -> None:
        watch(self.sel, client, 0)
        hang_up(client.conn, self.door, error)


class ClosesIdle(AcceptsThroughDoor):
    """Mix into a gevent server class: its door may close a connection only while the handler
    waits for the client's next request (``with self.between_requests(conn):``), never one with
    a request in progress, which would lose its reply or its upload. ``goodbye(conn)`` may tell
    the client why first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.idle: set[Any] = set()  # connections waiting between requests
        super().__init__(*args, **kwargs)

    @contextmanager
    def between_requests(self, conn: Any, really: bool = True) -> Iterator[None]:
        if really:
            self.idle.add(conn)
        try:
            yield
        finally:
            self.idle.discard(conn)

    def goodbye(self, conn: Any) -> None:
        """A last word to a client closed to make room: none by default."""

    def close_idle(self, conn: Any) -> bool:
        if conn not in self.idle:
            return False
        self.goodbye(conn)
        conn.close()  # its handler, waiting in recv, gets an OSError (or EOF) and ends
        return True
