"""AsyncioTrace (lesson 09): the running/waiting timeline of asyncio tasks, under asyncio.run
and under a Jupyter kernel's own running loop (top-level await)."""

import asyncio
import time

import pytest

from labkit.timeline import AsyncioTrace, Recorder, duration, max_concurrent, plot_timeline


async def request(seconds):
    await asyncio.sleep(seconds)
    return seconds


def rows(spans):
    return sorted({s.task for s in spans})


def test_three_tasks_that_sleep_together_wait_together():
    async def main():
        with AsyncioTrace() as trace:
            tasks = [asyncio.create_task(request(0.05), name=f"Request {i}") for i in (1, 2, 3)]
            assert await asyncio.gather(*tasks) == [0.05] * 3
        return trace.spans

    spans = asyncio.run(main())
    assert rows(spans) == ["Request 1", "Request 2", "Request 3"]
    for name in rows(spans):
        mine = [s for s in spans if s.task == name]
        running = [s for s in mine if s.state == "running"]
        waiting = [s for s in mine if s.state == "waiting"]
        assert len(running) == 2  # up to the sleep, then from it to the end
        assert all(s.length < 0.02 for s in running)  # short steps
        assert max(s.length for s in waiting) >= 0.045  # the sleep, as waiting
    assert max_concurrent(spans, ["waiting"]) == 3  # all three waited at the same time
    assert duration(spans) < 0.14  # together: not 3 x 0.05 one after another
    assert max_concurrent(spans, ["running"]) == 1  # one thread: one task runs at a time
    fig = plot_timeline(spans)  # feeds the figure unchanged
    assert len(fig.axes[0].get_yticks()) == 3


def test_a_task_that_blocks_the_loop_runs_alone_for_the_whole_block():
    async def blocker():
        await asyncio.sleep(0.01)  # let the others start waiting first
        time.sleep(0.1)  # blocking: no await, the loop cannot run anyone else

    async def main():
        with AsyncioTrace() as trace:
            tasks = [asyncio.create_task(blocker(), name="Blocker")]
            tasks += [asyncio.create_task(request(0.02), name=f"Request {i}") for i in (1, 2)]
            await asyncio.gather(*tasks)
        return trace.spans

    spans = asyncio.run(main())
    block = max((s for s in spans if s.task == "Blocker"), key=lambda s: s.length)
    assert block.state == "running" and block.length >= 0.1
    others = [s for s in spans if s.task != "Blocker" and s.state == "running"]
    assert others and not [s for s in others if s.start < block.end and s.end > block.start]
    # the requests' 0.02 s sleeps ended during the block, and they ran only after it
    assert all(s.start >= block.end for s in others if s.start > block.start)
    assert max(s.end for s in others) >= block.end


def test_only_tasks_of_the_block_are_recorded_and_the_factory_is_put_back():
    created = []

    def factory(loop, coro, **kwargs):  # someone else's task factory: still used, then back
        task = asyncio.Task(coro, loop=loop, **kwargs)
        created.append(task)
        return task

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(factory)
        before = asyncio.create_task(request(0.03), name="before")
        await asyncio.sleep(0)
        recorder = Recorder()
        with AsyncioTrace(recorder) as trace:
            assert trace.recorder is recorder
            await asyncio.create_task(request(0.01), name="inside")
        assert loop.get_task_factory() is factory
        after = asyncio.create_task(request(0.01), name="after")
        await asyncio.gather(before, after)
        return trace.spans

    spans = asyncio.run(main())
    assert rows(spans) == ["inside"]
    assert [t.get_name() for t in created][:3] == ["before", "inside", "after"]  # then run()'s own


def test_a_task_still_waiting_at_the_end_waits_until_the_end():
    async def main():
        with AsyncioTrace() as trace:
            slow = asyncio.create_task(request(10), name="slow")
            await asyncio.sleep(0.02)
        end = trace.recorder.now()
        slow.cancel()
        await asyncio.sleep(0.02)
        return trace.spans, end

    spans, end = asyncio.run(main())
    last = [s for s in spans if s.task == "slow"][-1]
    assert last.state == "waiting" and last.end <= end and last.length >= 0.015
    assert all(s.end <= end for s in spans)  # nothing was recorded after the block


def test_it_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="no running event loop"):
        AsyncioTrace().__enter__()


def test_it_records_under_a_jupyter_kernels_own_loop():
    """Top-level await in a cell: the kernel's loop is already running."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    cells = [
        "import asyncio\nfrom labkit.timeline import AsyncioTrace",
        "async def request(s):\n    await asyncio.sleep(s)\n\n"
        "with AsyncioTrace() as trace:\n"
        "    await asyncio.gather(*(asyncio.create_task(request(0.05), name=f'Request {i}')\n"
        "                           for i in (1, 2, 3)))\n"
        "print(sorted({s.task for s in trace.spans}), len(trace.spans))",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    out = nb.cells[1].outputs[0]["text"]
    assert out.strip() == "['Request 1', 'Request 2', 'Request 3'] 12"
