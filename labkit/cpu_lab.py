"""CPU work on an event loop, and over worker processes: the measurements of lesson 10.

One client asks for CPU work while many others send small PINGs; how long do the others
wait, before, during and after? Each server is started by ``labkit.serve``, measured, stopped::

    runs = compare_offload("compute_asyncio", modes=("none", "pool"), n_clients=50)
    print(latency_table(runs))                  # p50/p99 per phase, in ms
    during_over_before(runs["none"])            # p99 during / p99 before: the others' slowdown
    waited_for_work(runs["pool"])               # p99 during / the WORK's time: ~0 if none waited
    plot_latency(runs)                          # every PING's latency over time, WORK shaded

    spreads = measure_spread({"shared": ("prefork_compute", {"workers": 2}),
                              "reuseport": ("prefork_compute", {"workers": 2,
                                                                "balance": "reuseport"})})
    print(spread_table(spreads, n_workers=2))   # requests and connections per worker
    plot_spread(spreads, n_workers=2)           # one bar per worker, Jain's fairness index
    plot_spread_latency(spreads)                # each server's request latency histogram

A lesson's claims about these runs are timing claims (``labkit.Timing``): ``LatencyRounds``
runs ``latency_under_cpu`` against each server in interleaved rounds, and
``newcomers_while_busy`` and ``accept_wakeups`` give one round's numbers as a dict::

    with LatencyRounds({"gevent": ("compute_gevent", {})}, rounds=3) as rounds:
        rounds.claim("the others waited for the WORK", lambda t: t.best("gevent", "waited"),
                     above=0.5)              # p99 during the WORK / the WORK's own time
        plot_latency(rounds.latest())

    accept_wakeups("shared", waiters=4)     # {"wake-ups": ..., "accepted": ..., "empty": ...}
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
from typing import TYPE_CHECKING, Any

from labkit.background import ServerHandle, serve
from labkit.claims import Timing
from labkit.clients.compute import (
    PHASES,
    ComputeError,
    CpuLatencyRun,
    Spread,
    Transport,
    Worker,
    connect,
    latency_under_cpu,
    ping,
    spread,
    work,
)
from labkit.timeline import STATE_COLORS

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

__all__ = [
    "HTTP_SERVERS",
    "protocol_of",
    "latency_runs",
    "LatencyRounds",
    "latency_metrics",
    "compare_offload",
    "during_over_before",
    "waited_for_work",
    "latency_table",
    "plot_latency",
    "measure_spread",
    "spread_table",
    "plot_spread",
    "plot_spread_latency",
    "median_latency_ms",
    "newcomers_while_busy",
    "accept_wakeups",
    "ACCEPT_MODES",
    "WORK_COLOR",
]

#: the servers that speak HTTP (gunicorn's WSGI app) instead of the line protocol
HTTP_SERVERS = ("gunicorn_compute",)
#: the CPU request, shaded in every latency figure
WORK_COLOR = "#d62728"
#: PINGs answered by the process that did the WORK, and by any other (pre-fork workers)
SAME_COLOR, OTHER_COLOR = STATE_COLORS["queued"], STATE_COLORS["running"]

ServerSpec = tuple[str, dict[str, Any]]  # a server's name and its options for labkit.serve


def protocol_of(server: str) -> Transport:
    """ "http" for gunicorn, "line" for our own servers."""
    return "http" if server in HTTP_SERVERS else "line"


# -- latency while one client asks for CPU work ------------------------------------------------
def latency_runs(
    servers: dict[str, ServerSpec], repeats: int = 1, **run_options: Any
) -> dict[str, CpuLatencyRun]:
    """One ``latency_under_cpu`` run per server (label -> (name, options)); every server is
    started once and they take turns (A B A B ...), so whatever else the machine does weighs
    on all alike. With ``repeats`` > 1 each label keeps its median run (by
    ``during_over_before``), so one unlucky run neither makes nor breaks a claim."""
    tries: dict[str, list[CpuLatencyRun]] = {label: [] for label in servers}
    with ExitStack() as stack:
        handles = {
            label: stack.enter_context(serve(name, **options))
            for label, (name, options) in servers.items()
        }
        for _ in range(repeats):
            for label, srv in handles.items():
                protocol = protocol_of(servers[label][0])
                tries[label].append(
                    latency_under_cpu(srv.address, protocol=protocol, **run_options)
                )
    return {label: _median_run(runs) for label, runs in tries.items()}


class LatencyRounds(Timing):
    """``latency_under_cpu`` against several servers, as the ways of a ``labkit.Timing``.

    Each server (label -> (name, options)) is started once; a round runs one measurement
    against each, taking turns at going first, and a claim that does not hold yet runs more
    rounds (up to ``rounds`` and ``seconds``). Each run's numbers are ``latency_metrics``, so a
    claim reads ``t.best(label, "during p99")``; every run is kept in ``runs[label]``. Use it
    as a context manager: the servers stop when the block ends."""

    def __init__(
        self,
        servers: dict[str, ServerSpec],
        *,
        rounds: int = 3,
        seconds: float = 30.0,
        **run_options: Any,
    ) -> None:
        self.run_options = run_options
        self.runs: dict[str, list[CpuLatencyRun]] = {label: [] for label in servers}
        self._stack = ExitStack()
        try:
            ways = {
                label: functools.partial(
                    self._measure, label, self._stack.enter_context(serve(name, **options)),
                    protocol_of(name),
                )
                for label, (name, options) in servers.items()
            }  # fmt: skip
            super().__init__(ways, rounds=rounds, seconds=seconds)  # runs the first round
        except BaseException:
            self._stack.close()
            raise

    def _measure(self, label: str, srv: ServerHandle, protocol: Transport) -> dict[str, float]:
        run = latency_under_cpu(srv.address, protocol=protocol, **self.run_options)
        self.runs[label].append(run)
        return latency_metrics(run)

    def latest(self) -> dict[str, CpuLatencyRun]:
        """Each server's last run (to draw, or to print in a table)."""
        return {label: runs[-1] for label, runs in self.runs.items()}

    def errors(self) -> list[str]:
        """Every failed client of every run."""
        return [e for runs in self.runs.values() for run in runs for e in run.errors]

    def close(self) -> None:
        """Stop the servers."""
        self._stack.close()

    def __enter__(self) -> LatencyRounds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def latency_metrics(run: CpuLatencyRun) -> dict[str, float]:
    """One run's numbers, for a ``Timing``: ``"<phase> p50"``, ``"<phase> p99"`` (ms) and
    ``"<phase> count"`` for each phase; the same for the PINGs answered by the process that
    did the WORK (``"same during p99"`` ...) and by any other (``"other ..."``); ``"waited"``
    (``waited_for_work``, also ``"same waited"``, ``"other waited"``); ``"work"`` (the WORK's
    wall seconds) and ``"errors"``. A percentile of no PINGs is infinite: no PING was fast."""
    metrics = {"work": run.work_end - run.work_start, "errors": float(len(run.errors))}
    for prefix, worker in (("", None), ("same ", "same"), ("other ", "other")):
        for phase in PHASES:
            p = run.percentiles(phase, worker)  # type: ignore[arg-type]
            metrics[f"{prefix}{phase} p50"] = p.p50 if p.count else math.inf
            metrics[f"{prefix}{phase} p99"] = p.p99 if p.count else math.inf
            metrics[f"{prefix}{phase} count"] = float(p.count)
        metrics[f"{prefix}waited"] = metrics[f"{prefix}during p99"] / (metrics["work"] * 1000)
    return metrics


def _median_run(runs: list[CpuLatencyRun]) -> CpuLatencyRun:
    ordered = sorted(runs, key=during_over_before)
    return ordered[(len(ordered) - 1) // 2]


def compare_offload(
    server: str,
    modes: tuple[str, ...] = ("none", "pool"),
    repeats: int = 1,
    server_options: dict[str, Any] | None = None,
    **run_options: Any,
) -> dict[str, CpuLatencyRun]:
    """The same server started with each ``--offload`` mode, measured by
    ``latency_under_cpu(**run_options)``: mode -> its run."""
    specs = {mode: (server, {**(server_options or {}), "offload": mode}) for mode in modes}
    return latency_runs(specs, repeats=repeats, **run_options)


def during_over_before(run: CpuLatencyRun, worker: Worker = None) -> float:
    """How many times longer the slowest PINGs (p99) took during the WORK than before it
    (``worker``: "same" or "other" to count only one side of a pre-fork server)."""
    before = run.percentiles("before", worker)
    during = run.percentiles("during", worker)
    return during.p99 / before.p99


def waited_for_work(run: CpuLatencyRun, worker: Worker = None) -> float:
    """The slowest PINGs' latency during the WORK (p99) as a share of the WORK's own time:
    near 1 when they waited for the whole WORK, near 0 when they did not wait for it at all.

    A sturdier number than ``during_over_before`` where the WORK does not block the PINGs: a
    PING normally takes a fraction of a millisecond, so a few ms of scheduling noise on a
    busy machine (a burning pool process has taken one of two cores) can multiply its p99 by
    ten, while the WORK's hundreds of ms stand far above any such noise."""
    during = run.percentiles("during", worker)
    return during.p99 / ((run.work_end - run.work_start) * 1000)


def latency_table(runs: dict[str, CpuLatencyRun]) -> str:
    """p50 and p99 per phase, in ms, one line per run (numbers: print it where they may vary)."""
    width = max([len(label) for label in runs] + [6])
    head = f"{'':{width}}  " + "  ".join(f"{phase + ' p50/p99 (ms)':>22}" for phase in PHASES)
    lines = [head]
    for label, run in runs.items():
        cells = []
        for phase in PHASES:
            p = run.percentiles(phase)
            cells.append(f"{p.p50:>10.1f} / {p.p99:>8.1f}  ")
        lines.append(f"{label:{width}}  " + "".join(cells).rstrip())
    return "\n".join(lines)


def plot_latency(runs: dict[str, CpuLatencyRun], width: float = 9.0, log: bool = True) -> Figure:
    """One panel per run on a shared time axis: every PING's latency (ms) at the time it was
    sent, the WORK request shaded. Where several processes answered (pre-fork workers), PINGs
    answered by the one that did the WORK are drawn in another colour."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 0.6 + 2.0 * len(runs)), layout="constrained")
    axes = fig.subplots(len(runs), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, (label, run) in zip(axes, runs.items()):
        _draw_latency(ax, label, run, log)
    axes[-1].set_xlabel("time a PING was sent (ms)")
    return fig


def _draw_latency(ax: Any, label: str, run: CpuLatencyRun, log: bool) -> None:
    start, end = run.work_start * 1000, run.work_end * 1000
    ax.axvspan(start, end, color=WORK_COLOR, alpha=0.12, lw=0, label=f"WORK {run.work_ms} ms")
    groups: list[tuple[Worker, str]] = [(None, OTHER_COLOR)]
    if len(run.pids) > 1:
        groups = [("same", SAME_COLOR), ("other", OTHER_COLOR)]
    for worker, color in groups:
        pings = run.select(worker=worker)
        ax.scatter(
            [p.sent * 1000 for p in pings],
            [max(p.latency * 1000, 0.01) for p in pings],  # a log axis has no zero
            s=4,
            color=color,
            alpha=0.6,
            lw=0,
            label=f"PINGs answered by the {worker} process as WORK" if worker else "PINGs",
        )
    if log:
        ax.set_yscale("log")
    before, during = run.percentiles("before"), run.percentiles("during")
    title = f"{label}: p99 {before.p99:.1f} ms before, {during.p99:.1f} ms during the WORK"
    ax.set_title(title, loc="left", fontsize=10)
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="upper right", markerscale=3)


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


def plot_spread(
    spreads: dict[str, Spread], n_workers: int | None = None, width: float = 9.0
) -> Figure:
    """One panel per server, one bar per worker (busiest first): its share of the
    connections, with its counts written on it. A fair server's bars all reach the dashed
    line; the title gives Jain's index (1.0 fair, 1/n when one worker took everything)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 2.8), layout="constrained")
    axes = fig.subplots(1, len(spreads), sharey=True, squeeze=False)[0]
    for ax, (label, s) in zip(axes, spreads.items()):
        _draw_spread(ax, label, s, n_workers)
    axes[0].set_ylabel("share of the connections (%)")
    return fig


def _draw_spread(ax: Any, label: str, s: Spread, n_workers: int | None) -> None:
    n = max(n_workers or 0, s.workers)
    pids = sorted(s.connections, key=lambda pid: -s.connections[pid])  # busiest worker first
    total = sum(s.connections.values()) or 1
    shares = [100 * s.connections[pid] / total for pid in pids] + [0.0] * (n - len(pids))
    ax.bar(range(n), shares, 0.6, color=STATE_COLORS["running"])
    for x, pid in enumerate(pids):
        note = f"{s.connections[pid]} conn.\n{s.requests.get(pid, 0)} req."
        white = {"facecolor": "white", "edgecolor": "none", "pad": 1}  # over the dashed line
        ax.text(x, shares[x] + 2, note, ha="center", va="bottom", fontsize=8, bbox=white)
    if n:
        ax.axhline(100 / n, color="black", lw=0.8, ls="--", zorder=0)
    ax.set_xticks(range(n), [f"worker {i + 1}" for i in range(n)], fontsize=9)
    ax.set_title(
        f"{label}: fairness {s.fairness(n_workers, of='connections'):.2f}", loc="left", fontsize=10
    )
    ax.set_ylim(0, 125)  # room for the counts above a full bar
    ax.set_yticks(range(0, 101, 20))
    ax.grid(axis="y", alpha=0.3)


def plot_spread_latency(spreads: dict[str, Spread], width: float = 9.0) -> Figure:
    """The latency histogram of each server's requests (ms, log-spaced bins), one panel each
    on a shared axis, its median marked."""
    from matplotlib.figure import Figure

    every = [t * 1000 for s in spreads.values() for t in s.latencies if t > 0]
    low, high = (min(every), max(every)) if every else (0.01, 1.0)
    bins = [low * (high / low) ** (i / 40) for i in range(41)] if high > low else 10
    fig = Figure(figsize=(width, 0.6 + 1.5 * len(spreads)), layout="constrained")
    axes = fig.subplots(len(spreads), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, s) in zip(axes, spreads.items()):
        ax.hist([t * 1000 for t in s.latencies], bins=bins, color=STATE_COLORS["running"])
        median = median_latency_ms(s)
        ax.axvline(median, color="black", lw=0.8, ls="--")
        ax.set_title(f"{label}: median {median:.2f} ms", loc="left", fontsize=10)
        ax.set_ylabel("requests")
        ax.grid(alpha=0.3)
    axes[-1].set_xscale("log")
    axes[-1].set_xlabel("request latency (ms)")
    return fig


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
