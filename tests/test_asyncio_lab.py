"""Lesson 09's experiments: failures, timeouts and cancellation on asyncio and gevent,
back-pressure, and a loop blocked by one call. Timing claims have wide margins (2 shared cores).
"""

import asyncio
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
    report = asyncio.run(lab.fetch_all_or_fail(staggered(base)))
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
    ends = {e.task: e.end for e in report.ends}
    assert all(ends[f"Request {i}"] - ends["Request 2"] < 0.1 for i in (3, 4, 5))  # at once
    assert ends["Request 5"] < 0.6  # long before its own answer (0.75 s)
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
    assert max(n for _, n in with_drain) < 256 * 1024  # high-water mark 64 KiB, plus a chunk
    assert max(n for _, n in without) > 5 * max(n for _, n in with_drain)  # ~2 MB measured


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
    result = lab.blocked_loop(block)
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
