"""Tools for the fuzz tests: throw bad clients at a running server, then check it is whole.

Every teaching server (except those named broken on purpose) must come out of a storm alive,
answering a good client byte for byte, with its descriptors and memory back near where they
were before. These helpers read the server's own numbers from ``/proc`` (Linux) and make the
storms; each fuzz test decides what a storm is for its protocol.

    with labkit.serve("selectors_echo") as srv:
        before = Health.of(srv.pid)
        with flood(srv.host, srv.port, 2_000):          # hold many connections at once
            ...
        Health.of(srv.pid).assert_back_to(before)
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from processes import pid_alive

# The fuzz (random bytes with protocol words, non-ASCII digits and nasty names mixed in) is the
# capstone grader's: the course's servers face the same storms a student's server does.
from labkit.grading.fuzz import NASTY_NAMES, NASTY_NUMBERS, junk  # noqa: F401 (re-exported)
from labkit.proc import open_files as fd_count
from labkit.proc import status_kib as rss_kib


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    return pid_alive(pid)


def cap_open_files(pid: int, limit: int) -> None:
    """Lower a running server's open-file limit, so a flood reaches it quickly."""
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))


def part_files(folder) -> list[str]:
    """Unfinished uploads (the file servers' ``.part-*`` files) in ``folder``."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".part-"))


def no_part_files_left(folder, wait: float = 5.0) -> None:
    """Wait until the server has deleted every unfinished upload in ``folder``; fail after
    ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while part_files(folder):
        assert time.monotonic() < deadline, "unfinished uploads left on disk"
        time.sleep(0.05)


@dataclass
class Health:
    fds: int
    rss_kib: int

    @classmethod
    def of(cls, pid: int) -> Health:
        return cls(fd_count(pid), rss_kib(pid))

    def assert_back_to(
        self,
        before: Health,
        pid: int,
        fd_slack: int = 8,
        rss_slack_kib: int = 16 * 1024,
        wait: float = 10.0,
    ) -> None:
        """Wait (servers close idle sockets on their own time) until descriptors and memory are
        back near ``before``; fail with both numbers if they never are."""
        deadline = time.monotonic() + wait
        now = self
        while time.monotonic() < deadline:
            now = Health.of(pid)
            if now.fds <= before.fds + fd_slack and now.rss_kib <= before.rss_kib + rss_slack_kib:
                return
            time.sleep(0.1)
        raise AssertionError(f"server not back to baseline: {before} before, {now} after")


@contextlib.contextmanager
def flood(host: str, port: int, count: int, timeout: float = 5.0) -> Iterator[list[socket.socket]]:
    """Open up to ``count`` connections and hold them; stop early when the OS says no."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                socks.append(socket.create_connection((host, port), timeout=timeout))
            except OSError:
                break
        yield socks
    finally:
        for s in socks:
            s.close()


def send_half_close_read(host: str, port: int, data: bytes, timeout: float = 20.0) -> bytes:
    """Send ``data``, shut our sending side (SHUT_WR), and return all the server sends until it
    closes. Sends from a thread while reading, so a server that answers as it reads (an echo)
    never deadlocks against us; a server that never closes fails with a timeout."""
    with socket.create_connection((host, port), timeout=timeout) as s:

        def send_all() -> None:
            with contextlib.suppress(OSError):
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        received = bytearray()
        while chunk := s.recv(65536):
            received += chunk
        sender.join(timeout)
        return bytes(received)


def send_and_vanish(
    host: str, port: int, data: bytes, half_close: bool = False, timeout: float = 5.0
) -> None:
    """Connect, send ``data`` (as much as the server takes), then leave without reading:
    by half-closing (shutdown SHUT_WR, then close) or by a reset (SO_LINGER 0)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        with contextlib.suppress(OSError):
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            else:
                s.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
