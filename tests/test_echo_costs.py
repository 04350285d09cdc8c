"""The appendix (13, what an echo costs): what it says of the system calls it cannot count
itself. uvloop makes its calls in C, below Python's socket and selectors modules, so its count
comes from strace, where strace may attach.
"""

import shutil

import pytest
from strace import ROUND_TRIPS, echo_one_client, strace_counts

import labkit


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
        counts = strace_counts(srv.pid, lambda: echo_one_client(srv.address))
    if counts is None:
        pytest.skip("strace cannot attach here (ptrace is not allowed)")
    calls = {name: n / ROUND_TRIPS for name, n in counts.items()}
    ((wait, expected),) = waits.items()
    assert abs(calls.get(wait, 0) - expected) < 0.1, calls
    reads = calls.get("recvfrom", 0) + calls.get("read", 0)
    writes = calls.get("sendto", 0) + calls.get("write", 0)
    assert abs(reads - 1) < 0.1 and abs(writes - 1) < 0.1, calls
