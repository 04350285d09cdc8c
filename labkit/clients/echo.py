"""One echo round trip done right: send in pieces, read at the same time, check every byte.

Sending everything before reading can deadlock against a correct server once both sides'
socket buffers are full, so this client watches its socket for reading and writing at once.

    >>> from labkit.clients.echo import echo_roundtrip
    >>> echo_roundtrip(("127.0.0.1", port), b"hello")       # doctest: +SKIP
    b'hello'
"""

from __future__ import annotations

import random
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

from labkit import proc

__all__ = [
    "echo_roundtrip",
    "random_pieces",
    "echo_late_reader",
    "LateReader",
    "push_without_reading",
]

STUCK = 0.2  # seconds the kernel takes none of a late reader's bytes: its sending is stuck
QUIET_WAIT = 2.0  # seconds past read_after a late reader waits, at most, for a quiet server


def random_pieces(total: int, rng: random.Random, largest: int = 8192) -> list[int]:
    """Split ``total`` bytes into random piece sizes from 1 to ``largest``."""
    sizes = []
    while total > 0:
        size = min(total, rng.randint(1, largest))
        sizes.append(size)
        total -= size
    return sizes


def echo_roundtrip(
    address: tuple[str, int],
    payload: bytes,
    pieces: list[int] | None = None,
    timeout: float = 20.0,
    read_size: int = 65536,
    read_pause: float = 0.0,
) -> bytes:
    """Send ``payload`` (in ``pieces`` if given), return everything echoed back.

    Stops when as many bytes came back as were sent; raises TimeoutError if the whole
    exchange takes longer than ``timeout``. ``read_pause`` makes a deliberately slow reader.
    """
    pieces = pieces or [len(payload)]
    deadline = time.monotonic() + timeout
    received = bytearray()
    with (
        socket.create_connection(address, timeout=timeout) as sock,
        selectors.DefaultSelector() as sel,
    ):
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        view, offsets = memoryview(payload), _offsets(pieces)
        sent = 0
        while len(received) < len(payload):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"echo: got {len(received)} of {len(payload)} bytes back")
            for _, events in sel.select(min(left, 1.0)):
                if events & selectors.EVENT_WRITE and sent < len(payload):
                    end = next(o for o in offsets if o > sent)
                    sent += _send_some(sock, view[sent:end])
                    if sent == len(payload):  # nothing more to write: stop asking
                        sel.modify(sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    received += _recv_some(sock, read_size)
                    if read_pause:
                        time.sleep(read_pause)
    return bytes(received)


def _offsets(pieces: list[int]) -> list[int]:
    out, total = [], 0
    for size in pieces:
        total += size
        out.append(total)
    return out


def _send_some(sock: socket.socket, data: memoryview) -> int:
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0


def _recv_some(sock: socket.socket, size: int) -> bytes:
    try:
        data = sock.recv(size)
    except BlockingIOError:
        return b""
    if not data:
        raise ConnectionError("the server closed the connection before echoing everything")
    return data


@dataclass(frozen=True)
class LateReader:
    """When a client that reads its echo late starts reading: the one rule lesson 07's client
    (``echo_late_reader``) and the grader's slow reader share.

    It reads nothing for ``read_after`` seconds. Given ``server_pid``, it then waits until its
    own sending is done or stuck (the kernel took none of it for STUCK seconds) and the server
    has gone quiet (``proc.waiting``: it has read all it will), for at most QUIET_WAIT seconds
    more. Then the server has kept, or dropped, all it could. Its receive buffer is small
    (``RCVBUF``), as across a real network, so the kernel cannot hold much of the echo for it.
    """

    read_after: float = 0.5
    server_pid: int | None = None
    RCVBUF: ClassVar[int] = 1 << 16

    def time_to_read(self, elapsed: float, sending_done: bool, since_sent: float) -> bool:
        """``elapsed`` seconds since it connected, ``since_sent`` since the kernel last took
        some of its bytes: may it read now?"""
        if elapsed < self.read_after:
            return False
        if self.server_pid is None or elapsed >= self.read_after + QUIET_WAIT:
            return True
        return (sending_done or since_sent > STUCK) and proc.waiting(self.server_pid)


def echo_late_reader(
    address: tuple[str, int],
    payload: bytes,
    read_after: float = 0.5,
    idle_timeout: float = 1.0,
    server_pid: int | None = None,
) -> bytes:
    """A client that sends everything and reads nothing until its ``LateReader`` rule says so
    (given ``server_pid``, once that server has gone quiet), then reads until nothing more
    comes for ``idle_timeout``. Returns what it got back, which is all of ``payload`` only if
    the server kept every byte while this client was not reading."""
    late = LateReader(read_after, server_pid)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, late.RCVBUF)  # before connect
        sock.settimeout(30)
        sock.connect(address)
        view, sent, took = memoryview(payload), 0, time.monotonic()  # took: when it last sent

        def send_all() -> None:
            nonlocal sent, took
            while sent < len(view) and not done.is_set():
                try:
                    sent += sock.send(view[sent : sent + (1 << 20)])
                    took = time.monotonic()
                except TimeoutError:  # full for a while: the reader below will make room
                    continue
                except OSError:  # the server closed: the reader below keeps what came
                    return

        done = threading.Event()
        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()  # may block: the reader below unblocks it
        started = time.monotonic()
        while not late.time_to_read(
            time.monotonic() - started, not sender.is_alive(), time.monotonic() - took
        ):
            time.sleep(0.02)
        sock.settimeout(idle_timeout)
        received = bytearray()
        while len(received) < len(payload):
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                break  # nothing for a while: the rest is lost
            if not chunk:
                break
            received += chunk
        done.set()
        sender.join(5)
    return bytes(received)


def push_without_reading(
    to: tuple[str, int] | socket.socket,
    offer: int = 64 << 20,
    stuck_after: float = 1.0,
    longest: float = 30.0,
    chunk: bytes = bytes(65536),
) -> int:
    """Send up to ``offer`` bytes, read nothing; return how many the socket took before it
    stayed full for ``stuck_after`` seconds (TCP's flow control pushing back), the server
    closed, or ``longest`` seconds passed. ``to`` is the server's address, or a socket
    connected to it: that one stays open, so the server still holds what it took."""
    with _connected(to) as sock, selectors.DefaultSelector() as sel:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_WRITE)
        sent, deadline = 0, time.monotonic() + longest
        while sent < offer and time.monotonic() < deadline:
            try:
                sent += sock.send(chunk)  # non-blocking: takes what fits, or raises
            except BlockingIOError:  # full: wait until it takes more, or stop
                if not sel.select(stuck_after):
                    break
            except OSError:  # the server closed the connection: it takes no more
                break
        return sent


@contextmanager
def _connected(to: tuple[str, int] | socket.socket) -> Iterator[socket.socket]:
    """The socket given, left open; or a new connection to the address given, closed after."""
    if isinstance(to, socket.socket):
        yield to
        return
    with socket.create_connection(to, timeout=5) as sock:
        yield sock
