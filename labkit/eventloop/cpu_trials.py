"""Lesson 05's counter-example: the three models on tasks that only compute, timed fairly.

Wall time is at the mercy of whatever else the machine runs, and so is the CPU time of the same
work (beside a neighbour it varied up to 1.9x between rounds of one cell), so the lesson
compares a model's wall time with the CPU time the *sequential* run needed for the same work
in the same round. ``model_ways`` makes one way per model for ``labkit.Timing``, which runs
them in turns::

    ways, runs = model_ways(cpu_task, cpu_coroutine, ["Task 1", "Task 2", "Task 3"])
    timing = labkit.Timing(ways, least_rounds=7, rounds=10)
    statistics.median(wall / cpu for wall, cpu in zip(timing.values("threads", "duration"),
                      timing.values("sequential", "thread cpu")))                  # about 1.0
    shown = quietest(runs)            # the round in which the machine was quietest

Each run returns its ``duration`` (first span to last), the ``thread cpu`` its tasks' threads
used between them, and the ``cores`` that makes (thread CPU / duration); its Spans and each
task's CPU seconds go to ``runs[model]``. ``cpu_task(rec, name)`` and
``cpu_coroutine(loop, rec, name)`` return the CPU seconds their thread used
(``time.thread_time()``).
"""

from __future__ import annotations

from collections.abc import Callable

from labkit.eventloop.models import run_event_loop, run_sequential, run_threads
from labkit.timeline import Span, duration

__all__ = ["model_ways", "one_after_another", "alive_and_cpu", "quietest"]

#: one run of one model: its Spans, and the CPU seconds each task used
Run = tuple[list[Span], list[float]]


def model_ways(
    task: Callable, coroutine: Callable, names: list[str]
) -> tuple[dict[str, Callable[[], dict[str, float]]], dict[str, list[Run]]]:
    """One way per model (``sequential``, ``threads``, ``event loop``) and where runs are kept."""
    runners = {
        "sequential": lambda: run_sequential(task, names),
        "threads": lambda: run_threads(task, names),
        "event loop": lambda: run_event_loop(coroutine, names),
    }
    runs: dict[str, list[Run]] = {model: [] for model in runners}

    def way(model: str) -> Callable[[], dict[str, float]]:
        def run_once() -> dict[str, float]:
            cpu_each, spans = runners[model]()
            runs[model].append((spans, cpu_each))
            wall = duration(spans)
            return {"duration": wall, "thread cpu": sum(cpu_each), "cores": sum(cpu_each) / wall}

        return run_once

    return {model: way(model) for model in runners}, runs


def one_after_another(spans: list[Span], names: list[str]) -> bool:
    """True if no task started before the previous one had finished."""
    ends = [
        (min(s.start for s in spans if s.task == n), max(s.end for s in spans if s.task == n))
        for n in names
    ]
    return all(ends[i][1] <= ends[i + 1][0] for i in range(len(ends) - 1))


def alive_and_cpu(run: Run, names: list[str]) -> tuple[list[float], list[float]]:
    """For each task of one run: seconds from its first to its last slice, and its CPU seconds."""
    spans, cpu_each = run
    alive = [
        max(s.end for s in spans if s.task == n) - min(s.start for s in spans if s.task == n)
        for n in names
    ]
    return alive, cpu_each


def quietest(runs: dict[str, list[Run]]) -> dict[str, Run]:
    """The round in which the machine was quietest: the one where the worst model's wall time
    exceeded its CPU time the least (1.0 on an idle machine)."""

    def quietness(i: int) -> float:
        return max(duration(runs[m][i][0]) / sum(runs[m][i][1]) for m in runs)

    rounds = min(len(r) for r in runs.values())
    best = min(range(rounds), key=quietness)
    return {model: model_runs[best] for model, model_runs in runs.items()}
