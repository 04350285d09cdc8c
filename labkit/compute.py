"""Lesson 10's compute protocol: small requests, and requests that burn the CPU.

One request per line, ASCII, at most ``MAX_LINE`` bytes with its ``\\n``::

    PING <token>   ->  PONG <token> <pid>      token: 1-64 of A-Z a-z 0-9 _ -
    WORK <ms>      ->  DONE <ms> <pid>         after burning <ms> of CPU time (1..MAX_MS)
    anything else  ->  ERR <reason>            and the connection stays open
    a longer line  ->  ERR line too long       and the server closes the connection

``<pid>`` is the process that answered: a pre-fork worker answers with its own, which is how a
client counts the spread over workers. Every compute server frames with ``take_lines`` and
answers with ``answer`` (or ``parse``, then ``burn`` wherever it likes, then ``reply``), so
that each server shows only how it waits. ``wsgi_app`` is the same protocol over HTTP, for
gunicorn: ``GET /ping?token=T`` and ``GET /work?ms=N``.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, wait
from typing import Any
from urllib.parse import parse_qs

from labkit.child import original

__all__ = [
    "MAX_LINE",
    "MAX_MS",
    "TOO_LONG",
    "burn",
    "parse",
    "reply",
    "answer",
    "take_lines",
    "process_pool",
    "stop_pool",
    "wsgi_app",
]

MAX_LINE = 1024  # bytes in one request line, its b"\n" included
MAX_MS = 5000  # the longest WORK request
TOO_LONG = b"ERR line too long\n"  # then close: the client is not speaking our protocol
TOKEN = re.compile(rb"[A-Za-z0-9_-]{1,64}")
MS = re.compile(rb"[0-9]{1,4}")  # at most 4 digits: never int() of a huge number
PARENT_POLL = 0.25  # seconds between a pool worker's looks at its parent


def burn(ms: int) -> None:
    """Use ``ms`` milliseconds of this thread's CPU time in pure Python, holding the GIL (it
    lets go when another thread, having waited ``sys.getswitchinterval()`` for it, asks). The
    clock is this thread's CPU time: on a busy machine the wall time is longer, the work the
    same."""
    clock = time.thread_time
    end = clock() + ms / 1000
    x = 0
    while clock() < end:
        for i in range(2000):  # ~0.1 ms of arithmetic between two looks at the clock
            x = (x * 31 + i) % 1_000_003


def parse(line: bytes) -> tuple[str, ...]:
    """One request line (without its b"\\n") as ``("PING", token)``, ``("WORK", ms)`` or
    ``("ERR", reason)``."""
    words = line.split()  # a trailing b"\r" (telnet, nc -C) is whitespace too
    command = words[0] if words else b""
    if command == b"PING":
        if len(words) == 2 and TOKEN.fullmatch(words[1]):
            return ("PING", words[1].decode())
        return ("ERR", "PING needs one token: 1-64 letters, digits, _ or -")
    if command == b"WORK":
        if len(words) == 2 and MS.fullmatch(words[1]) and 1 <= int(words[1]) <= MAX_MS:
            return ("WORK", str(int(words[1])))
        return ("ERR", f"WORK needs one whole number of milliseconds, 1 to {MAX_MS}")
    return ("ERR", "empty line" if not words else "unknown command: say PING or WORK")


def reply(request: tuple[str, ...], pid: int) -> bytes:
    """The reply line to a parsed request whose work (if any) is done."""
    kind, arg = request
    if kind == "PING":
        return f"PONG {arg} {pid}\n".encode()
    if kind == "WORK":
        return f"DONE {arg} {pid}\n".encode()
    return f"ERR {arg}\n".encode()


def answer(line: bytes, pid: int) -> bytes:
    """The whole protocol for one line: parse it, burn the CPU it asks for, and reply."""
    request = parse(line)
    if request[0] == "WORK":
        burn(int(request[1]))
    return reply(request, pid)


def take_lines(buffer: bytearray) -> tuple[list[bytes], bool]:
    """Cut the complete lines (without their b"\\n") out of a receive buffer; what is left is
    the start of the next line. The flag says a line is over MAX_LINE: answer the lines
    returned, then send TOO_LONG and close."""
    end = buffer.rfind(b"\n")
    lines = bytes(buffer[:end]).split(b"\n") if end != -1 else []
    del buffer[: end + 1]
    for i, line in enumerate(lines):
        if len(line) >= MAX_LINE:
            return lines[:i], True
    return lines, len(buffer) >= MAX_LINE


# -- a process pool that dies with its server ----------------------------------------------------
def _follow(parent: int) -> None:
    """A pool worker's initializer: a real thread exits the worker once its parent is gone
    (a worker blocked waiting for work, or burning, would otherwise outlive a killed server)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(0)

    original("_thread", "start_new_thread")(watch, ())


def process_pool(size: int) -> ProcessPoolExecutor:
    """``size`` worker processes for ``burn``, started now (call it before opening sockets).

    * Start method ``spawn``: each worker is a fresh ``python``. ``fork`` (Linux's default
      before Python 3.14) would copy this process: every open socket, and any lock that one
      of our other threads held at that moment, still locked, with no thread to unlock it.
    * The ``__main__`` guard: a spawned worker runs our main file again under the name
      ``__mp_main__``, so a server's ``if __name__ == "__main__":`` keeps it from serving.
    * Pickling: each call sends the function by name (``labkit.compute.burn``) and its
      arguments as bytes; the worker imports the function and runs it.
    * Start-up: starting a worker and importing ``labkit.compute`` takes far longer than a
      call, so we wait here until every worker has run one task.

    multiprocessing adds one more child, its resource tracker, which exits when we and the
    workers are gone. Each worker exits within PARENT_POLL seconds once this process is gone,
    even after a SIGKILL."""
    pool = ProcessPoolExecutor(
        size,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_follow,
        initargs=(os.getpid(),),
    )
    wait([pool.submit(time.sleep, 0.2) for _ in range(size)])  # one each: all of them start
    return pool


def start_pool(args: Any) -> Callable[[], None] | None:
    """A compute server's ``setup``: with ``--offload pool``, start ``args.pool`` before READY
    (and before any client socket exists) and return its clean-up; otherwise ``args.pool`` is
    None."""
    args.pool = process_pool(args.pool_size) if args.offload == "pool" else None
    pool = args.pool
    return (lambda: stop_pool(pool)) if pool else None


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool at once, for a server's ``at_stop``: its workers are killed, even one that
    is burning (``shutdown`` alone would let it finish; the parent watch would end it too, but
    only after the server is gone)."""
    workers = list(getattr(pool, "_processes", {}).values())  # no public name for them
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.kill()


# -- the same protocol over HTTP, for gunicorn -----------------------------------------------------
def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``GET /ping?token=T`` -> ``PONG T <pid>``; ``GET /work?ms=N`` -> ``DONE N <pid>``
    (after burning N ms of CPU); a bad query -> 400 ``ERR ...``; another path -> 404."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    path = environ.get("PATH_INFO", "")
    requests = {"/ping": ("PING", "token"), "/work": ("WORK", "ms")}
    if path not in requests or environ.get("REQUEST_METHOD", "GET") != "GET":
        status, body = "404 Not Found", b"ERR try GET /ping?token=T or GET /work?ms=N\n"
    else:
        command, name = requests[path]
        value = query.get(name, [""])[0]
        line = f"{command} {value}".encode("ascii", "replace")[:MAX_LINE]
        body = answer(line, os.getpid())
        status = "400 Bad Request" if body.startswith(b"ERR") else "200 OK"
    start_response(
        status, [("Content-Type", "text/plain; charset=ascii"), ("Content-Length", str(len(body)))]
    )
    return [body]
