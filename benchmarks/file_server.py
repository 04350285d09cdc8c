"""Lesson 08's goal: 10,000 clients each download lyrics.txt and upload it back, against the
selectors file server and against its gevent version, with 0 errors and every hash verified.

Two loads, each repeated (``--repeats``), the two servers taking turns run by run:

* **ramped** (the figures to quote): a client starts only while fewer than ``--max-unanswered``
  are connected without their first reply. Every connection waiting in the server's accept
  queue is one of those, so with the limit below the listen backlog the kernel refuses no
  handshake and no client waits out TCP's 1 s SYN retry: the wall time is the server's.
* **all at once** (lesson 08's "10,000 concurrent clients"): every client connects at the
  start. Where the server accepts more slowly than they arrive, its accept queue overflows,
  the kernel drops the handshakes (ListenOverflows) and the clients send their SYN again a
  second later (TCPSynRetrans): then the wall time mostly measures that retry timer.

Each run records the kernel's TCP counters before and after (labkit.netstat; they count the
whole machine, so another program's connections add to them), the server's most clients
connected at once and its peak memory (VmHWM). The clients are generator tasks on one thread of
this process (labkit.clients.files, mode "selectors"): no 10,000 threads on the client side,
but one Python thread, sharing the machine with the server, so the figures are the pair's.

    python -m benchmarks files                           # the defaults: 10,000 clients, 3 runs
    python -m benchmarks files --clients 1000 --repeats 1 --no-all-at-once
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import labkit
from labkit import netstat, proc
from labkit.clients import files

ABOUT = "lesson 08: 10,000 clients GET and PUT a file, every hash verified, ramped and at once"
CLIENTS = 10_000
REPEATS = 3
BACKLOG = 4096  # the servers' listen(backlog); the kernel caps it at somaxconn
SERVERS = ("selectors_files", "gevent_files")
LIMITED = 0.9  # a side whose CPU was busy this share of the wall time is what limited a run
DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass
class Run:
    """One run of one server under one load."""

    served: int
    mismatches: int
    errors: int
    most_connected: int
    wall: float  # seconds
    server_cpu: float  # CPU seconds the server used in the run (user + system)
    client_cpu: float  # CPU seconds this process, the clients, used in the run
    memory: float  # the server's peak resident memory, MiB
    tcp: netstat.TcpCounters  # what the kernel's counters grew by (machine-wide)

    def ok(self, clients: int) -> bool:
        return self.served == clients and not self.mismatches and not self.errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients", type=int, default=CLIENTS, help=f"clients per run (default: {CLIENTS:,})"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"runs of each server under each load; medians are published (default: {REPEATS})",
    )
    parser.add_argument(
        "--max-unanswered",
        type=int,
        default=None,
        help="ramped load: most clients connected without their first reply (default: half "
        f"the effective listen backlog, min({BACKLOG}, somaxconn) // 2)",
    )
    parser.add_argument(
        "--all-at-once",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the load where every client connects at the start (default: yes)",
    )


def effective_backlog() -> int:
    """What the servers' listen queue holds: their backlog, capped by the kernel."""
    return min(BACKLOG, netstat.listen_limits().get("somaxconn", BACKLOG))


def open_files_limit(pid: int | None = None) -> str:
    """``soft/hard`` limit on open files of this process, or of process ``pid``."""
    if pid is None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return f"{soft:,}/{hard:,}"
    with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
        line = next(line for line in limits if line.startswith("Max open files"))
    return "/".join(f"{int(n):,}" if n.isdigit() else n for n in line.split()[3:5])


def measure_once(server: str, clients: int, max_unanswered: int | None) -> tuple[Run, str]:
    """One run; also the server's open-files limit (it is the server that holds them)."""
    expected = hashlib.sha256((DATA / "lyrics.txt").read_bytes()).hexdigest()
    with (
        tempfile.TemporaryDirectory() as uploads,
        labkit.serve(server, root=DATA, upload_dir=uploads, backlog=BACKLOG) as srv,
    ):
        server_cpu, client_cpu = proc.cpu_seconds(srv.pid), time.process_time()
        with netstat.counting() as tcp:
            result = files.run_file_clients(
                srv.address,
                clients,
                expected_sha256=expected,
                mode="selectors",
                timeout=120,
                max_unanswered=max_unanswered,
            )
        server_cpu = proc.cpu_seconds(srv.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        stats, memory = srv.stats(), proc.status_kib(srv.pid, "VmHWM") / 1024
        limit = open_files_limit(srv.pid)
    run = Run(
        result.served,
        result.mismatches,
        len(result.errors),
        stats.get("most_connected", 0),
        result.elapsed,
        server_cpu,
        client_cpu,
        memory,
        tcp.delta,
    )
    return run, limit


def spread(values: list[float], form: str = "{:,.0f}") -> str:
    """``median (min–max)``, or the one value."""
    median = form.format(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({form.format(min(values))}–{form.format(max(values))})"


def row(server: str, runs: list[Run], clients: int) -> str:
    total = sum((r.tcp for r in runs), netstat.TcpCounters())
    return (
        f"| {server} | {min(r.served for r in runs):,} | {sum(r.mismatches for r in runs)} | "
        f"{sum(r.errors for r in runs)} | {spread([r.most_connected for r in runs])} | "
        f"{spread([r.wall for r in runs], '{:.2f}')} | "
        f"{statistics.median(r.server_cpu for r in runs):.2f} | "
        f"{statistics.median(r.client_cpu for r in runs):.2f} | "
        f"{spread([r.memory for r in runs], '{:.1f}')} | "
        f"{total.listen_overflows:,} | {total.syn_retrans:,} | "
        f"{'yes' if all(r.ok(clients) for r in runs) else 'NO'} |"
    )


def busy(load: str, runs: dict[str, list[Run]]) -> str:
    """Which side's CPU was busy for the run's whole wall time, and so limited it."""
    parts = []
    for server, server_runs in runs.items():
        shares = {
            "the server": statistics.median(r.server_cpu / r.wall for r in server_runs),
            "the clients": statistics.median(r.client_cpu / r.wall for r in server_runs),
        }
        limit = [side for side, share in shares.items() if share >= LIMITED]
        parts.append(
            f"{server}: server {shares['the server']:.0%}, clients {shares['the clients']:.0%}"
            f" ({' and '.join(limit) or 'neither: they waited, on each other or for a core'})"
        )
    return (
        f"* CPU time as a share of wall time, {load} (median of the runs; a side busy "
        f"{LIMITED:.0%} of the time or more is what limited the run): {'; '.join(parts)}."
    )


def table(title: str, runs: dict[str, list[Run]], clients: int) -> list[str]:
    return [
        title,
        "",
        "| server | least served in a run | mismatches | errors | most connected at once | "
        "wall time (s) | server CPU (s) | client CPU (s) | server peak memory (MiB) | "
        "listen overflows | SYN retransmits | goal met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(row(server, server_runs, clients) for server, server_runs in runs.items()),
        "",
    ]


def run(args: argparse.Namespace) -> str:
    return measure(args.clients, args.repeats, args.max_unanswered, args.all_at_once)


def measure(
    clients: int = CLIENTS,
    repeats: int = REPEATS,
    max_unanswered: int | None = None,
    all_at_once: bool = True,
) -> str:
    """The section for results.md: one table per load, one row per server."""
    backlog = effective_backlog()
    gate = max_unanswered or max(1, backlog // 2)
    loads = {"ramped": gate, **({"all at once": None} if all_at_once else {})}
    load_before = os.getloadavg()
    runs, server_limit = run_all(loads, clients, repeats)
    load_after = os.getloadavg()
    return "\n".join(
        [
            f"## {clients:,} clients: GET lyrics.txt, verify, PUT it back, verify",
            "",
            "Goal: every client served, 0 errors, every SHA-256 verified, in every run. "
            f"Each figure is the median of {repeats} run{'s' * (repeats != 1)} of each server "
            "(the two taking turns), with the least and the most in brackets; counts of "
            "mismatches, errors and kernel counters are totals over the runs.",
            "",
            *table(
                f"### Ramped: at most {gate:,} clients connected without their first reply",
                runs["ramped"],
                clients,
            ),
            *(
                table(
                    "### All at once: every client connects at the start",
                    runs["all at once"],
                    clients,
                )
                if all_at_once
                else []
            ),
            *what_limited(runs, backlog, server_limit),
            "* The clients are one Python thread on the same machine as the server, so a wall "
            "time is the pair's, not the server's alone. Load average before and after: "
            f"{load_before[0]:.2f} and {load_after[0]:.2f} (1 min).",
            "",
        ]
    )


def run_all(
    loads: dict[str, int | None], clients: int, repeats: int
) -> tuple[dict[str, dict[str, list[Run]]], str]:
    """Every server under every load, ``repeats`` times, the servers taking turns; and the
    server's open-file limits, as it said them."""
    runs: dict[str, dict[str, list[Run]]] = {load: {s: [] for s in SERVERS} for load in loads}
    server_limit = ""
    for load, limit in loads.items():
        for repeat in range(repeats):
            for server in SERVERS if repeat % 2 == 0 else SERVERS[::-1]:  # take turns
                print(f"   {load}, {server}, run {repeat + 1} of {repeats}", flush=True)
                one, server_limit = measure_once(server, clients, limit)
                runs[load][server].append(one)
    return runs, server_limit


def what_limited(
    runs: dict[str, dict[str, list[Run]]], backlog: int, server_limit: str
) -> list[str]:
    """The notes under the tables: the kernel's queue and counters, busy sides, open files."""
    ramped = [r for server_runs in runs["ramped"].values() for r in server_runs]
    clean = not any(r.tcp.refused() for r in ramped)
    kernel = netstat.listen_limits()
    cells = ", ".join(f"{name} {value:,}" for name, value in kernel.items())
    return [
        "What limited these runs:",
        "",
        f"* The servers listen with a backlog of {BACKLOG:,}; the kernel caps it at "
        f"somaxconn, so their accept queue holds {backlog:,} ({cells}).",
        "* Listen overflows and SYN retransmits are the kernel's counters "
        "(/proc/net/netstat), grown over each run and added up: they count the whole "
        "machine, so another program's connections add to them. "
        + (
            "In the ramped runs they stayed at 0: no client waited out the 1 s SYN retry."
            if clean
            else "They were not 0 in the ramped runs: some of their wall time may be the "
            "kernel's 1 s SYN retry (another program, or a limit above the backlog)."
        ),
        "* In the all-at-once runs, a server that accepts more slowly than clients arrive "
        "overflows its accept queue; every overflow is a client whose SYN is sent again "
        "1 s later (then 2 s, 4 s...), so part of those wall times is that timer.",
        *(busy(load, load_runs) for load, load_runs in runs.items()),
        f"* Open files (soft/hard): this client process {open_files_limit()}, the server "
        f"{server_limit}; every client costs each side one.",
    ]
