"""What every teaching server shares, so that each server module shows only its idea.

A server module defines ``serve(listener, args)`` and ends with::

    if __name__ == "__main__":
        launch.run(serve, __doc__)

``run`` then does the plumbing, the same for every server:

* parses ``--host`` (default ``127.0.0.1``) and ``--port`` (default ``0``: the OS picks a free
  port). Binding anything but loopback needs ``--allow-remote``: many students share one machine.
* raises its own soft open-file limit to the hard limit (containers start at 1,024), runs the
  server's ``setup(args)`` (folders, files to load: a bad option fails here, before READY, so
  ``labkit.serve`` raises with the log tail instead of returning a handle to a dead process),
* binds and listens, then prints one line ``READY {"host": ..., "port": ..., "pid": ...}``
  so the parent (``labkit.serve``) knows where the server is.
* follows its parent (``labkit.child``): a real OS thread reads stdin, and EOF there means
  the parent (a Jupyter kernel, a test) is gone; another watches the parent itself. Either
  way the server exits at once: it never outlives its owner. The line ``stats`` on stdin
  makes the server print ``STATS {...}`` with its counters.
* handles SIGTERM (and Ctrl-C) in a dedicated thread: it flushes output and exits with code 0
  at once, whatever the other threads are blocked in (the OS closes the sockets).

Try it: ``python -m labkit.servers.selectors_echo --port 0``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Final, Literal

from labkit.child import at_stop, emit, exit_now, follow_parent, real_lock, start_signal_thread
from labkit.limits import raise_open_file_limit

__all__ = [
    "run",
    "counters",
    "emit",
    "parser",
    "at_stop",
    "SetupError",
    "accept",
    "accept_waiting",
    "AcceptPause",
    "ACCEPT_PAUSE",
    "PAUSED",
    "CountsAcceptPauses",
    "bind",
    "reserve_port",
]


class SetupError(Exception):
    """A server's setup found a bad option: the message is printed and the server exits."""


class Counters:
    """Thread-safe named counters (connections, bytes_in, ...) the parent can read."""

    def __init__(self) -> None:
        self._lock = real_lock()
        self._values: Counter[str] = Counter()

    def add(self, **amounts: int) -> None:
        with self._lock:
            self._values.update(amounts)

    def peak(self, **values: int) -> None:
        """Keep the largest value seen for each name (a high-water mark)."""
        with self._lock:
            for name, value in values.items():
                self._values[name] = max(self._values[name], value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


counters = Counters()


# -- accepting when out of descriptors ------------------------------------------------------------
# With every descriptor in use (EMFILE/ENFILE), accept() fails and the client stays queued in the
# listen backlog. Retrying at once would only spin, so every server pauses accepting for a moment
# (as gevent's own servers do) and goes on serving the clients it has.
ACCEPT_PAUSE = 0.1  # seconds
PAUSED: Final = "paused"  # what accept() returns when out of descriptors


def accept(listener: socket.socket) -> socket.socket | Literal["paused"] | None:
    """``listener.accept()`` that survives running out of descriptors: the new socket; None if
    nobody is waiting (a non-blocking listener, or the client gave up); PAUSED, counted as
    ``accept_paused``, when out of descriptors: the caller stops accepting for ACCEPT_PAUSE."""
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, ConnectionAbortedError):
        return None
    except OSError:  # EMFILE/ENFILE: no descriptor for it yet
        counters.add(accept_paused=1)
        return PAUSED
    return conn


def accept_waiting(listener: socket.socket) -> socket.socket:
    """For a blocking server: wait for the next client; out of descriptors, sleep and retry
    (under gevent's monkey-patching this sleep lets the other greenlets run)."""
    while not isinstance(conn := accept(listener), socket.socket):
        if conn == PAUSED:
            time.sleep(ACCEPT_PAUSE)
    return conn


class AcceptPause:
    """For an event-loop server: while out of descriptors, stop watching the listener.

    if launch.accept(listener) == launch.PAUSED: unwatch it; pause.begin()
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


class CountsAcceptPauses:
    """Mix into a gevent server class (StreamServer, WSGIServer): gevent already pauses
    accepting when out of descriptors and retries; this also counts it (``accept_paused``)."""

    def do_read(self):  # gevent's server calls it to accept one client
        try:
            return super().do_read()  # type: ignore[misc]  # the server class's own
        except OSError:  # EMFILE: gevent pauses accepting, then retries
            counters.add(accept_paused=1)
            raise


def parser(description: str | None) -> argparse.ArgumentParser:
    first_line = (description or "").strip().split("\n")[0]
    p = argparse.ArgumentParser(description=first_line)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 lets the OS choose")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding a non-loopback address (off: this is a shared machine)",
    )
    p.add_argument("--backlog", type=int, default=4096, help="listen() backlog")
    p.add_argument(
        "--client-timeout",
        type=float,
        default=30.0,
        help="seconds a blocking server waits on a silent client before dropping it",
    )
    return p


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host(args: argparse.Namespace) -> None:
    if not is_loopback(args.host) and not args.allow_remote:
        sys.exit(
            f"refusing to bind {args.host!r}: this course serves on loopback only "
            "(127.0.0.1). Pass --allow-remote if you really mean it."
        )


def bind(args: argparse.Namespace) -> socket.socket:
    """The usual listening socket on ``--host``/``--port``."""
    _check_host(args)
    return socket.create_server((args.host, args.port), backlog=args.backlog)


def reserve_port(args: argparse.Namespace) -> socket.socket:
    """A socket bound with ``SO_REUSEPORT`` on ``--host``/``--port`` that does NOT listen: it
    holds the port (no other program can take it) while the server's workers each bind and
    listen on their own ``SO_REUSEPORT`` socket there. Not listening, it is never handed a
    connection: the kernel spreads them over the listening sockets of the port only."""
    _check_host(args)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((args.host, args.port))
    except OSError:
        sock.close()
        raise
    return sock


def run(
    serve: Callable[[socket.socket, argparse.Namespace], None],
    description: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
    setup: Callable[[argparse.Namespace], Callable[[], None] | None] | None = None,
    binder: Callable[[argparse.Namespace], socket.socket] | None = None,
) -> None:
    """Parse arguments, set up, bind, announce READY, and run ``serve`` until stopped.

    ``setup(args)`` runs before READY and may add to ``args`` what ``serve`` needs; it raises
    ``SetupError`` (or ``OSError``) for a bad option, which ends the server with that message.
    If it returns a function, that function runs when the server stops (``at_stop``).
    ``binder(args)`` replaces ``bind`` for a server that binds its own way (workers with
    ``SO_REUSEPORT``, a program it starts): READY follows its return, with the port of the
    socket it returns, so it also waits until the server can answer.
    """
    p = parser(description)
    if add_arguments:
        add_arguments(p)
    args = p.parse_args(argv)
    raise_open_file_limit()
    start_signal_thread()  # before setup: a stop during setup still cleans up
    try:
        cleanup = setup(args) if setup else None
        if cleanup:
            at_stop(cleanup)
        listener = (binder or bind)(args)
    except (SetupError, OSError) as err:
        sys.stderr.write(f"cannot start: {err}\n")
        exit_now(2)
    follow_parent({"stats": lambda: emit("STATS", counters.snapshot())})
    host, port = listener.getsockname()[:2]
    emit("READY", {"host": host, "port": port, "pid": os.getpid()})
    code = 0
    try:
        serve(listener, args)
    except BaseException:  # a crash: show why in the log, then clean up all the same
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        listener.close()
    exit_now(code)
