"""Our greenlets against Locust: one load on a file server, made by either load generator."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from labkit.background import ServerHandle, run_script
from labkit.claims import DATA
from labkit.locust_lab.results import LocustRun
from labkit.locust_lab.run import START_GRACE, run_locust


class FileLoad:
    """One load on a file server, by either load generator: ``users`` connections that GET
    ``name`` and PUT it back for ``seconds``, every byte verified, made by lesson 08's client
    code on bare greenlets (``labkit/scripts/gevent_file_loop.py``) or by Locust's
    ``FileUser``s. ``ways()`` gives both to ``labkit.Timing``, which interleaves them::

        load = FileLoad(srv, users=20, seconds=3)
        timing = labkit.Timing(load.ways(), rounds=3)
        print(load.table())

    Each run reports, per request, the CPU time of the load generator (``cpu_us``: the
    process that made the requests, while they ran) and of the server (``server_cpu_us``,
    from /proc), the requests per second, and how busy the load generator was (``busy``,
    its CPU time over the run's length)."""

    def __init__(
        self, server: ServerHandle, users: int = 20, seconds: float = 3.0, name: str = "lyrics.txt"
    ) -> None:
        self.server, self.users, self.seconds, self.name = server, users, seconds, name
        self.expected = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        self.ours: list[dict[str, Any]] = []  # what gevent_file_loop reported, each run
        self.locust_runs: list[LocustRun] = []
        self.costs: dict[str, list[dict[str, float]]] = {"our greenlets": [], "Locust": []}

    def ways(self) -> dict[str, Callable[[], dict[str, float]]]:
        return {"our greenlets": self.greenlets, "Locust": self.locust}

    def greenlets(self) -> dict[str, float]:
        """Lesson 08's clients on greenlets, once; the per-request costs they measured."""
        server_cpu = self.server.cpu_seconds()
        ours = run_script(
            "gevent_file_loop", self.server.host, self.server.port, self.users, self.seconds,
            self.name, self.expected, timeout=self.seconds + START_GRACE,
        ).data  # fmt: skip
        ours["server_cpu_seconds"] = self.server.cpu_seconds() - server_cpu
        self.ours.append(ours)
        costs = _costs(ours["requests"], ours["cpu_seconds"], ours["server_cpu_seconds"],
                       ours["seconds"])  # fmt: skip
        self.costs["our greenlets"].append(costs)
        return costs

    def locust(self) -> dict[str, float]:
        """Locust's FileUsers, once; the per-request costs it measured."""
        server_cpu = self.server.cpu_seconds()
        run = run_locust(
            "files", self.server, users=self.users, seconds=self.seconds,
            options={"file": self.name, "expected_sha256": self.expected},
        )  # fmt: skip
        run.server_cpu_seconds = self.server.cpu_seconds() - server_cpu
        self.locust_runs.append(run)
        costs = _costs(run.own_requests, run.cpu_seconds, run.server_cpu_seconds, run.seconds)
        self.costs["Locust"].append(costs)
        return costs

    def table(self) -> str:
        """The latest run of each load generator, side by side."""
        lines = [f"{'load generator':>14} | requests/s | its CPU per request | CPU busy | "
                 "server CPU per request"]  # fmt: skip
        for who, runs in self.costs.items():
            for c in runs[-1:]:
                lines.append(
                    f"{who:>14} | {c['rps']:10,.0f} | {c['cpu_us']:16,.0f} µs | "
                    f"{c['busy']:8.0%} | {c['server_cpu_us']:19,.0f} µs"
                )
        return "\n".join(lines)


def _costs(requests: int, cpu: float, server_cpu: float, seconds: float) -> dict[str, float]:
    n = max(requests, 1)
    return {
        "requests": float(requests),
        "rps": requests / max(seconds, 1e-9),
        "cpu_us": cpu / n * 1e6,
        "server_cpu_us": server_cpu / n * 1e6,
        "busy": cpu / max(seconds, 1e-9),
    }
