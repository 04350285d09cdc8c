"""Lesson 04's goal: gevent's speed-up over sequential fetching, divided by N, is at least 0.9
for N <= 100 requests of equal latency.

The goal is measured at a latency of 1 s per page, close to what the original course measured
against three real web sites (3.9 s for three pages). A second table, at 0.1 s, shows where the
goal stops holding: each request also costs about a millisecond of CPU (urllib in the client,
the WSGI server), which does not overlap, and at short latencies that work dominates.

Sequential runs of up to N = 100 are measured in full (``SEQUENTIAL_UP_TO``). For a larger N
(1,000 would take many minutes sequentially) the sequential time is N times the mean request
of the largest run measured; lesson 04 asserts that sequential time is linear in N.

    python -m benchmarks fetch --sizes 10,100,1000 --latencies 1,0.1     # the defaults
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import labkit
from labkit.runs import fetch_with

ABOUT = "lesson 04: gevent's speed-up over sequential fetching of N pages"

SIZES = (10, 100, 1000)
LATENCIES = (1.0, 0.1)  # seconds per page; the goal is judged at the first
SEQUENTIAL_UP_TO = 100  # larger sequential runs are extrapolated, not waited for
GOAL = 0.9


def table(latency: float, sizes: Sequence[int], with_goal: bool) -> list[str]:
    rows = []
    with labkit.serve("latency_http", delay=latency) as srv:

        def urls(n):
            return [f"http://{srv.host}:{srv.port}/pages/page-48k.html?id={i}" for i in range(n)]

        sequential = {
            n: fetch_with("sequential", urls(n)).elapsed for n in sizes if n <= SEQUENTIAL_UP_TO
        }
        largest = max(sequential)
        per_request = sequential[largest] / largest
        for n in sizes:
            run = fetch_with("gevent", urls(n))
            assert run.statuses == {200: n}, run.statuses
            seq = sequential.get(n, n * per_request)
            speedup = seq / run.elapsed
            goal = ("yes" if speedup / n >= GOAL else "NO") if with_goal and n <= 100 else "-"
            rows.append(
                f"| {n:,} | {seq:.2f}{'' if n in sequential else ' (extrapolated)'} | "
                f"{run.elapsed:.3f} | {speedup:.1f} | {speedup / n:.2f} | {goal} |"
            )
    return [
        f"### Latency {latency} s per page (48.7 kB pages)",
        "",
        "| N | sequential (s) | gevent (s) | speed-up | speed-up / N | goal met |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmarks.run import numbers

    parser.add_argument(
        "--sizes",
        type=numbers(int),
        default=list(SIZES),
        help=f"N pages per run, comma-separated; N above {SEQUENTIAL_UP_TO} is extrapolated "
        f"sequentially (default: {','.join(map(str, SIZES))})",
    )
    parser.add_argument(
        "--latencies",
        type=numbers(float),
        default=list(LATENCIES),
        help="seconds per page, comma-separated; the goal is judged at the first "
        f"(default: {','.join(map(str, LATENCIES))})",
    )


def run(args: argparse.Namespace) -> str:
    return measure(args.sizes, args.latencies)


def measure(sizes: Sequence[int] = SIZES, latencies: Sequence[float] = LATENCIES) -> str:
    """One table per latency, one row per N; at least one N must be <= SEQUENTIAL_UP_TO."""
    sizes = sorted(sizes)
    if not sizes or sizes[0] > SEQUENTIAL_UP_TO:
        raise ValueError(f"--sizes needs one N <= {SEQUENTIAL_UP_TO} to measure sequentially")
    tables = [table(latency, sizes, with_goal=i == 0) for i, latency in enumerate(latencies)]
    return "\n".join(
        [
            "## Fetching N pages: gevent against sequential",
            "",
            f"Goal: speed-up / N >= {GOAL} for N <= 100, at a latency of {latencies[0]} s.",
            "",
            *(line for t in tables for line in t),
        ]
    )
