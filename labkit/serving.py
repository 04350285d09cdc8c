"""What the teaching servers share besides ``launch``, written once so each server shows its idea.

* ``counts``: the server's counters (``counts["bytes_in"] += n``), read by ``stats()``.
* ``hang_up``: close a client's socket, give the door its descriptors back, count an error;
  ``last_word`` first tells a client why, if its socket has room.
* ``SelectorServer``: a whole selectors loop, for a server whose idea lies elsewhere
  (compute_selectors, whose idea is the pool; the echo and file servers spell their loops out),
  and ``watch``, which sets what its selector watches a client for.

``HIGH_WATER`` is the bytes a server will hold for one client, not yet taken, before it stops
reading that client: a client that sends but does not read must not make it buffer without
limit. The echo servers hold 1 MiB (here); a server whose replies are small or come from a
file says in its own ``HIGH_WATER`` why it holds less.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from typing import Any

from labkit.accept_policy import PAUSED, Door
from labkit.counters import counters

__all__ = ["counts", "hang_up", "last_word", "watch", "SelectorServer", "CHUNK", "HIGH_WATER"]

CHUNK = 65536  # bytes asked of one recv
HIGH_WATER = 1 << 20  # an echo owes back every byte it reads: a client may write a message of
# up to 1 MiB before it reads its echo, and still never be stopped
counts = counters.for_this_thread()  # the importing thread's: a server's loop, no lock at all


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


class SelectorServer:
    """A loop on ``selectors`` over clients kept in their keys' ``data``, each with ``conn`` and
    ``events`` (what it is watched for, see ``watch``). It lets clients in through ``door`` and
    calls the subclass's ``connected(conn)``, then ``receive(client)`` when one is readable and
    ``send_some(client)`` when writable, and ``close_idle(conn)`` when the door needs room. A
    callable ``data`` (compute_selectors' wake-up socket) is called when ready. A broken
    connection is closed."""

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
                    self._accept()
                elif callable(client):
                    client()
                else:
                    self._serve(client, events)
            if self.door.over():  # the door was shut a moment: watch the listener again
                self.sel.register(self.listener, selectors.EVENT_READ, data=None)

    def _accept(self) -> None:
        conn = self.door.accept(self.listener, self.close_idle)  # ready: does not block
        if conn == PAUSED:  # no room: the next clients wait in the listen backlog meanwhile
            self.sel.unregister(self.listener)
        elif conn is not None:  # (None: the client gave up, or another process took it)
            conn.setblocking(False)
            counts["connections"] += 1
            self.connected(conn)

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
