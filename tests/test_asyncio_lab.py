"""Lesson 09's experiments: failures, timeouts and cancellation on asyncio and gevent,
back-pressure, a loop blocked by one call, and the system calls of asyncio's echo servers.
Timing checks have wide margins (2 shared cores).
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

import labkit
from labkit import asyncio_lab as lab
from labkit.timeline import max_concurrent


@pytest.fixture(scope="module")
def base():
    with labkit.serve("latency_http", delay=0.0) as srv:
        yield f"http://{srv.host}:{srv.port}/pages/page-48k.html"


def staggered(base, n=5, fail=2, step=0.15):
    """Request i answers after i * step seconds; request ``fail`` answers 503."""
    return [
        f"{base}?id={i}&delay={step * i}" + ("&error_rate=1" if i == fail else "")
        for i in range(1, n + 1)
    ]


# -- errors, timeouts, cancellation -----------------------------------------------------------
def test_a_taskgroup_cancels_the_others_when_one_request_fails(base):
    report = asyncio.run(lab.fetch_all_or_fail(staggered(base, step=0.25)))
    assert report.outcomes == {
        "Request 1": "done",
        "Request 2": "failed",
        "Request 3": "cancelled",
        "Request 4": "cancelled",
        "Request 5": "cancelled",
    }
    assert report.raised == (
        "ExceptionGroup: unhandled errors in a TaskGroup [HTTPStatusError: 503 Service Unavailable]"
    )
    assert report.after_failure < 0.25  # at once, not at their answers (0.25 s to 0.75 s on)
    assert "Request 2: failed (HTTPStatusError: 503 Service Unavailable)" in report.text()


def test_gather_with_return_exceptions_lets_the_others_finish(base):
    report = asyncio.run(lab.fetch_all_keep_going(staggered(base, n=3, step=0.05)))
    assert report.outcomes == {"Request 1": "done", "Request 2": "failed", "Request 3": "done"}
    assert report.raised == ""


def test_asyncio_timeout_cuts_only_the_slow_request(base):
    urls = [f"{base}?id=1&delay=0.05", f"{base}?id=2&delay=2", f"{base}?id=3&delay=0.1"]
    started = time.perf_counter()
    report = asyncio.run(lab.fetch_within(urls, 0.4))
    assert time.perf_counter() - started < 1.5  # the 2 s request was not waited for
    assert report.outcomes == {
        "Request 1": "done",
        "Request 2": "timed out",
        "Request 3": "done",
    }
    slow = next(e for e in report.ends if e.task == "Request 2")
    assert 0.35 < slow.end - slow.start < 1.0


def test_gevent_joinall_raises_the_first_failure_and_kill_cancels_the_rest(capfd):
    report = lab.greenlets_all_or_fail([0.05, 0.15, 0.5, 0.6], fail=2)
    assert report.outcomes == {
        "Task 1": "done",
        "Task 2": "failed",
        "Task 3": "cancelled",
        "Task 4": "cancelled",
    }
    assert report.raised == "RuntimeError: Task 2 failed on purpose"
    assert max(e.end for e in report.ends) < 0.4  # killed, not waited for
    assert capfd.readouterr().err == ""  # no timestamped traceback from the hub


def test_gevent_joinall_alone_leaves_the_others_running():
    report = lab.greenlets_all_or_fail([0.05, 0.1, 0.2], fail=2, kill_rest=False)
    assert report.outcomes == {"Task 1": "done", "Task 2": "failed", "Task 3": "done"}
    assert report.raised == "RuntimeError: Task 2 failed on purpose"


def test_gevent_timeout_cuts_only_the_slow_greenlet(capfd):
    report = lab.greenlets_within([0.05, 2.0, 0.1], 0.3)
    assert report.outcomes == {"Task 1": "done", "Task 2": "timed out", "Task 3": "done"}
    slow = next(e for e in report.ends if e.task == "Task 2")
    assert 0.25 < slow.end - slow.start < 1.0
    assert capfd.readouterr().err == ""


def test_outcomes_are_drawn_in_their_own_colours():
    report = lab.greenlets_all_or_fail([0.01, 0.02, 0.05], fail=2)
    assert {s.state for s in report.spans} == {"done", "failed", "cancelled"}
    fig = lab.plot_outcomes({"gevent": report, "again": report})
    assert len(fig.axes) == 2


# -- back-pressure ----------------------------------------------------------------------------
def test_an_unbounded_queue_grows_a_bounded_one_stays_at_its_bound():
    started = time.perf_counter()
    unbounded = lab.queue_growth(None)
    bounded = lab.queue_growth(10)
    assert time.perf_counter() - started < 4.0  # < 2 s each
    assert max(n for _, n in unbounded) > 50  # 5x the bound; ~300 measured
    assert max(n for _, n in bounded) <= 10
    assert max(n for _, n in bounded) >= 5  # it did fill up
    assert len(unbounded) >= 20 and unbounded[-1][0] < 1.0


def test_without_drain_the_writer_buffer_grows_far_past_drains_high_water_mark():
    started = time.perf_counter()
    without = lab.writer_buffer_growth(drain=False)
    with_drain = lab.writer_buffer_growth(drain=True)
    assert time.perf_counter() - started < 4.0
    peak = max(n for _, n in with_drain.series)
    assert peak <= 64 * 1024 + 16_384  # the high-water mark, plus the write that crossed it
    assert max(n for _, n in without.series) > 5 * peak  # ~2 MB measured
    assert without.after_waiting == []  # never awaited drain()


def test_drain_waits_from_the_high_water_mark_down_to_the_low_water_mark():
    run = lab.writer_buffer_growth(drain=True)
    assert run.limits == (16 * 1024, 64 * 1024)  # asyncio's defaults: high 64 KiB, low / 4
    assert len(run.after_waiting) >= 1  # the slow reader made it wait (twice in 0.5 s, idle)
    assert max(run.after_waiting) <= 16 * 1024  # resumed at the low-water mark, not at 64 KiB


def test_rounds_keeps_each_ways_last_result_and_judges_on_its_measure():
    calls = []

    def report():
        calls.append(1)
        return lab.greenlets_all_or_fail([0.3, 0.02, 0.3], fail=2)

    timing = lab.Rounds({"gevent": report}, rounds=3, seconds=10)
    assert timing.rounds == 1 and len(calls) == 1
    assert timing.last["gevent"].outcomes["Task 2"] == "failed"
    assert timing.claim(
        "cancelled at once", lambda t: t.best("gevent", "after the failure"), below=0.2
    )
    assert timing.rounds == 1  # held in the first round: no more runs
    assert 0.0 <= timing.best("gevent", "after the failure") < 0.2


def test_rounds_with_expect_runs_until_a_result_passes_and_keeps_showing_it():
    results = iter([1, 2, 3])
    timing = lab.Rounds(
        {"n": lambda: next(results)}, measure=lambda n: {"n": n}, expect=lambda n: n == 2
    )
    assert timing.last["n"] == 1 and timing.values("n", "as expected") == [0.0]
    assert timing.claim("one passed", lambda t: t.most("n", "as expected"), above=0.5)
    assert timing.rounds == 2 and timing.last["n"] == 2
    timing.run_round()  # 3 does not pass: the 2 that did stays on show
    assert timing.last["n"] == 2 and timing.values("n", "n") == [1.0, 2.0, 3.0]


def test_a_report_measures_how_soon_the_others_ended_and_how_long_the_stopped_ran():
    report = lab.greenlets_all_or_fail([0.3, 0.05, 0.3], fail=2)
    assert report.after_failure < 0.1  # killed at once, not waited for (0.25 s more)
    assert 0.03 < report.stopped_after < 0.25  # ran until the failure, not their 0.3 s
    waited = lab.greenlets_all_or_fail([0.2, 0.05, 0.2], fail=2, kill_rest=False)
    assert waited.after_failure > 0.1 and waited.stopped_after == 0.0
    timed = lab.greenlets_within([0.05, 0.5, 0.05], 0.2)
    assert 0.2 <= timed.stopped_after < 0.4 and timed.after_failure == float("inf")


def test_growth_is_the_peak_and_the_rise_over_the_last_samples():
    series = [(i / 10, i) for i in range(20)]
    assert lab.growth(series) == {"peak": 19, "rise at the end": 9}
    assert lab.growth([(0.0, 4)]) == {"peak": 4, "rise at the end": 0}


def test_growth_is_drawn_one_line_per_series():
    fig = lab.plot_growth({"a": [(0.0, 1), (0.1, 3)], "b": [(0.0, 0), (0.1, 1)]})
    assert len(fig.axes[0].get_lines()) == 2 and fig.axes[0].get_xlabel() == "time (ms)"


# -- blocking the loop ------------------------------------------------------------------------
@pytest.mark.parametrize("block", ["time.sleep", "cpu"])
def test_a_blocking_call_stalls_every_task_and_debug_mode_names_it(block):
    result = lab.blocked_loop(block)
    assert result.late_by >= 0.2 * 0.9  # another task's wait stretched by the block
    assert len(result.slow_callbacks) == 1
    slow = result.slow_callbacks[0]
    assert (slow.task, slow.coro) == ("Task 1", "hog") and 0.18 < slow.seconds < 1.0
    assert "Executing <Task" in slow.message and "took" in slow.message
    assert str(slow) == "Executing <Task 'Task 1' coro=hog()> took more than 0.1 seconds"


@pytest.mark.parametrize("block", ["to_thread", "none"])
def test_to_thread_keeps_the_loop_free(block):
    # a busy machine only adds lateness: the best of three runs is the loop's own
    runs = [lab.blocked_loop(block) for _ in range(3)]
    result = min(runs, key=lambda run: (len(run.slow_callbacks), run.late_by))
    assert result.slow_callbacks == []
    assert result.late_by < 0.1  # vs >= 0.18 when blocked
    assert {s.task for s in result.spans} == {"Task 1", "Task 2", "Task 3"}
    assert max_concurrent(result.spans) == 3


def test_debug_mode_warnings_are_captured_not_printed(capfd):
    lab.blocked_loop("time.sleep")
    assert capfd.readouterr().err == ""


def test_the_experiments_run_where_a_loop_already_runs():
    """As in a Jupyter kernel, whose thread runs the kernel's own event loop."""

    async def cell():
        return lab.queue_growth(5, duration=0.1), lab.blocked_loop("time.sleep")

    queue, blocked = asyncio.run(cell())
    assert max(n for _, n in queue) <= 5 and len(blocked.slow_callbacks) == 1


def test_an_unknown_block_is_refused():
    with pytest.raises(ValueError, match="to_thread"):
        lab.blocked_loop("nap")


# -- system calls per round trip (lesson 09's "why streams cost more") --------------------------
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
    out = f"/tmp/strace-lesson09-{os.getpid()}-{pid}.txt"
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
    """What lesson 09 says of the calls it cannot count itself (uvloop's are made in C)."""
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
