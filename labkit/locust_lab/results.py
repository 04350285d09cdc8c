"""What one Locust run measured, read from the files Locust itself wrote: a ``LocustRun``.

Locust writes its final stats (``--json-file``), its history second by second
(``--csv-full-history``) and its failures table into the run's folder; ``run_locust`` reads
them into a ``LocustRun`` (``_read``). Its p50/p95/p99 are Locust's own
(``locusts_percentiles``). A run that could not be read, or did not run, is a ``LocustError``
whose message ends with Locust's log.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labkit.child import Child


class LocustError(RuntimeError):
    """Locust failed or ran too long. The message ends with its log."""


@dataclass
class LocustRun:
    """What Locust measured in one run, read from its own CSV and JSON files."""

    users: int
    processes: int  # processes that generated load: 1, or the number of workers
    seconds: float  # how long the test ran
    requests: int = 0
    failures: int = 0
    p50: float = 0.0  # ms, over the whole run, as Locust computes them (locusts_percentiles)
    p95: float = 0.0
    p99: float = 0.0
    per_second: list[tuple[int, int, int]] = field(default_factory=list)  # (s, reqs, fails)
    history: list[dict[str, float]] = field(default_factory=list)  # s, users, p50, p95, p99
    by_name: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)  # Locust's failures table
    cpu_seconds: float = 0.0  # CPU time of the process that ran (or mastered) the test
    own_requests: int = 0  # requests made in that process (all of them, unless distributed)
    workers: list[dict[str, Any]] = field(default_factory=list)  # each worker's own report
    worker_peak_users: dict[str, int] = field(default_factory=dict)  # as the master saw them
    command: list[str] = field(default_factory=list)
    log: str = field(default="", repr=False)  # the last lines the master (or only) Locust wrote
    label: str = ""  # how figures and tables name the run
    server_cpu_seconds: float = 0.0  # the server's CPU time during the run, where measured

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def load_cpu_seconds(self) -> float:
        """CPU time of the processes that made the requests: the workers', if there were."""
        return sum(w["cpu_seconds"] for w in self.workers) if self.workers else self.cpu_seconds

    def metrics(self) -> dict[str, float]:
        """What ``labkit.Timing`` compares: requests, requests/s, and the CPU milliseconds the
        load-making processes spent per request (``cpu_ms``)."""
        return {
            "requests": float(self.requests),
            "rps": self.rps,
            "cpu_ms": self.load_cpu_seconds / max(self.requests, 1) * 1e3,
        }

    def task_error(self, file: str | Path) -> str:
        """Where a task of ``file`` last raised, from Locust's log (or ""): Locust logs the
        exception and the user goes on with its next task."""
        if "Traceback" not in self.log:
            return ""
        return where_it_broke(self.log[self.log.rindex("Traceback") :], Path(file).resolve())

    def summary(self) -> str:
        return (
            f"{self.users} users in {self.processes} process(es): {self.requests:,} requests "
            f"in {self.seconds:.1f} s ({self.rps:,.0f}/s), {self.failures:,} failures "
            f"({self.failure_ratio:.0%}), p50 {self.p50:.0f} ms, p95 {self.p95:.0f} ms, "
            f"p99 {self.p99:.0f} ms"
        )


def where_it_broke(log: str, file: Path) -> str:
    """The end of the last traceback in ``log``: from its last line in ``file`` to the error
    (else the log's last lines), with the file named by its name, not its path."""
    lines = log.replace(f"{file.parent}/", "").splitlines()
    starts = [i for i, line in enumerate(lines) if f'"{file.name}"' in line]
    if not starts:
        return "\n".join(lines[-6:])
    end = next((i for i in range(starts[-1], len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[starts[-1] : end])


# -- reading Locust's own files ---------------------------------------------------------------
#: Asks Locust's own function for the p50, p95 and p99 of a histogram read from stdin.
_LOCUSTS_PERCENTILES = """
import json, sys
from locust.stats import calculate_response_time_percentile
histogram, count = json.load(sys.stdin)
histogram = {int(ms): n for ms, n in histogram.items()}
print(json.dumps([calculate_response_time_percentile(histogram, count, p) for p in PERCENTILES]))
"""
PERCENTILES = (0.50, 0.95, 0.99)


def locusts_percentiles(histogram: dict[int, int], count: int) -> tuple[float, ...]:
    """p50, p95 and p99 of a run as Locust reports them: Locust's own
    ``calculate_response_time_percentile`` (``locust/stats.py``), which counts down from the
    slowest time with ``int(count * p)``, over the final histogram Locust wrote. (It is not
    ``labkit.percentiles``' nearest rank: for ``{100: 95, 900: 5}`` Locust's p95 is 900.)

    Locust's final CSV row can miss the run's last second, so we ask its function directly,
    in a short child process: importing Locust monkey-patches the importer with gevent, which
    a Jupyter kernel does not survive. The child reads its input, prints, and exits."""
    code = f"PERCENTILES = {PERCENTILES!r}\n{_LOCUSTS_PERCENTILES}"
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([histogram, count]),
        capture_output=True,  # never the kernel's own stdout: nbval would not see it
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise LocustError(f"Locust's percentiles could not be read:\n{done.stderr[-2000:]}")
    return tuple(float(ms) for ms in json.loads(done.stdout))


def _number(text: str) -> float:
    return float(text) if text not in ("", "N/A") else float("nan")


def _read(workdir: Path, lead: Child, users: int, processes: int) -> LocustRun:
    try:
        entries = json.loads((workdir / "run.json").read_text())
        history_csv = (workdir / "run_stats_history.csv").read_text()
        failures_csv = (workdir / "run_failures.csv").read_text()
    except OSError as err:
        raise LocustError(f"Locust wrote no stats ({err}).\n{lead.log(last=20)}") from None
    run = LocustRun(users, processes, 0.0)
    histogram: dict[int, int] = {}
    per_second: dict[int, list[int]] = {}
    for e in entries:
        run.by_name[f"{e['method']} {e['name']}"] = {
            "requests": e["num_requests"],
            "failures": e["num_failures"],
        }
        run.requests += e["num_requests"]
        run.failures += e["num_failures"]
        for ms, count in e["response_times"].items():
            histogram[int(float(ms))] = histogram.get(int(float(ms)), 0) + count
        for key, index in (("num_reqs_per_sec", 0), ("num_fail_per_sec", 1)):
            for second, count in e[key].items():
                per_second.setdefault(int(float(second)), [0, 0])[index] += count
    start = min((e["start_time"] for e in entries), default=0.0)
    end = max((e["last_request_timestamp"] or start for e in entries), default=start)
    run.seconds = max(end - start, 1e-9)
    run.p50, run.p95, run.p99 = locusts_percentiles(histogram, sum(histogram.values()))
    first = min(per_second, default=0)
    run.per_second = [(s - first, per_second[s][0], per_second[s][1]) for s in sorted(per_second)]
    run.history = _history(history_csv, first)
    run.errors = _rows(failures_csv)
    return run


def _rows(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(text.splitlines()))


def _history(text: str, first: int) -> list[dict[str, float]]:
    """The Aggregated rows of ``_stats_history.csv``, time in seconds from the first request."""
    return [
        {
            "s": int(row["Timestamp"]) - first,
            "users": _number(row["User Count"]),
            "p50": _number(row["50%"]),
            "p95": _number(row["95%"]),
            "p99": _number(row["99%"]),
        }
        for row in _rows(text)
        if row["Name"] == "Aggregated" and row["Total Request Count"] not in ("", "0")
    ]
