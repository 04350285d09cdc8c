"""Many echo clients at once, as in the original course: one thread per client.

Each client connects, sends ``messages`` messages of ``size`` bytes and reads each echo back in
full (TCP may split or merge them, so it reads until it has ``size`` bytes), checking every
byte. Each round trip is recorded as a Span, so a run can be drawn; the result says how many
round trips succeeded, how many bytes were verified, what failed, and the latency percentiles.

The same code runs on greenlets when gevent has monkey-patched the process: see
``labkit/scripts/gevent_echo_clients.py``.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field

from labkit.limits import check_client_count
from labkit.percentiles import nearest_rank
from labkit.progress import Progress, Throttled
from labkit.timeline import Recorder, Span, WithSpans

__all__ = ["LoadResult", "run_echo_clients", "one_echo_client"]


@dataclass
class LoadResult(WithSpans):
    clients: int
    round_trips: int = 0
    bytes_verified: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds per round trip
    connect_times: list[float] = field(default_factory=list)  # seconds each connect() took
    elapsed: float = 0.0
    spans: list[Span] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        """The p-th percentile (in percent) of the round trips' latencies, in seconds, by
        nearest rank (``labkit.percentiles``); nan when no round trip succeeded."""
        return nearest_rank(self.latencies, p) if self.latencies else float("nan")

    @property
    def throughput(self) -> float:
        """Round trips per second."""
        return self.round_trips / self.elapsed if self.elapsed else 0.0

    def summary(self) -> str:
        return (
            f"{self.clients} clients, {self.round_trips} round trips, "
            f"{self.bytes_verified:,} bytes verified, {len(self.errors)} errors, "
            f"{self.elapsed:.2f} s, {self.throughput:,.0f} round trips/s, latency p50 "
            f"{self.percentile(50) * 1000:.1f} ms, p99 {self.percentile(99) * 1000:.1f} ms"
        )


def one_echo_client(
    address: tuple[str, int],
    name: str,
    rec: Recorder,
    result: LoadResult,
    lock: threading.Lock,
    messages: int,
    size: int,
    seed: int,
    timeout: float = 30.0,
    pause: float = 0.0,
    mark_queue: bool = False,
) -> None:
    rng = random.Random(seed)
    try:
        connecting = time.perf_counter()
        with socket.create_connection(address, timeout=timeout) as sock:
            connected = time.perf_counter()
            with lock:
                result.connect_times.append(connected - connecting)
            if mark_queue:
                wait_until_served(sock, name, rec, connected)
            for i in range(messages):
                if pause and i:
                    with rec.span(name, "idle"):
                        time.sleep(pause)  # "think time": holds the connection
                payload = rng.randbytes(size)
                start = time.perf_counter()
                sock.sendall(payload)
                echoed = receive_exactly(sock, size)
                end = time.perf_counter()
                rec.add(name, "waiting", start, end)
                if echoed != payload:
                    raise ValueError(f"{name}: the echo differs from what was sent")
                with lock:
                    result.round_trips += 1
                    result.bytes_verified += size
                    result.latencies.append(end - start)
    except (OSError, ValueError) as err:
        with lock:
            result.errors.append(f"{name}: {type(err).__name__}: {err}")


def wait_until_served(sock: socket.socket, name: str, rec: Recorder, since: float) -> None:
    """Echo one byte and record the time from ``since`` until it came back as ``queued``.

    ``connect`` returns once the kernel has completed the handshake and queued the connection
    (``connect_times`` says how long that took), which can be long before the server's code
    accepts it; the first answer is the first sign that it has. On a server that serves
    everyone at once this is one fast round trip; on a capped one, the queue shows."""
    sock.sendall(b"?")
    if receive_exactly(sock, 1) != b"?":
        raise ValueError(f"{name}: the echo differs from what was sent")
    rec.add(name, "queued", since, time.perf_counter())


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    """Read until ``size`` bytes have arrived: one recv is not one message."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(65536, size - len(data)))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def run_echo_clients(
    address: tuple[str, int],
    n_clients: int = 100,
    messages: int = 3,
    size: int = 1024,
    progress: Progress | None = None,
    timeout: float = 30.0,
    pause: float = 0.0,
    mark_queue: bool = False,
) -> LoadResult:
    """Start ``n_clients`` threads at once, each one echo client; wait for all of them.

    ``pause`` seconds between a client's messages are drawn as ``idle``; with ``mark_queue``
    each client's row starts with the time it waited for the server to start serving it."""
    check_client_count(n_clients)  # a clear message instead of EMFILE
    result, lock, rec = LoadResult(n_clients), threading.Lock(), Recorder()
    threads = [
        threading.Thread(
            target=one_echo_client,
            daemon=True,
            args=(
                address,
                f"Client {i}",
                rec,
                result,
                lock,
                messages,
                size,
                i,
                timeout,
                pause,
                mark_queue,
            ),
        )
        for i in range(1, n_clients + 1)
    ]
    report = Throttled(progress)
    start = time.perf_counter()
    for t in threads:
        t.start()
    for done, t in enumerate(threads, 1):
        t.join(timeout * (messages + 1))
        report(done, n_clients)
    result.elapsed = time.perf_counter() - start
    result.spans = list(rec.spans)
    return result
