"""Lesson 04's goal: gevent's speed-up over sequential fetching, divided by N, is at least 0.9
for N <= 100 requests of equal latency.

The goal is measured at a latency of 1 s per page, close to what the original course measured
against three real web sites (3.9 s for three pages). A second table, at 0.1 s, shows where the
goal stops holding: each request also costs about a millisecond of CPU (urllib in the client,
the WSGI server), which does not overlap, and at short latencies that work dominates.

Sequential runs of N = 10 and N = 100 are measured in full. For N = 1,000 (which would take
many minutes sequentially) the sequential time is N times the mean sequential request of the
N = 100 run; lesson 04 asserts that sequential time is linear in N.
"""
from __future__ import annotations

import labkit
from labkit.fetch import fetch_with

COUNTS = (10, 100, 1000)
GOAL = 0.9


def table(latency: float, with_goal: bool) -> list[str]:
    rows = []
    with labkit.serve("latency_http", delay=latency) as srv:
        def urls(n):
            return [f"http://{srv.host}:{srv.port}/pages/page-48k.html?id={i}" for i in range(n)]

        sequential = {n: fetch_with("sequential", urls(n)).elapsed for n in COUNTS[:2]}
        per_request = sequential[100] / 100
        for n in COUNTS:
            run = fetch_with("gevent", urls(n))
            assert run.statuses == {200: n}, run.statuses
            seq = sequential.get(n, n * per_request)
            speedup = seq / run.elapsed
            goal = ("yes" if speedup / n >= GOAL else "NO") if with_goal and n <= 100 else "-"
            rows.append(f"| {n:,} | {seq:.2f}{'' if n in sequential else ' (extrapolated)'} | "
                        f"{run.elapsed:.3f} | {speedup:.1f} | {speedup / n:.2f} | {goal} |")
    return [f"### Latency {latency} s per page (48.7 kB pages)", "",
            "| N | sequential (s) | gevent (s) | speed-up | speed-up / N | goal met |",
            "|---|---|---|---|---|---|", *rows, ""]


def run() -> str:
    return "\n".join(["## Fetching N pages: gevent against sequential", "",
                      f"Goal: speed-up / N >= {GOAL} for N <= 100, at a latency of 1 s.", "",
                      *table(1.0, with_goal=True), *table(0.1, with_goal=False)])
