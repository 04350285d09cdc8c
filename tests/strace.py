"""System calls seen from outside: strace's count of a running server's calls, and a client
that makes a known number of echo round trips. Shared by the tests of ``--count-calls``
(test_syscalls) and of the appendix's uvloop counts (test_echo_costs).

from strace import echo_one_client, strace_counts
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable

ROUND_TRIPS = 200


def echo_one_client(address, round_trips: int = ROUND_TRIPS, size: int = 1024) -> None:
    """One client, ``round_trips`` messages of ``size`` bytes, each echo read in full."""
    payload = os.urandom(size)
    with socket.create_connection(address, timeout=10) as sock:
        for _ in range(round_trips):
            sock.sendall(payload)
            got = b""
            while len(got) < size:
                got += sock.recv(size - len(got))
            assert got == payload


def strace_counts(pid: int, run: Callable[[], object], after: float = 0.3) -> dict[str, int] | None:
    """``strace -c -f -p pid`` while ``run()`` runs, and ``after`` seconds more (the server's
    last calls): calls per system call name; None when strace cannot attach here (ptrace is
    not allowed)."""
    out = f"/tmp/strace-{os.getpid()}-{pid}.txt"
    tracer = subprocess.Popen(
        ["strace", "-c", "-f", "-p", str(pid), "-o", out], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline, attached = time.monotonic() + 10, ""
        while "attached" not in attached:  # "Process N attached", once per thread
            if tracer.poll() is not None or time.monotonic() > deadline:
                return None
            attached += tracer.stderr.readline()
        time.sleep(0.3)  # every thread attached
        run()
        time.sleep(after)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(10)
    calls = {}
    with open(out) as table:
        for line in table:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3])
    os.unlink(out)
    return calls
