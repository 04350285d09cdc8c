"""How every teaching server accepts clients: it keeps descriptors for its own work.

Each client costs a server a descriptor (its socket), and more while it is served: the file a
GET sends, the upload a PUT writes. A server that accepts until the kernel says EMFILE has none
left for those, and must answer the clients it holds "ERR 503 ... Too many open files". So the
servers accept through a ``Door``, which does three things:

* **It keeps a reserve.** It counts the connections the server holds (it hands each one out,
  and the server says when one closes) and lets a client in only while each could hold
  ``per_client`` descriptors with ``RESERVE`` still spare. Past that, the next client waits in
  the listen backlog: unanswered for a while, but not refused.
* **It makes room from idle connections.** At the limit, with a client waiting, it closes the
  connection idle longest (``evicted_idle`` in the stats), as nginx closes its idle keep-alive
  connections, longest idle first, when its ``worker_connections`` run out
  (``ngx_drain_connections`` in its src/core/ngx_connection.c). Idle means quiet both ways for
  ``MIN_IDLE`` seconds, no request waiting unread and no reply waiting for the client's
  kernel to take it (the socket's queues), and nothing in progress by the server's own word:
  the server's ``close_idle(conn)`` refuses a busy connection, which would lose its reply or
  its upload.
* **It pauses.** With nothing idle to close, or when the kernel says EMFILE all the same, it
  stays shut for ``ACCEPT_PAUSE`` seconds (``accept_paused``) while the server serves the
  clients it has: retrying at once would only spin.

An event-loop server::

    door = accept_policy.Door(per_client=1)
    # wait with timeout=door.timeout(); watch the listener only while door.accepting()
    conn = door.accept(listener, close_idle)  # a socket; None: nobody waiting; or PAUSED
    door.closed(conn)                         # whenever the server closes a connection

A blocking server calls ``door.accept_waiting(listener, close_idle)``; a gevent server class
mixes in ``AcceptsThroughDoor``. Counting costs nothing per message: the kernel already keeps,
for each TCP connection, when it last sent and received data (``TCP_INFO``), and the door asks
it only at the limit. Where the kernel does not say (not Linux), no connection is closed.
"""

from __future__ import annotations

import fcntl
import os
import resource
import select
import socket
import struct
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, Literal

from labkit.child import original
from labkit.counters import counters
from labkit.limits import open_now

__all__ = [
    "Door",
    "AcceptsThroughDoor",
    "accept",
    "accept_waiting",
    "AcceptPause",
    "quiet_for",
    "ACCEPT_PAUSE",
    "PAUSED",
    "RESERVE",
    "MIN_IDLE",
]

ACCEPT_PAUSE = 0.1  # seconds the door stays shut when it cannot let a client in
PAUSED: Final = "paused"  # what accept() returns then
RESERVE = 32  # descriptors never given to clients: logs, a folder listing, a pool's pipes
MIN_IDLE = 3.0  # seconds a connection must be quiet before it may be closed to make room.
# nginx does not wait, but our clients never retry a request that meets a closed connection,
# and one thread starting 10,000 clients (lesson 08) sent its first GETs 1 to 2 s after their
# handshakes here: with 1 s, 1,213 of them were closed as idle; with 2 s and 3 s, none.

CloseIdle = Callable[[Any], bool]  # the server's: close this connection if idle; did it?
Accepted = socket.socket | Literal["paused"] | None


def accept(listener: socket.socket) -> Accepted:
    """``listener.accept()`` that survives running out of descriptors: the new socket; None if
    nobody is waiting (a non-blocking listener, or the client gave up); PAUSED, counted as
    ``accept_paused``, when out of descriptors (EMFILE/ENFILE): the caller stops accepting for
    ACCEPT_PAUSE. The client stays queued in the listen backlog meanwhile."""
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, ConnectionAbortedError):
        return None
    except OSError:  # EMFILE/ENFILE: no descriptor for it yet
        counters.add(accept_paused=1)
        return PAUSED
    return conn


def accept_waiting(listener: socket.socket) -> socket.socket:
    """For a blocking server that holds one client at a time: wait for the next client; out of
    descriptors, sleep and retry (under gevent's monkey-patching the other greenlets run)."""
    while not isinstance(conn := accept(listener), socket.socket):
        if conn == PAUSED:
            time.sleep(ACCEPT_PAUSE)
    return conn


class AcceptPause:
    """For an event-loop server: while accepting is paused, stop watching the listener.

    wait for events with timeout=pause.timeout()
    if pause.over(): watch the listener again
    """

    def __init__(self) -> None:
        self.until: float | None = None

    def begin(self) -> None:
        self.until = time.monotonic() + ACCEPT_PAUSE

    def timeout(self) -> float | None:
        """Seconds the next wait may last: None (no limit) unless accepting is paused."""
        return None if self.until is None else max(0.0, self.until - time.monotonic())

    def over(self) -> bool:
        """True once, when a pause has just ended."""
        if self.until is None or time.monotonic() < self.until:
            return False
        self.until = None
        return True

    def accepting(self) -> bool:
        """True unless a pause is still running (one that has run out ends here)."""
        self.over()
        return self.until is None


class Door(AcceptPause):
    """Lets a client in while the server keeps descriptors for its own work (see the module).

    ``per_client``: the most descriptors one connection may hold at once (its socket, plus the
    files it may have open). ``accept`` pauses by itself (``begin``) when it returns PAUSED."""

    def __init__(self, per_client: int = 1, reserve: int = RESERVE) -> None:
        super().__init__()
        self.per_client, self.reserve = per_client, reserve
        self.held: dict[Any, None] = {}  # the connections the server holds, oldest first
        self.others: int | None = None  # descriptors that are not clients': stdio, listener...
        self.closing: dict[int, tuple[int, int]] = {}  # descriptor -> (device, inode) of
        # closed connections whose descriptor may not be free yet (gevent closes a loop pass later)
        self._idlest: list[Any] = []  # idle connections from the last look, longest idle last

    def room(self, soon: bool = False) -> bool:
        """True while one more client fits (``soon``: once the descriptors being closed are
        back). The limit is read each time, one system call: ``prlimit`` may change it."""
        if self.others is None:  # counted once, at the first client: all is set up by then
            self.others = open_now()
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        needed = self.others + self.reserve + (len(self.held) + 1) * self.per_client
        if self.closing and not soon:
            needed += self._still_closing()  # an idle connection's socket each
        return soft == resource.RLIM_INFINITY or needed <= soft

    def accept(self, listener: socket.socket, close_idle: CloseIdle | None = None) -> Accepted:
        """The next client if one fits (after making room if need be); None if nobody is
        waiting, or room is made but not yet free (come back soon); PAUSED, with the pause
        begun, if it does not fit or the kernel says EMFILE."""
        if not self.room():
            if not self.make_room(listener, close_idle):
                counters.add(accept_paused=1)
                self.begin()
                return PAUSED
            if not self.room():
                return None  # a descriptor is on its way back: the next loop pass takes it
        conn = accept(listener)
        if conn == PAUSED:
            self.begin()
        elif conn is not None:
            self.took(conn)
        return conn

    def accept_waiting(
        self, listener: socket.socket, close_idle: CloseIdle | None = None
    ) -> socket.socket:
        """For a blocking server: wait for the next client that fits, pausing when none does
        (under gevent's monkey-patching the other greenlets run meanwhile)."""
        while not isinstance(conn := self.accept(listener, close_idle), socket.socket):
            time.sleep(ACCEPT_PAUSE if conn == PAUSED else 0.001)  # (None: room on its way)
        return conn

    def took(self, conn: Any) -> None:
        """``conn`` was accepted: it holds descriptors until ``closed``."""
        self.held[conn] = None

    def closed(self, conn: Any) -> None:
        """The server has closed ``conn`` (or is closing it): its descriptors are free."""
        self.held.pop(conn, None)

    def make_room(self, listener: socket.socket, close_idle: CloseIdle | None) -> bool:
        """With a client waiting, close idle connections, longest idle first, until one more
        fits. False if not enough of them could be closed."""
        if self.room(soon=True):
            return True  # closed already: its descriptor is on its way back
        if close_idle is None or not someone_waiting(listener):
            return False  # never close a connection for nobody
        for conn in self._idle_longest_first():
            # Checked again just before: it may have woken since the look. The server's
            # close_idle says no to a connection mid-request or with bytes still to send.
            if conn not in self.held or quiet_for(conn) < MIN_IDLE:
                continue
            try:
                fd = conn.fileno()
                file_id = _file_id(fd)
            except OSError:  # closed meanwhile by its own thread
                continue
            if close_idle(conn):
                self.closed(conn)
                self.closing[fd] = file_id
                counters.add(evicted_idle=1)
                if self.room(soon=True):
                    return True
        return False

    def _still_closing(self) -> int:
        """How many closed connections still hold their descriptor: the same socket still
        behind its number. Each is one ``fstat``, and only just after an eviction."""
        for fd, file_id in list(self.closing.items()):
            try:
                if _file_id(fd) == file_id:
                    continue
            except OSError:  # closed, and not reused yet
                pass
            del self.closing[fd]
        return len(self.closing)

    def _idle_longest_first(self) -> Iterator[Any]:
        """Connections quiet for MIN_IDLE, idle longest first (the kernel counts in clock ticks
        of a few ms: among equals, the one accepted first). A look asks the kernel about every
        connection, so its list serves the next evictions too; a new look is taken once it
        runs out."""
        while self._idlest:
            yield self._idlest.pop()
        ages = [(quiet_for(conn, queues=False), conn) for conn in list(self.held)]
        ages.sort(key=lambda age_conn: -age_conn[0])  # stable: among equals, accepted first
        self._idlest = [conn for age, conn in reversed(ages) if age >= MIN_IDLE]  # pop(): oldest
        while self._idlest:
            yield self._idlest.pop()


def _file_id(fd: int) -> tuple[int, int]:
    """What a descriptor number stands for now: (device, inode) of its file or socket."""
    stat = os.fstat(fd)
    return stat.st_dev, stat.st_ino


def someone_waiting(listener: socket.socket) -> bool:
    """True if a client waits in the listen backlog (asked with the real, un-patched poll)."""
    poller = original("select", "poll")()
    poller.register(listener, select.POLLIN)
    return bool(poller.poll(0))


TCP_INFO = getattr(socket, "TCP_INFO", None)  # Linux


def quiet_for(conn: Any, queues: bool = True) -> float:
    """Seconds since the kernel last sent or received data on TCP connection ``conn`` (Linux's
    ``TCP_INFO``). 0.0 where the kernel does not say, for a closed socket, and (``queues``)
    while bytes wait in its queues: a request not read yet (FIONREAD), or a reply the client's
    kernel has not acknowledged (TIOCOUTQ: its buffer is full, the client is not reading)."""
    if TCP_INFO is None:
        return 0.0
    try:
        info = conn.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 64)
        if queues and (_queued(conn, termios.FIONREAD) or _queued(conn, termios.TIOCOUTQ)):
            return 0.0
    except OSError:
        return 0.0
    # struct tcp_info: tcpi_last_data_sent, tcpi_last_ack_sent, tcpi_last_data_recv, in ms
    sent_ms, _, received_ms = struct.unpack_from("3I", info, 44)
    return min(sent_ms, received_ms) / 1000


def _queued(conn: Any, request: int) -> int:
    """Bytes in a socket's receive queue (FIONREAD) or send queue (TIOCOUTQ: not yet acked)."""
    got = fcntl.ioctl(conn.fileno(), request, b"\0\0\0\0")
    return int(struct.unpack("i", got)[0])


class AcceptsThroughDoor:
    """Mix into a gevent server class (``StreamServer``, ``WSGIServer``): it accepts through a
    ``Door``. Set ``per_client`` on the class if a client may hold more than its socket. The
    door may close a connection only while its handler waits for the client's next request
    (``with self.between_requests(conn):``), never one with a request in progress, which would
    lose its reply or its upload; ``goodbye(conn)`` may tell the client why first. (A server
    with its own idea of idle overrides ``close_idle(conn)``.) When the kernel says EMFILE all
    the same, gevent pauses accepting on its own (10 ms, doubling to 1 s) and logs it; we count
    it."""

    per_client = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.door = Door(self.per_client)
        self.idle: set[Any] = set()  # connections waiting between requests
        self._reopen: Any = None  # the gevent timer that ends a pause
        super().__init__(*args, **kwargs)

    @contextmanager
    def between_requests(self, conn: Any, really: bool = True) -> Iterator[None]:
        """While the handler waits for ``conn``'s next request (if ``really``), the door may
        close it: the handler's recv then gets an OSError (or EOF), and it ends."""
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
        conn.close()
        return True

    def do_read(self) -> Any:  # gevent calls it in its hub when the listener is readable
        listener = self.socket  # type: ignore[attr-defined]  # the server class's own
        if not self.door.room():
            if not self.door.make_room(listener, self.close_idle):
                counters.add(accept_paused=1)
                self._pause()
                return None  # nothing accepted: the client waits in the backlog
            if not self.door.room():
                return None  # gevent closes the socket in this loop pass: accept in the next
        try:
            accepted = super().do_read()  # type: ignore[misc]  # the server class's own
        except OSError:  # EMFILE: gevent pauses accepting, then retries
            counters.add(accept_paused=1)
            raise
        if accepted:
            self.door.took(accepted[0])
        return accepted

    def do_close(self, conn: Any, *args: Any) -> None:  # gevent calls it when a handler ends
        self.door.closed(conn)
        super().do_close(conn, *args)  # type: ignore[misc]

    def _pause(self) -> None:
        """Stop watching the listener for ACCEPT_PAUSE, with gevent's own loop timer."""
        self.stop_accepting()  # type: ignore[attr-defined]
        if self._reopen is not None:
            self._reopen.close()
        self._reopen = self.loop.timer(ACCEPT_PAUSE)  # type: ignore[attr-defined]
        self._reopen.start(self._resume)

    def _resume(self) -> None:
        if self.started:  # type: ignore[attr-defined]  # not stopped meanwhile
            self.start_accepting()  # type: ignore[attr-defined]
