"""Clients of the lesson 08 file server: download a file, upload it back, verify every byte.

Two ways to run N clients here, both checking the same things (the SHA-256 of each download
against the file and against the server's header, and the server's confirmation of each upload):

* ``threads``:   one thread per client, blocking sockets (the original course's way);
* ``selectors``: one thread for all clients, each a generator task on lesson 05's event loop.

A third, ``gevent`` (the thread code on greenlets, in a monkey-patched child process), is
``labkit.runs.run_file_clients``'s: it runs ``labkit/scripts/gevent_file_clients.py``.

Each client's download and upload are recorded as Spans ("download", "upload"). Progress counts
three steps per client (connected, downloaded, uploaded), so it moves from the first connect.
"""

from __future__ import annotations

import hashlib
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labkit.limits import check_client_count
from labkit.progress import Progress, Throttled
from labkit.protocol import SIZE, End, Parser, ProtocolError, Response, request_bytes
from labkit.timeline import Recorder, Span, WithSpans

__all__ = [
    "FileLoadResult",
    "ReplyReader",
    "get_file",
    "put_file",
    "list_files",
    "get_file_buggy",
    "run_file_clients",
    "MODES",
]

MODES = ("threads", "selectors")  # in this process; labkit.runs adds "gevent"


# -- one request, blocking -------------------------------------------------------------------
class ReplyReader:
    """Assembles reply frames from a socket's bytes, however they are split across recv
    calls, and keeps what arrived early (the start of the next reply) for later."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.parser = sock, Parser("response")
        self.events: deque[Any] = deque()  # what the parser found, not yet taken
        self.header: Response | None = None
        self.body = bytearray()

    def take(self) -> tuple[Response, bytes] | None:
        """The next complete reply, if the bytes received so far hold one."""
        while self.events:
            event = self.events.popleft()
            if isinstance(event, Response):
                self.header, self.body = event, bytearray()
            elif isinstance(event, End):
                assert self.header, "the parser yields a reply's header before its end"
                return self.header, bytes(self.body)
            else:
                self.body += event.data
        return None

    def receive(self) -> None:
        """One recv (it must not block: the socket is readable, or blocking)."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection in the middle of a reply")
        self.events.extend(self.parser.feed(chunk))

    def next(self) -> tuple[Response, bytes]:
        """Block until the next reply is complete."""
        while (reply := self.take()) is None:
            self.receive()
        return reply


def get_file(sock: socket.socket, name: str) -> tuple[Response, bytes]:
    sock.sendall(request_bytes("GET", name))
    return ReplyReader(sock).next()


def put_file(sock: socket.socket, name: str, data: bytes) -> Response:
    sock.sendall(request_bytes("PUT", name, data))
    return ReplyReader(sock).next()[0]


def list_files(sock: socket.socket) -> dict[str, int]:
    sock.sendall(request_bytes("LIST"))
    _, body = ReplyReader(sock).next()
    listing = {}
    for line in body.decode().splitlines():
        name, _, size = line.rpartition(" ")
        if not name or not SIZE.fullmatch(size):  # int() alone would take "²" or "١٠"
            raise ProtocolError(400, f"bad LIST line from the server: {line!r}")
        listing[name] = int(size)
    return listing


def get_file_buggy(sock: socket.socket, name: str) -> bytes:
    """BROKEN ON PURPOSE, the original course's client: it assumes the first recv returns the
    header alone. When the header and the first data arrive together, it breaks."""
    sock.sendall(request_bytes("GET", name))
    status, size, sha = sock.recv(1024).decode().split()  # BUG: one recv != one message
    data = b""
    while len(data) < int(size):
        data += sock.recv(1024)
    return data


# -- results ---------------------------------------------------------------------------------
@dataclass
class FileLoadResult(WithSpans):
    clients: int
    mode: str = "threads"
    downloads_ok: int = 0  # downloads whose SHA-256 matched the file's
    uploads_ok: int = 0  # uploads the server confirmed with the right hash
    mismatches: int = 0  # bytes that came back different
    errors: list[str] = field(default_factory=list)
    bytes_moved: int = 0
    elapsed: float = 0.0
    spans: list[Span] = field(default_factory=list)

    @property
    def served(self) -> int:
        return min(self.downloads_ok, self.uploads_ok)

    def summary(self) -> str:
        return (
            f"{self.mode}: {self.clients:,} clients, {self.downloads_ok:,} downloads and "
            f"{self.uploads_ok:,} uploads verified, {self.mismatches} mismatches, "
            f"{len(self.errors)} errors, {self.elapsed:.2f} s, "
            f"{self.bytes_moved / max(self.elapsed, 1e-9) / 1e6:.1f} MB/s"
        )


STEPS_PER_CLIENT = 3  # connected, downloaded, uploaded


class _Tally:
    """Thread-safe bookkeeping shared by the clients of one run, steps done included."""

    def __init__(self, result: FileLoadResult, expected_sha: str) -> None:
        self.result, self.expected, self.lock = result, expected_sha, threading.Lock()
        self.steps = 0
        self.total = STEPS_PER_CLIENT * result.clients

    def connected(self) -> None:
        with self.lock:
            self.steps += 1

    def download(self, header: Response, body: bytes) -> None:
        good = header.ok and hashlib.sha256(body).hexdigest() == header.sha256 == self.expected
        with self.lock:
            self.result.downloads_ok += good
            self._moved(good, body)

    def upload(self, header: Response, body: bytes) -> None:
        good = header.ok and header.sha256 == hashlib.sha256(body).hexdigest()
        with self.lock:
            self.result.uploads_ok += good
            self._moved(good, body)

    def _moved(self, good: bool, body: bytes) -> None:
        """A transfer done (the caller holds the lock): one step, its bytes, and a mismatch
        unless it verified."""
        self.steps += 1
        self.result.mismatches += not good
        self.result.bytes_moved += len(body)

    def error(self, who: str, err: Exception) -> None:
        with self.lock:
            self.result.errors.append(f"{who}: {type(err).__name__}: {err}")


def _progress_of(tally: _Tally, progress: Progress | None) -> Callable[..., None]:
    """``show_progress(final=False)``: report the steps done so far, about 100 times a run;
    called from the one thread that runs the clients."""
    report = Throttled(progress)
    return lambda final=False: report(tally.steps, tally.total, final)


# -- threads (and greenlets, once patched) ---------------------------------------------------
def _thread_client(address, name, index, rec, tally, timeout):
    who = f"Client {index}"
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            tally.connected()
            start = time.perf_counter()
            header, body = get_file(sock, name)
            rec.add(who, "download", start, time.perf_counter())
            tally.download(header, body)
            start = time.perf_counter()
            confirmed = put_file(sock, f"upload-{index}-{name}", body)
            rec.add(who, "upload", start, time.perf_counter())
            tally.upload(confirmed, body)
    except (OSError, ValueError) as err:
        tally.error(who, err)


def _run_threads(address, n, name, tally, rec, show_progress, timeout):
    threads = [
        threading.Thread(
            target=_thread_client, daemon=True, args=(address, name, i, rec, tally, timeout)
        )
        for i in range(1, n + 1)
    ]
    for t in threads:
        t.start()
        show_progress()  # clients connect while others start
    deadline = time.monotonic() + timeout * 3
    for t in threads:
        while t.is_alive() and time.monotonic() < deadline:
            t.join(0.1)  # wake up often to move the progress bar
            show_progress()
    show_progress(final=True)


# -- selectors: generator tasks on one event loop --------------------------------------------
def _send_all(sock, data):
    while data:
        yield sock, selectors.EVENT_WRITE
        data = data[sock.send(data) :]  # keep what send did not take


def _read_reply(sock):
    reader = ReplyReader(sock)
    while (reply := reader.take()) is None:
        yield sock, selectors.EVENT_READ  # wait until readable, then recv once
        reader.receive()
    return reply


def client_task(address, name, index, rec, tally, show_progress):
    """One client as a generator task for lesson 05's loop: it yields ``(sock, event)`` to wait,
    downloads the file, uploads it back, and records each transfer as a span."""
    who = f"Client {index}"
    sock = socket.socket()
    sock.setblocking(False)
    try:
        sock.connect_ex(address)
        yield sock, selectors.EVENT_WRITE
        if err := sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            raise ConnectionError(f"connect failed: {err}")
        tally.connected()
        show_progress()
        start = time.perf_counter()
        yield from _send_all(sock, request_bytes("GET", name))
        header, body = yield from _read_reply(sock)
        rec.add(who, "download", start, time.perf_counter())
        tally.download(header, body)
        show_progress()
        start = time.perf_counter()
        yield from _send_all(sock, request_bytes("PUT", f"upload-{index}-{name}", body))
        confirmed, _ = yield from _read_reply(sock)
        rec.add(who, "upload", start, time.perf_counter())
        tally.upload(confirmed, body)
    except (OSError, ValueError) as err:
        tally.error(who, err)
    finally:
        sock.close()
        show_progress()


def run_in_our_loop(address, n, name, tally, rec, show_progress, timeout):
    """``n`` client tasks on lesson 05's generator loop (``labkit.eventloop.generators.run``)."""
    from labkit.eventloop.generators import run

    run([client_task(address, name, i, rec, tally, show_progress) for i in range(1, n + 1)])
    show_progress(final=True)


# -- selectors, ramped: clients start as the server answers ----------------------------------
class _Gate(_Tally):
    """The tally of a ramped run; it also knows which started clients have no reply yet."""

    def __init__(self, result: FileLoadResult, expected_sha: str, limit: int) -> None:
        super().__init__(result, expected_sha)
        self.limit, self.running = limit, None
        self.unanswered: set[Any] = set()  # the tasks (generators) still waiting

    def download(self, header: Response, body: bytes) -> None:
        super().download(header, body)
        self.unanswered.discard(self.running)  # the task that runs now had its first reply

    def open(self) -> bool:
        return len(self.unanswered) < self.limit


def _run_ramped(address, n, name, tally, rec, show_progress, timeout):
    """Lesson 05's loop with a gate in front: a client starts only while fewer than
    ``tally.limit`` are connected (or connecting) without their first reply. Every connection
    in the server's accept queue is one of those, so with the limit below the listen backlog the
    kernel refuses no handshake, and no client waits out the 1 s SYN retry: the run measures
    the server, not the retry timer."""
    clients = (client_task(address, name, i, rec, tally, show_progress) for i in range(1, n + 1))
    with selectors.DefaultSelector() as selector:

        def step(task):  # run the task up to its next wait
            tally.running = task
            try:
                sock, event = next(task)
            except StopIteration:
                tally.unanswered.discard(task)  # done, or failed before its first reply
                return
            selector.register(sock, event, task)

        try:
            while True:
                while tally.open() and (task := next(clients, None)):
                    tally.unanswered.add(task)
                    step(task)
                if not selector.get_map():
                    break  # every client has finished
                if not (events := selector.select(timeout)):
                    raise TimeoutError(f"no socket became ready within {timeout:g} s")
                for key, _ in events:
                    selector.unregister(key.fileobj)
                    step(key.data)
        finally:  # on an error, close the others (their sockets with them)
            for key in list(selector.get_map().values()):
                key.data.close()
    show_progress(final=True)


# labkit.runs.run_file_clients repeats this signature on purpose: the lessons call that one,
# which adds mode "gevent" (these clients in a patched child process, which clients cannot start).
def run_file_clients(
    address: tuple[str, int],
    n_clients: int = 500,
    name: str = "lyrics.txt",
    expected_sha256: str = "",
    mode: str = "threads",
    progress: Progress | None = None,
    timeout: float = 60.0,
    max_unanswered: int | None = None,
) -> FileLoadResult:
    """``n_clients`` clients at once, each: GET ``name``, verify, PUT it back, verify.

    ``max_unanswered`` (mode ``selectors`` only): start clients as the server answers, at most
    that many connected or connecting without their first reply (see ``_run_ramped``)."""
    if mode not in MODES:
        raise ValueError(
            f"mode is one of {MODES} here (gevent runs through labkit.runs), not {mode!r}"
        )
    if max_unanswered is not None and (mode != "selectors" or max_unanswered < 1):
        raise ValueError(f"max_unanswered is a count >= 1 for mode 'selectors', not {mode!r}")
    check_client_count(n_clients)  # a clear message instead of EMFILE
    result, rec = FileLoadResult(n_clients, mode), Recorder()
    if max_unanswered is None:
        tally = _Tally(result, expected_sha256)
        runner = _run_threads if mode == "threads" else run_in_our_loop
    else:
        tally = _Gate(result, expected_sha256, max_unanswered)
        runner = _run_ramped
    start = time.perf_counter()
    runner(address, n_clients, name, tally, rec, _progress_of(tally, progress), timeout)
    result.elapsed = time.perf_counter() - start
    result.spans = list(rec.spans)
    return result
