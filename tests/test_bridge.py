"""The greenlet bridge (labkit.bridge): plain synchronous code that awaits through
``greenlet_spawn``/``await_only``, its errors both ways, and the greenlet switches that carry
each await, seen with lesson 02's switch tracer."""

import asyncio
import time

import greenlet
import pytest

from labkit.bridge import BridgeGreenlet, await_only, greenlet_spawn
from labkit.timeline import AsyncioTrace, GreenletTrace


def add_two_remote_values(x):
    """Synchronous code, two calls deep in a plain function stack, that waits twice."""

    def fetch(value):  # a plain function: no async anywhere on this side
        return await_only(asyncio.sleep(0.01, result=value))

    return fetch(x) + fetch(x + 1)


def test_sync_code_awaits_twice_through_the_bridge():
    assert asyncio.run(greenlet_spawn(add_two_remote_values, 20)) == 41


def test_other_tasks_run_while_the_sync_code_waits():
    """Three bridged calls of 0.1 s each overlap: the loop was free during every await_only."""

    def slow(value):
        return await_only(asyncio.sleep(0.1, result=value))

    async def main():
        return await asyncio.gather(*(greenlet_spawn(slow, i) for i in range(3)))

    started = time.perf_counter()
    assert asyncio.run(main()) == [0, 1, 2]
    assert time.perf_counter() - started < 0.25  # not 0.3 s: they waited at the same time


def test_an_exception_of_the_awaitable_reaches_the_sync_code_and_can_be_caught_there():
    async def refused():
        await asyncio.sleep(0)
        raise ConnectionRefusedError("nobody listens")

    def careful():
        try:
            await_only(refused())
        except ConnectionRefusedError as error:
            return f"caught in sync code: {error}"

    def careless():
        return await_only(refused())

    assert asyncio.run(greenlet_spawn(careful)) == "caught in sync code: nobody listens"
    with pytest.raises(ConnectionRefusedError):  # uncaught: it comes out of greenlet_spawn
        asyncio.run(greenlet_spawn(careless))


def test_an_exception_of_the_sync_code_comes_out_of_greenlet_spawn():
    def broken():
        await_only(asyncio.sleep(0))
        raise KeyError("row 7")

    with pytest.raises(KeyError, match="row 7"):
        asyncio.run(greenlet_spawn(broken))


def test_cancelling_the_awaiting_task_unwinds_the_sync_code():
    unwound = []

    def waits_long():
        try:
            await_only(asyncio.sleep(10))
        finally:
            unwound.append(True)

    async def main():
        task = asyncio.create_task(greenlet_spawn(waits_long))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert unwound == [True]


def test_await_only_outside_a_bridge_raises_a_clear_error():
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="only inside a function run by `await greenlet_spawn"):
        await_only(coro)
    assert coro.cr_frame is None  # closed: no "never awaited" warning later


def test_the_switch_tracer_sees_a_switch_carry_each_await():
    """Lesson 02's tracer: into the sync code, out with the first awaitable, back with its
    result, out with the second, back, and out for good with the return value."""
    loop_greenlet = greenlet.getcurrent()  # asyncio.run steps its tasks in this greenlet

    def who(g):
        if g is loop_greenlet:
            return "loop"
        return "sync code" if isinstance(g, BridgeGreenlet) else None

    with GreenletTrace(who) as trace:
        assert asyncio.run(greenlet_spawn(add_two_remote_values, 1)) == 3
    there, back = ("loop", "sync code"), ("sync code", "loop")
    assert trace.switches == [there, back, there, back, there, back]
    sync_running = [s for s in trace.spans if s.task == "sync code" and s.state == "running"]
    sync_waiting = [s for s in trace.spans if s.task == "sync code" and s.state == "waiting"]
    assert len(sync_running) == 3 and len(sync_waiting) == 2  # it waited once per await_only
    assert all(s.length > 0.005 for s in sync_waiting)  # each wait: a 0.01 s sleep in the loop


def test_the_asyncio_trace_sees_the_bridged_task_wait_at_each_await():
    async def main():
        with AsyncioTrace() as trace:
            task = asyncio.create_task(greenlet_spawn(add_two_remote_values, 1), name="bridged")
            assert await task == 3
        return trace.spans

    spans = asyncio.run(main())
    running = [s for s in spans if s.state == "running"]
    waiting = [s for s in spans if s.state == "waiting"]
    assert {s.task for s in spans} == {"bridged"}
    assert len(running) == 3  # to the first await_only, to the second, to the end
    assert sum(s.length > 0.005 for s in waiting) == 2  # the two 0.01 s sleeps
