"""The appendix (13, what an echo costs): what it says of the system calls it cannot count
itself. uvloop makes its calls in C, below Python's socket and selectors modules, so its count
comes from strace, where strace may attach.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

import labkit

ROUND_TRIPS = 200


def echo_one_client(address, round_trips=ROUND_TRIPS, size=1024):
    payload = bytes(range(256)) * (size // 256)
    with socket.create_connection(address, timeout=10) as sock:
        for _ in range(round_trips):
            sock.sendall(payload)
            got = b""
            while len(got) < size:
                got += sock.recv(size - len(got))
            assert got == payload


def strace_per_round_trip(pid, run):
    """``strace -c -f -p pid`` while ``run()`` runs: calls per round trip, by name; None when
    strace cannot attach here (ptrace not allowed)."""
    out = f"/tmp/strace-echo-costs-{os.getpid()}-{pid}.txt"
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
        time.sleep(0.3)  # the server's last calls
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(10)
    calls = {}
    with open(out) as table:
        for line in table:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3]) / ROUND_TRIPS
    os.unlink(out)
    return calls


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize(
    "options, waits",
    [
        ({"api": "streams"}, {"epoll_wait": 2}),  # the woken task runs on the loop's next pass
        ({"api": "protocol"}, {"epoll_wait": 1}),  # data_received writes in the same pass
        ({"api": "streams", "loop": "uvloop"}, {"epoll_pwait": 1}),  # ready queue before poll
        ({"api": "protocol", "loop": "uvloop"}, {"epoll_pwait": 1}),
    ],
)
def test_system_calls_per_round_trip_of_asyncio_and_uvloop_as_strace_counts(options, waits):
    """What the appendix says of the calls it cannot count itself (uvloop's are made in C)."""
    with labkit.serve("asyncio_echo", **options) as srv:
        echo_one_client(srv.address, round_trips=5)  # the loop has started
        calls = strace_per_round_trip(srv.pid, lambda: echo_one_client(srv.address))
    if calls is None:
        pytest.skip("strace cannot attach here (ptrace is not allowed)")
    ((wait, expected),) = waits.items()
    assert abs(calls.get(wait, 0) - expected) < 0.1, calls
    reads = calls.get("recvfrom", 0) + calls.get("read", 0)
    writes = calls.get("sendto", 0) + calls.get("write", 0)
    assert abs(reads - 1) < 0.1 and abs(writes - 1) < 0.1, calls
