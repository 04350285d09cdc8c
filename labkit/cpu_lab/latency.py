"""How long the other clients wait while one asks a server for CPU work: lesson 10.

One client asks for CPU work (``WORK``) while many others send small PINGs
(``labkit.cpu_lab.clients.latency_under_cpu``); these run it against servers started by
``labkit.serve``, in interleaved rounds, and reduce each run to the numbers a claim judges.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from labkit.background import ServerHandle, serve
from labkit.claims import ServerRounds, ServerSpec
from labkit.cpu_lab.clients import (
    PHASES,
    CpuLatencyRun,
    Transport,
    Worker,
    latency_under_cpu,
)

#: the servers that speak HTTP (gunicorn's WSGI app) instead of the line protocol
HTTP_SERVERS = ("gunicorn_compute",)


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


class LatencyRounds(ServerRounds):
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
        self.run_options, self.specs = run_options, servers
        self.runs: dict[str, list[CpuLatencyRun]] = {label: [] for label in servers}
        super().__init__(servers, rounds=rounds, seconds=seconds)  # runs the first round

    def ways_for(self, servers: dict[str, ServerHandle]) -> dict[str, Callable[[], object]]:
        """One ``latency_under_cpu`` run against each server, in its protocol."""
        return {
            label: functools.partial(self._measure, label, srv, protocol_of(self.specs[label][0]))
            for label, srv in servers.items()
        }

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
