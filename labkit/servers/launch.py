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
* starts the *lifeline*: a real OS thread that reads stdin. EOF on stdin means the parent
  (a Jupyter kernel, a test) is gone, and the server exits at once; it never outlives its owner.
  The line ``stats`` on stdin makes the server print ``STATS {...}`` with its counters.
* handles SIGTERM (and Ctrl-C) in a dedicated thread: it flushes output and exits with code 0
  at once, whatever the other threads are blocked in (the OS closes the sockets). Signals are
  blocked in every other thread: a signal that lands on a thread blocked in ``read`` would
  otherwise never wake the main thread from ``accept`` or ``select``.

Try it: ``python -m labkit.servers.selectors_echo --port 0``.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import sys
from collections import Counter
from typing import Any, Callable

from labkit.limits import raise_open_file_limit

__all__ = ["run", "counters", "emit", "parser", "at_stop", "SetupError"]


class SetupError(Exception):
    """A server's setup found a bad option: the message is printed and the server exits."""


_cleanups: list[Callable[[], None]] = []


def at_stop(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` when the server stops, however it stops (SIGTERM, Ctrl-C, the parent
    gone, or ``serve`` returning). Used to remove what a server left on disk."""
    _cleanups.append(cleanup)


def _exit(code: int) -> None:
    """Leave at once (other threads may be blocked in ``accept``), after our clean-ups."""
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception as err:            # a clean-up that fails must not keep us alive
            sys.stderr.write(f"clean-up failed: {err!r}\n")
    with _print_lock:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _original(module: str, name: str) -> Any:
    """The un-patched function, even when gevent has monkey-patched this process."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey
        return monkey.get_original(module, name)
    return getattr(__import__(module), name)


def _real_lock() -> Any:
    """An OS-level lock, also under gevent: the lifeline thread is a real thread, not a
    greenlet. Never held across anything that could switch greenlets."""
    return _original("_thread", "allocate_lock")()


class Counters:
    """Thread-safe named counters (connections, bytes_in, ...) the parent can read."""

    def __init__(self) -> None:
        self._lock = _real_lock()
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
_print_lock = _real_lock()


def emit(tag: str, payload: dict[str, Any]) -> None:
    """Print one protocol line (``READY {...}``, ``STATS {...}``) for the parent to read."""
    with _print_lock:
        sys.stdout.write(f"{tag} {json.dumps(payload)}\n")
        sys.stdout.flush()


def parser(description: str | None) -> argparse.ArgumentParser:
    first_line = (description or "").strip().split("\n")[0]
    p = argparse.ArgumentParser(description=first_line)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 lets the OS choose")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address (off: this is a shared machine)")
    p.add_argument("--backlog", type=int, default=4096, help="listen() backlog")
    p.add_argument("--client-timeout", type=float, default=30.0,
                   help="seconds a blocking server waits on a silent client before dropping it")
    return p


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _lifeline() -> None:
    """Runs in a real OS thread: exit when the parent closes our stdin, answer ``stats``."""
    read = _original("os", "read")
    pending = b""
    while True:
        try:
            chunk = read(0, 4096)  # blocks this thread only; it is not a greenlet
        except OSError:
            chunk = b""
        if not chunk:              # EOF: whoever started us is gone
            _exit(0)
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip() == b"stats":
                emit("STATS", counters.snapshot())


def start_lifeline() -> None:
    start_thread = _original("_thread", "start_new_thread")
    start_thread(_lifeline, ())


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _wait_for_stop_signal() -> None:
    """Runs in a real OS thread: the only thread that receives SIGTERM/SIGINT."""
    signal.sigwait(STOP_SIGNALS)
    _exit(0)


def start_signal_thread() -> None:
    # Block the stop signals here, before any other thread exists, so that every thread
    # started later inherits the block and sigwait() in the signal thread receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    _original("_thread", "start_new_thread")(_wait_for_stop_signal, ())


def bind(args: argparse.Namespace) -> socket.socket:
    if not is_loopback(args.host) and not args.allow_remote:
        sys.exit(f"refusing to bind {args.host!r}: this course serves on loopback only "
                 "(127.0.0.1). Pass --allow-remote if you really mean it.")
    return socket.create_server((args.host, args.port), backlog=args.backlog)


def run(serve: Callable[[socket.socket, argparse.Namespace], None], description: str | None,
        add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
        argv: list[str] | None = None,
        setup: Callable[[argparse.Namespace], None] | None = None) -> None:
    """Parse arguments, set up, bind, announce READY, and run ``serve`` until stopped.

    ``setup(args)`` runs before READY and may add to ``args`` what ``serve`` needs; it raises
    ``SetupError`` (or ``OSError``) for a bad option, which ends the server with that message.
    """
    p = parser(description)
    if add_arguments:
        add_arguments(p)
    args = p.parse_args(argv)
    raise_open_file_limit()
    start_signal_thread()          # before setup: a stop during setup still cleans up
    try:
        if setup:
            setup(args)
        listener = bind(args)
    except (SetupError, OSError) as err:
        sys.stderr.write(f"cannot start: {err}\n")
        _exit(2)
    if not sys.stdin.isatty():   # run by a parent: follow it; run by hand: Ctrl-C stops us
        start_lifeline()
    host, port = listener.getsockname()[:2]
    emit("READY", {"host": host, "port": port, "pid": os.getpid()})
    code = 0
    try:
        serve(listener, args)
    except BaseException:          # a crash: show why in the log, then clean up all the same
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        listener.close()
    _exit(code)
