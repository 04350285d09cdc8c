"""How every teaching server starts, runs and stops, the same for all: arguments, READY, a
lifeline to its parent, shutdown. Each server module then shows only its idea.

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
* with ``--count-calls``, counts the server's own system calls (``labkit.count_calls``).

The counters a server keeps are ``launch.counters`` (``labkit.counters``); how it accepts
clients near the open-file limit is ``labkit.accept_policy``.

Try it: ``python -m labkit.servers.selectors_echo --port 0``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from collections.abc import Callable

from labkit.child import at_stop, emit, exit_now, follow_parent, start_signal_thread
from labkit.counters import counters  # launch.counters: what a server counts
from labkit.limits import raise_open_file_limit

__all__ = [
    "run",
    "counters",
    "emit",
    "parser",
    "at_stop",
    "SetupError",
    "bind",
    "reserve_port",
]


class SetupError(Exception):
    """A server's setup found a bad option: the message is printed and the server exits."""


# Every server's own options (add_arguments, e.g. in servers/latency_http.py) are declared in
# this same argparse form, on purpose: one option, one add_argument call.
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
    p.add_argument(
        "--count-calls",
        action="store_true",
        help="count the server's recv, send and epoll/poll/select calls in its stats "
        "(labkit/count_calls.py; under gevent, epoll_ctl is not counted)",
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
    if args.count_calls:
        from labkit.count_calls import count_system_calls  # only then: its patches stay out

        count_system_calls()
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
