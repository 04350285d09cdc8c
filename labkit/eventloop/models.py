"""The three models of lesson 05, as runners, and CPU work that records when it really ran.

One task runs three ways: one after another, one thread each, or as coroutines on the
``futures`` loop. Each runner returns the tasks' results and the Spans they recorded::

    bodies, spans = run_threads(blocking_task, ["Task 1", "Task 2", "Task 3"])

``work(rec, name, seconds)`` does a fixed amount of arithmetic (about ``seconds`` of CPU time
on this machine) and records ``running`` only while this thread actually ran: a thread
stopped between two slices of work (another thread held the interpreter lock, or another
program had the core) is drawn ``waiting``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from labkit.eventloop import futures
from labkit.timeline import Recorder, Span

SLICE = 1_000  # iterations of arithmetic between two looks at the clock (~0.1 ms)
GAP = 0.001  # ten slices or so between two looks: this thread was stopped


def crunch(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def _cpu_per_slice() -> float:
    """CPU seconds one slice takes here (CPU time: a busy machine does not skew it)."""

    def once() -> float:
        start = time.thread_time()
        crunch(100 * SLICE)
        return (time.thread_time() - start) / 100

    return min(once() for _ in range(3))  # the first run also warms up


CPU_PER_SLICE = _cpu_per_slice()  # measured once, when this module is imported


def work(rec: Recorder, name: str, seconds: float) -> None:
    """Crunch about ``seconds`` of CPU time; record when this thread ran and when it was stopped."""
    slices = max(1, round(seconds / CPU_PER_SLICE))
    run_start = last = time.perf_counter()
    for _ in range(slices):
        crunch(SLICE)
        now = time.perf_counter()
        if now - last > GAP:  # stopped between two looks at the clock
            rec.add(name, "running", run_start, last)
            rec.add(name, "waiting", last, now)
            run_start = now
        last = now
    rec.add(name, "running", run_start, last)


def run_sequential(task: Callable, names: Iterable[str]) -> tuple[list[Any], list[Span]]:
    """``task(rec, name)`` for each name, one after another."""
    rec = Recorder()
    return [task(rec, name) for name in names], rec.close()


def run_threads(task: Callable, names: Iterable[str]) -> tuple[list[Any], list[Span]]:
    """``task(rec, name)`` for each name, each on a thread of its own."""
    rec, names = Recorder(), list(names)
    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(lambda name: task(rec, name), names))
    return results, rec.close()


def run_event_loop(coroutine: Callable, names: Iterable[str]) -> tuple[list[Any], list[Span]]:
    """``coroutine(loop, rec, name)`` for each name, all as Tasks on one ``futures.Loop``."""
    rec = Recorder()
    with futures.Loop() as loop:
        tasks = [coroutine(loop, rec, name) for name in names]
        results = loop.run_until_complete(futures.gather(loop, tasks))
    return results, rec.close()
