"""Lesson 09's measurements of what the student writes: how each way of running jobs left the
others when one failed (Ending, how_it_ended, all_endings), a stream handler's write buffer
with and without drain (buffer_growth), and Rounds, the Timing that keeps each way's result.
"""

import asyncio
import time
from functools import partial

import pytest

from labkit import asyncio_lab as lab
from labkit.clients.pages import run_in_new_loop


# -- when one job fails --------------------------------------------------------------------------
async def job(name, seconds, log, fails=False):
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        log[name] = "cancelled"
        raise
    if fails:
        log[name] = "failed"
        raise RuntimeError(f"{name} failed")
    log[name] = "done"


def three_jobs(log, slow=0.3):
    return [job("A", slow, log), job("B", 0.02, log, fails=True), job("C", slow, log)]


async def plain_gather(log):
    await asyncio.gather(*three_jobs(log))


async def task_group(log):
    async with asyncio.TaskGroup() as group:
        for coro in three_jobs(log):
            group.create_task(coro)


async def all_fine(log):
    await asyncio.gather(job("A", 0.01, log), job("C", 0.01, log))


def test_gather_raises_the_first_failure_and_leaves_the_others_running():
    (ending,) = asyncio.run(lab.all_endings([plain_gather], ["A", "B", "C"], after=0.4))
    assert ending.way == "plain_gather" and ending.raised == "RuntimeError"
    assert ending.at_return == {"A": "running", "B": "failed", "C": "running"}
    assert ending.later == {"A": "done", "B": "failed", "C": "done"}
    assert ending.summary("A") == ("RuntimeError", "running", "done")


def test_a_taskgroup_cancels_the_others_and_raises_an_exception_group():
    ending = asyncio.run(lab.how_it_ended(task_group, ["A", "B", "C"], after=0.0))
    assert ending.raised == "ExceptionGroup"
    assert ending.at_return == ending.later == {"A": "cancelled", "B": "failed", "C": "cancelled"}


def test_a_way_that_raises_nothing_says_so_and_the_text_is_stable():
    ending = asyncio.run(lab.how_it_ended(all_fine, ["A", "C"], after=0.0))
    assert ending.raised == "nothing"
    assert ending.text() == (
        "all_fine: raised nothing; when it returned: A done, C done; later: A done, C done"
    )


def test_all_endings_run_the_ways_side_by_side():
    started = time.perf_counter()
    endings = asyncio.run(lab.all_endings([plain_gather, task_group] * 2, ["A", "B", "C"], 0.4))
    assert time.perf_counter() - started < 0.4 + 0.3 + 0.3  # together, not 4 x 0.7 s
    assert [e.raised for e in endings] == ["RuntimeError", "ExceptionGroup"] * 2


# -- a stream handler's write buffer -------------------------------------------------------------
async def send_fast(reader, writer, drain):
    while True:
        writer.write(b"x" * 16_384)
        if drain:
            await writer.drain()
        await asyncio.sleep(0.001)


def test_without_drain_the_buffer_grows_far_past_the_high_water_mark():
    started = time.perf_counter()
    without = run_in_new_loop(lab.buffer_growth, partial(send_fast, drain=False))
    drained = run_in_new_loop(lab.buffer_growth, partial(send_fast, drain=True))
    assert time.perf_counter() - started < 4.0
    assert without.limits == drained.limits == (16 * 1024, 64 * 1024)  # asyncio's defaults
    assert drained.peak <= 64 * 1024 + 16_384  # the high-water mark, plus the write that crossed
    assert without.peak > 5 * drained.peak  # several MB measured
    assert len(without.series) >= 20 and without.series[-1][0] < 1.0


def test_the_handler_task_is_stopped_and_nothing_is_left_running():
    async def run():
        growth = await lab.buffer_growth(partial(send_fast, drain=True), seconds=0.1)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return growth, others

    growth, others = asyncio.run(run())
    assert others == [] and growth.peak > 0


def test_buffer_growth_runs_where_a_loop_already_runs():
    """As in a Jupyter kernel, whose thread runs the kernel's own event loop."""

    async def cell():
        return run_in_new_loop(lab.buffer_growth, partial(send_fast, drain=True), seconds=0.1)

    assert asyncio.run(cell()).peak <= 64 * 1024 + 16_384


def test_growth_is_drawn_one_line_per_series():
    fig = lab.plot_growth({"a": [(0.0, 1), (0.1, 3)], "b": [(0.0, 0), (0.1, 1)]})
    assert len(fig.axes[0].get_lines()) == 2 and fig.axes[0].get_xlabel() == "time (ms)"


# -- Rounds ----------------------------------------------------------------------------------------
def test_rounds_keeps_each_ways_last_result_and_judges_on_its_measure(capsys):
    calls = []

    def run():
        calls.append(1)
        return run_in_new_loop(lab.how_it_ended, task_group, ["A", "B", "C"], 0.0)

    timing = lab.Rounds(
        {"group": run}, measure=lambda e: {"cancelled": float(e.at_return["A"] == "cancelled")}
    )
    assert timing.rounds == 1 and len(calls) == 1
    assert timing.last["group"].raised == "ExceptionGroup"
    timing.claim("A was cancelled", lambda t: t.most("group", "cancelled"), above=0.5)
    assert timing.rounds == 1  # held in the first round: no more runs
    assert capsys.readouterr().out.startswith("✔ A was cancelled")


def test_rounds_with_expect_runs_until_a_result_passes_and_keeps_showing_it():
    results = iter([1, 2, 3])
    timing = lab.Rounds(
        {"n": lambda: next(results)}, measure=lambda n: {"n": n}, expect=lambda n: n == 2
    )
    assert timing.last["n"] == 1 and timing.values("n", "as expected") == [0.0]
    timing.claim("one passed", lambda t: t.most("n", "as expected"), above=0.5)
    assert timing.rounds == 2 and timing.last["n"] == 2
    timing.run_round()  # 3 does not pass: the 2 that did stays on show
    assert timing.last["n"] == 2 and timing.values("n", "n") == [1.0, 2.0, 3.0]


def test_a_claim_that_never_holds_fails_under_the_check(monkeypatch):
    monkeypatch.setenv("LABKIT_STRICT_CLAIMS", "1")
    timing = lab.Rounds({"n": lambda: 1}, measure=lambda n: {"n": n}, rounds=2, seconds=5)
    with pytest.raises(AssertionError):
        timing.claim("over 5", lambda t: t.most("n", "n"), above=5)
    assert timing.rounds == 2
