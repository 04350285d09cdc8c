"""Lesson 08's goal: 10,000 concurrent clients each download lyrics.txt and upload it back,
against the selectors file server and against its gevent version, with 0 errors and every
hash verified. Records wall time and the server's peak memory (VmHWM from /proc).

The clients are generator tasks on one thread of this process (labkit.clients.files,
mode "selectors"), so the client side needs no 10,000 threads.

    python -m benchmarks files --clients 10000      # the default
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import labkit
from labkit import proc
from labkit.runs import run_file_clients

ABOUT = "lesson 08: 10,000 clients GET and PUT a file, every hash verified"
CLIENTS = 10_000
DATA = Path(__file__).resolve().parent.parent / "data"


def peak_memory_mib(pid: int) -> float:
    return proc.status_kib(pid, "VmHWM") / 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients", type=int, default=CLIENTS, help=f"concurrent clients (default: {CLIENTS:,})"
    )


def run(args: argparse.Namespace) -> str:
    return measure(args.clients)


def measure(clients: int = CLIENTS) -> str:
    expected = hashlib.sha256((DATA / "lyrics.txt").read_bytes()).hexdigest()
    rows = []
    for server in ("selectors_files", "gevent_files"):
        with (
            tempfile.TemporaryDirectory() as uploads,
            labkit.serve(server, root=DATA, upload_dir=uploads) as srv,
        ):
            result = run_file_clients(
                srv.address, clients, expected_sha256=expected, mode="selectors", timeout=120
            )
            stats, memory = srv.stats(), peak_memory_mib(srv.pid)
        ok = result.served == clients and not result.mismatches and not result.errors
        rows.append(
            f"| {server} | {result.served:,} | {result.mismatches} | "
            f"{len(result.errors)} | {stats.get('most_connected', 0):,} | "
            f"{result.elapsed:.2f} | {memory:.1f} | {'yes' if ok else 'NO'} |"
        )
    return "\n".join(
        [
            f"## {clients:,} clients: GET lyrics.txt, verify, PUT it back, verify",
            "",
            "Goal: every client served, 0 errors, every SHA-256 verified.",
            "",
            "| server | clients served | mismatches | errors | most connected at once | "
            "wall time (s) | server peak memory (MiB) | goal met |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
