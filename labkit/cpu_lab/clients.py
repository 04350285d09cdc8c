"""Clients of the compute protocol (lesson 10): small PINGs, one big WORK, and who answered.

The protocol is one ASCII line each way: ``PING <token>`` -> ``PONG <token> <pid>``, and
``WORK <ms>`` -> ``DONE <ms> <pid>`` once the server has burned ``ms`` milliseconds of CPU.
``<pid>`` names the process that answered, so a client can tell pre-fork workers apart.
gunicorn serves the same two requests over HTTP (``GET /ping?token=T``, ``GET /work?ms=N``)::

    with connect(address) as conn:               # or connect(address, protocol="http")
        ping(conn, "a1")                         # ("a1", 4242): the token, the server's pid
        work(conn, 300)                          # 4242, after 300 ms of the server's CPU

    run = latency_under_cpu(address, n_clients=50, work_ms=500)
    run.percentiles("before"), run.percentiles("during")     # p50/p99 of the others' PINGs

    spread(address, n_connections=200).requests             # {pid: answers} per worker

The lines are framed: a reply may arrive in pieces, or two in one ``recv``; every call has a
deadline, so a server that stops answering costs a TimeoutError, never a hang.
"""

from __future__ import annotations

import http.client
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol

from labkit.percentiles import nearest_rank

__all__ = [
    "ComputeError",
    "Connection",
    "LineConnection",
    "HttpConnection",
    "connect",
    "ping",
    "work",
    "Ping",
    "Percentiles",
    "CpuLatencyRun",
    "PHASES",
    "Worker",
    "Transport",
    "latency_under_cpu",
    "Spread",
    "spread",
]

#: a reply longer than this is not one of ours (requests are at most 1,024 bytes, replies less)
LONGEST_REPLY = 4096
#: the phases of a latency run, around the one WORK request
PHASES = ("before", "during", "after")
#: the two transports: our line protocol, or HTTP (gunicorn)
Transport = Literal["line", "http"]
#: pre-fork servers: PINGs answered by the process that did the WORK ("same"), or another
Worker = Literal["same", "other"] | None


class ComputeError(Exception):
    """The server answered, but not with the reply the protocol promises (ERR, or garbage)."""


class Connection(Protocol):
    """One connection to a compute server: send one request, get its one reply line."""

    def request(self, command: str, timeout: float) -> str: ...

    def close(self) -> None: ...


class LineConnection:
    """One socket and its receive buffer: lines out, lines in, whatever pieces TCP cuts."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()  # bytes received past the last whole line

    def request(self, command: str, timeout: float) -> str:
        """Send ``command`` as one line; return the next reply line, without its newline."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        self.sock.sendall(command.encode("ascii") + b"\n")
        return self.read_line(deadline)

    def read_line(self, deadline: float) -> str:
        """The next whole line, however many ``recv`` calls it takes, before ``deadline``."""
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > LONGEST_REPLY:
                raise ComputeError(f"no newline in {len(self.buffer)} bytes: not our server")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no whole reply line before the deadline")
            self.sock.settimeout(left)  # a server dribbling bytes still meets the deadline
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("the server closed the connection before replying")
            self.buffer += data
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        return line.decode("ascii", errors="replace").rstrip("\r")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LineConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpConnection:
    """The same requests over HTTP/1.1 with keep-alive, as gunicorn serves them (one TCP
    connection for every request, as long as the server keeps it open)."""

    PATHS = {"PING": "/ping?token={}", "WORK": "/work?ms={}"}

    def __init__(self, address: tuple[str, int], timeout: float) -> None:
        self.http = http.client.HTTPConnection(*address, timeout=timeout)
        self.http.connect()  # connect now, as LineConnection does: connect errors come here

    def request(self, command: str, timeout: float) -> str:
        verb, _, argument = command.partition(" ")
        if self.http.sock is not None:
            self.http.sock.settimeout(timeout)
        self.http.request("GET", self.PATHS[verb].format(argument))
        response = self.http.getresponse()
        body = response.read(LONGEST_REPLY).decode("ascii", errors="replace").strip()
        if response.status != 200:
            raise ComputeError(f"HTTP {response.status}: {body[:80]}")
        return body

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HttpConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    address: tuple[str, int], protocol: Transport = "line", timeout: float = 10.0
) -> LineConnection | HttpConnection:
    """One connection to a compute server: the line protocol, or HTTP (gunicorn)."""
    if protocol == "http":
        return HttpConnection(address, timeout)
    if protocol != "line":
        raise ValueError(f"protocol is 'line' or 'http', not {protocol!r}")
    return LineConnection(socket.create_connection(address, timeout=timeout))


def ping(conn: Connection, token: str, timeout: float = 10.0) -> tuple[str, int]:
    """``PING token``; return the token echoed back and the pid of the process that answered."""
    reply = conn.request(f"PING {token}", timeout)
    word, *rest = reply.split()
    if word != "PONG" or len(rest) != 2 or rest[0] != token or not rest[1].isdigit():
        raise ComputeError(f"PING {token} got {reply[:80]!r}")
    return rest[0], int(rest[1])


def work(conn: Connection, ms: int, timeout: float = 10.0) -> int:
    """``WORK ms``: the server burns ``ms`` ms of CPU; return the pid of the process that did.
    ``timeout`` is on top of the ``ms`` the work itself takes."""
    reply = conn.request(f"WORK {ms}", timeout + ms / 1000)
    word, *rest = reply.split()
    if word != "DONE" or len(rest) != 2 or rest[0] != str(ms) or not rest[1].isdigit():
        raise ComputeError(f"WORK {ms} got {reply[:80]!r}")
    return int(rest[1])


# -- latency while one client asks for CPU work ------------------------------------------------
@dataclass(frozen=True)
class Ping:
    """One PING: sent at ``sent`` (seconds from the run's zero), answered ``latency`` seconds
    later by process ``pid``, on client ``client``'s connection."""

    client: int
    sent: float
    latency: float
    pid: int

    @property
    def answered(self) -> float:
        return self.sent + self.latency


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles of a set of PINGs, in milliseconds (nan when there were none)."""

    p50: float
    p99: float
    count: int


def percentiles(latencies: list[float]) -> Percentiles:
    """p50 and p99 of latencies in seconds, in ms, by nearest rank (``labkit.percentiles``)."""
    if not latencies:
        return Percentiles(math.nan, math.nan, 0)
    p50, p99 = (nearest_rank(latencies, p) * 1000 for p in (50, 99))
    return Percentiles(p50, p99, len(latencies))


@dataclass
class CpuLatencyRun:
    """Every PING of a run, and when the one WORK request was sent and answered (seconds from
    the run's zero). A PING is *before* if it was answered before the WORK was sent, *after*
    if it was sent after the WORK's answer came back, and *during* otherwise (it overlapped)."""

    pings: list[Ping]
    work_start: float
    work_end: float
    work_ms: int
    work_pid: int
    errors: list[str] = field(default_factory=list)

    def phase(self, p: Ping) -> str:
        if p.answered < self.work_start:
            return "before"
        if p.sent > self.work_end:
            return "after"
        return "during"

    def select(self, phase: str | None = None, worker: Worker = None) -> list[Ping]:
        """The PINGs of one phase (None: all); ``worker``: only those answered by the process
        that did the WORK ("same") or by any other ("other"), as with pre-fork workers."""
        if phase is not None and phase not in PHASES:
            raise ValueError(f"phase is one of {PHASES}, not {phase!r}")
        return [
            p
            for p in self.pings
            if (phase is None or self.phase(p) == phase)
            and (worker is None or (p.pid == self.work_pid) == (worker == "same"))
        ]

    def percentiles(self, phase: str, worker: Worker = None) -> Percentiles:
        """p50/p99 latency (ms) of the PINGs of ``phase``: "before", "during" or "after"."""
        return percentiles([p.latency for p in self.select(phase, worker)])

    @property
    def pids(self) -> set[int]:
        """Every process that answered a PING."""
        return {p.pid for p in self.pings}


def latency_under_cpu(
    address: tuple[str, int],
    n_clients: int = 50,
    work_ms: int = 500,
    lead: float = 0.3,
    tail: float = 0.3,
    timeout: float = 10.0,
    pause: float = 0.005,
    protocol: Transport = "line",
) -> CpuLatencyRun:
    """``n_clients`` threads PING in a loop (one request outstanding each, ``pause`` seconds
    between); ``lead`` seconds in, one more client sends ``WORK work_ms``; all stop ``tail``
    seconds after its answer. Every connection is opened, and has had one answer, first.

    A failed client stops and its error is kept in ``errors``; a failed WORK raises."""
    conns = [connect(address, protocol, timeout) for _ in range(n_clients + 1)]
    try:
        for i, conn in enumerate(conns):  # warm up: every connection accepted and answered
            ping(conn, f"warm{i}", timeout)
        work(conns[-1], 1, timeout)  # and a lazily started process pool started
        return _measure(conns[:-1], conns[-1], work_ms, lead, tail, timeout, pause)
    finally:
        for conn in conns:
            conn.close()


def _measure(
    clients: list[LineConnection | HttpConnection],
    worker: LineConnection | HttpConnection,
    work_ms: int,
    lead: float,
    tail: float,
    timeout: float,
    pause: float,
) -> CpuLatencyRun:
    stop = threading.Event()
    pings: list[list[Ping]] = [[] for _ in clients]  # one list per thread: no lock needed
    errors: list[str] = []
    zero = time.perf_counter()

    def pinger(i: int) -> None:
        try:
            for seq in range(10**9):
                if stop.is_set():
                    return
                sent = time.perf_counter()
                _, pid = ping(clients[i], f"c{i}-{seq}", timeout)
                pings[i].append(Ping(i, sent - zero, time.perf_counter() - sent, pid))
                time.sleep(pause)
        except (OSError, ComputeError) as exc:
            errors.append(f"client {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=pinger, args=(i,), daemon=True) for i in range(len(clients))]
    for t in threads:
        t.start()
    try:
        time.sleep(lead)
        start = time.perf_counter()
        pid = work(worker, work_ms, timeout)
        end = time.perf_counter()
        time.sleep(tail)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout + 1)
    everyone = sorted((p for mine in pings for p in mine), key=lambda p: p.sent)
    return CpuLatencyRun(everyone, start - zero, end - zero, work_ms, pid, errors)


# -- how connections spread over worker processes -------------------------------------------
@dataclass
class Spread:
    """Who answered: requests and connections per worker pid (a connection counts for the
    pid that answered its first request), and every request's latency in seconds."""

    requests: dict[int, int]
    connections: dict[int, int]
    latencies: list[float]
    errors: list[str] = field(default_factory=list)

    @property
    def workers(self) -> int:
        """How many processes answered at least once."""
        return len(self.requests)

    def fairness(self, n_workers: int | None = None, of: str = "requests") -> float:
        """Jain's fairness index of the ``requests`` (or ``connections``) per worker: 1.0 when
        every worker got the same share, 1/n when one worker got everything. ``n_workers``
        counts the workers that got nothing too (the client cannot see them otherwise)."""
        counts = list(self.requests.values() if of == "requests" else self.connections.values())
        n = max(n_workers or 0, len(counts))
        if n == 0 or not sum(counts):
            return math.nan
        return sum(counts) ** 2 / (n * sum(c * c for c in counts))

    def shares(self, of: str = "requests") -> dict[int, float]:
        """Each worker's share of the requests (or connections), largest first."""
        counts = self.requests if of == "requests" else self.connections
        total = sum(counts.values())
        return {pid: n / total for pid, n in sorted(counts.items(), key=lambda kv: -kv[1])}


def spread(
    address: tuple[str, int],
    n_connections: int = 200,
    requests_each: int = 5,
    concurrency: int = 50,
    timeout: float = 10.0,
    protocol: Transport = "line",
) -> Spread:
    """Open ``n_connections`` connections, ``concurrency`` at a time, each sending
    ``requests_each`` PINGs then closing; count which process answered each."""
    if requests_each < 1 or n_connections < 1 or concurrency < 1:
        raise ValueError("spread needs at least one connection, one request, one thread")
    one = _one_connection(address, requests_each, timeout, protocol)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(n_connections)))
    requests: Counter[int] = Counter()
    connections: Counter[int] = Counter()
    latencies, errors = [], []
    for result in results:
        if isinstance(result, str):
            errors.append(result)
            continue
        pids, times = result
        requests.update(pids)
        connections[pids[0]] += 1
        latencies += times
    return Spread(dict(requests), dict(connections), latencies, errors)


def _one_connection(
    address: tuple[str, int], requests_each: int, timeout: float, protocol: Transport
) -> Callable[[int], tuple[list[int], list[float]] | str]:
    def one(i: int) -> tuple[list[int], list[float]] | str:
        pids, times = [], []
        try:
            with connect(address, protocol, timeout) as conn:
                for seq in range(requests_each):
                    sent = time.perf_counter()
                    pids.append(ping(conn, f"s{i}-{seq}", timeout)[1])
                    times.append(time.perf_counter() - sent)
        except (OSError, ComputeError) as exc:
            return f"connection {i}: {type(exc).__name__}: {exc}"
        return pids, times

    return one
