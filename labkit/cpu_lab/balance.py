"""How pre-fork workers share the connections and the work: lesson 10's second half.

``measure_spread`` counts which worker answered each connection and request;
``newcomers_while_busy`` asks where new clients land while one worker burns;
``accept_wakeups`` counts how many waiting workers one new connection wakes.
"""

from __future__ import annotations

import functools
import math
import os
import queue
import select
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from labkit.background import serve
from labkit.cpu_lab.clients import ComputeError, Spread, connect, ping, spread, work
from labkit.cpu_lab.latency import ServerSpec, protocol_of


# -- how connections spread over worker processes -------------------------------------------
def measure_spread(servers: dict[str, ServerSpec], **spread_options: Any) -> dict[str, Spread]:
    """``spread`` against each server (label -> (name, options)), one server at a time."""
    spreads = {}
    for label, (name, options) in servers.items():
        with serve(name, **options) as srv:
            protocol = protocol_of(name)
            spreads[label] = spread(srv.address, protocol=protocol, **spread_options)
    return spreads


def spread_table(spreads: dict[str, Spread], n_workers: int | None = None) -> str:
    """Per server: requests and connections per worker (largest first), and Jain's index."""
    lines = []
    for label, s in spreads.items():
        requests = sorted(s.requests.values(), reverse=True)
        connections = sorted(s.connections.values(), reverse=True)
        lines.append(
            f"{label}: {s.workers} workers answered; requests {requests}, "
            f"connections {connections}, fairness {s.fairness(n_workers):.2f}"
            + (f", {len(s.errors)} errors" if s.errors else "")
        )
    return "\n".join(lines)


def median_latency_ms(s: Spread) -> float:
    """The median request latency of a spread run, in ms."""
    return statistics.median(s.latencies) * 1000 if s.latencies else float("nan")


# -- newcomers while one worker is busy ------------------------------------------------------------
def newcomers_while_busy(balance: str, work_ms: int = 1000, n: int = 40) -> dict[str, float]:
    """A two-worker ``prefork_compute`` (``balance``: "shared" or "reuseport"): one client asks
    a worker for ``WORK work_ms``; 0.2 s later, while that worker burns, ``n`` new clients
    connect at once and PING once each. Returns, for a ``Timing``: how many newcomers were
    answered (``"answered"``) and how many of them by the busy worker (``"busy took"``); the
    slowest newcomer's seconds (``"slowest"``) and the fastest of those the busy worker took
    (``"busy fastest"``, infinite if it took none)."""
    with ExitStack() as stack:
        srv = stack.enter_context(serve("prefork_compute", workers=2, balance=balance))
        conn = connect(srv.address)
        stack.callback(conn.close)
        busy = stack.enter_context(ThreadPoolExecutor(1)).submit(work, conn, work_ms)
        time.sleep(0.2)  # the WORK has reached its worker, which burns
        with ThreadPoolExecutor(n) as pool:  # every newcomer at once, while it burns
            answers = list(pool.map(functools.partial(_newcomer, srv.address), range(n)))
        busy_pid = busy.result()
    answered = [a for a in answers if a is not None]
    took = [seconds for pid, seconds in answered if pid == busy_pid]
    return {
        "answered": float(len(answered)),
        "busy took": float(len(took)),
        "slowest": max((seconds for _, seconds in answered), default=math.inf),
        "busy fastest": min(took, default=math.inf),
    }


def _newcomer(address: tuple[str, int], i: int) -> tuple[int, float] | None:
    """Connect, PING once: the pid that answered and the seconds it took (None if it failed)."""
    started = time.perf_counter()
    try:
        with connect(address) as conn:
            _, pid = ping(conn, f"new{i}")
    except (OSError, ComputeError):
        return None
    return pid, time.perf_counter() - started


# -- how many waiting workers a new connection wakes -----------------------------------------------
#: how the waiters of ``accept_wakeups`` wait for a connection
ACCEPT_MODES = ("shared", "exclusive", "reuseport")


def accept_wakeups(
    balance: str, waiters: int = 4, connections: int = 40, settle: float = 0.01
) -> dict[str, float]:
    """``waiters`` threads, each blocked in an epoll of its own as a pre-fork worker is, wait
    to accept; ``connections`` clients connect one at a time. ``balance``: "shared" (one
    listening socket in every epoll, ``EPOLLIN``), "exclusive" (the same with
    ``EPOLLEXCLUSIVE``), "reuseport" (one ``SO_REUSEPORT`` socket per waiter).

    Returns ``"wake-ups"``: how many times the kernel woke a waiter, counted as the waiters'
    voluntary context switches (each wake-up ends in one more sleep, whether the waiter found
    a connection or the kernel put it back to sleep because another had taken it first);
    ``"accepted"``; and ``"empty"``: wake-ups that reached Python and found nothing to
    accept. ``poll`` releases the GIL while it waits, so threads wait here as processes do."""
    if balance not in ACCEPT_MODES:
        raise ValueError(f"balance is one of {ACCEPT_MODES}, not {balance!r}")
    listeners = _wakeup_listeners(balance, waiters)
    stop_r, stop_w = os.pipe()  # one byte in it wakes every waiter to leave
    ready = threading.Barrier(waiters + 1)
    tids, empty = [0] * waiters, [0] * waiters
    accepted: queue.Queue[int] = queue.Queue()
    flags = select.EPOLLIN | (select.EPOLLEXCLUSIVE if balance == "exclusive" else 0)

    def wait(i: int) -> None:
        sock = listeners[i % len(listeners)]
        tids[i] = threading.get_native_id()
        with select.epoll() as ep:
            ep.register(sock.fileno(), flags)
            ep.register(stop_r, select.EPOLLIN)
            ready.wait(5)
            while True:
                fds = [fd for fd, _ in ep.poll(10)]  # blocks (10 s: a safety net)
                if stop_r in fds or not fds:
                    return
                try:
                    conn, _ = sock.accept()  # non-blocking: another waiter may have it
                except BlockingIOError:
                    empty[i] += 1
                    continue
                conn.close()
                accepted.put(i)

    threads = [threading.Thread(target=wait, args=(i,), daemon=True) for i in range(waiters)]
    try:
        for t in threads:
            t.start()
        ready.wait(5)
        time.sleep(0.05)  # every waiter is asleep in its poll
        before = [_sleeps(tid) for tid in tids]
        got = _connect_one_by_one(listeners[0].getsockname(), connections, accepted, settle)
        woke = sum(_sleeps(tid) - n for tid, n in zip(tids, before))
    finally:
        os.write(stop_w, b"x")
        for t in threads:
            t.join(5)
        for fd in (stop_r, stop_w):
            os.close(fd)
        for sock in listeners:
            sock.close()
    return {"wake-ups": float(woke), "accepted": float(got), "empty": float(sum(empty))}


def _sleeps(tid: int) -> int:
    """How many times this process's thread ``tid`` has gone to sleep (proc(5): a task's
    ``voluntary_ctxt_switches`` in /proc/self/task/TID/status)."""
    for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise OSError(f"no voluntary_ctxt_switches for thread {tid}")


def _wakeup_listeners(balance: str, waiters: int) -> list[socket.socket]:
    first = socket.create_server(("127.0.0.1", 0), reuse_port=balance == "reuseport")
    socks = [first]
    if balance == "reuseport":  # the others bind the same port: one accept queue each
        port = first.getsockname()[1]
        socks += [
            socket.create_server(("127.0.0.1", port), reuse_port=True) for _ in range(waiters - 1)
        ]
    for sock in socks:
        sock.setblocking(False)
    return socks


def _connect_one_by_one(
    address: tuple[str, int], n: int, accepted: queue.Queue[int], settle: float
) -> int:
    """Connect n times, each time waiting until a waiter has accepted, then ``settle``
    seconds more (every waiter that woke is back asleep); return how many were accepted."""
    got = 0
    for _ in range(n):
        with socket.create_connection(address, timeout=5):
            try:
                accepted.get(timeout=5)
            except queue.Empty:
                continue
            got += 1
        time.sleep(settle)
    return got
