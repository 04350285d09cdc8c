"""Lesson 05's counter-example, measured fairly: the three models on tasks that only compute.

Wall time is at the mercy of whatever else the machine runs, so the lesson's claims compare a
model's wall time with the CPU time the *sequential* run needed for the same work, take the
models in turns over several rounds, and use the median round::

    trials = Trials.run(cpu_task, cpu_coroutine, ["Task 1", "Task 2", "Task 3"], rounds=3)
    trials.wall_over_work("threads")      # about 1.0: threads got no more done than one core
    shown = trials.quietest()             # the round in which the machine was quietest

``cpu_task(rec, name)`` and ``cpu_coroutine(loop, rec, name)`` return the CPU seconds their
thread used (``time.thread_time()``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from labkit.eventloop.models import run_event_loop, run_sequential, run_threads
from labkit.timeline import Span, duration

__all__ = ["Trials", "cpu_runs", "one_after_another"]

#: {model: (spans, CPU seconds each task used)}
Round = dict[str, tuple[list[Span], list[float]]]


def cpu_runs(task: Callable, coroutine: Callable, names: list[str]) -> Round:
    """The three models once each, on the same tasks."""
    runs = {}
    for model, run in (("sequential", run_sequential), ("threads", run_threads)):
        cpu, spans = run(task, names)
        runs[model] = spans, cpu
    cpu, spans = run_event_loop(coroutine, names)
    runs["event loop"] = spans, cpu
    return runs


def one_after_another(spans: list[Span], names: list[str]) -> bool:
    """True if no task started before the previous one had finished."""
    ends = [
        (min(s.start for s in spans if s.task == n), max(s.end for s in spans if s.task == n))
        for n in names
    ]
    return all(ends[i][1] <= ends[i + 1][0] for i in range(len(ends) - 1))


@dataclass
class Trials:
    rounds: list[Round]
    names: list[str]

    @classmethod
    def run(cls, task: Callable, coroutine: Callable, names: list[str], rounds: int = 3) -> Trials:
        """The three models in turns, ``rounds`` times (a busy moment hits all of them alike)."""
        return cls([cpu_runs(task, coroutine, list(names)) for _ in range(rounds)], list(names))

    def median(self, measure: Callable[[Round], float]) -> float:
        return statistics.median(measure(r) for r in self.rounds)

    def wall_over_work(self, model: str) -> float:
        """Wall time of ``model`` divided by the CPU time the sequential run needed (median)."""
        return self.median(lambda r: duration(r[model][0]) / sum(r["sequential"][1]))

    def threads_cores(self) -> float:
        """How many cores' worth of CPU the threads used between them (median)."""
        return self.median(lambda r: sum(r["threads"][1]) / duration(r["threads"][0]))

    def always_one_after_another(self, model: str) -> bool:
        return all(one_after_another(r[model][0], self.names) for r in self.rounds)

    def quietest(self) -> Round:
        """The round in which the machine was quietest: the one where the worst model's wall
        time exceeded its CPU time the least (1.0 on an idle machine)."""

        def quietness(r: Round) -> float:
            return max(duration(spans) / sum(cpu) for spans, cpu in r.values())

        return min(self.rounds, key=quietness)

    def threads_alive_and_cpu(self, r: Round) -> tuple[list[float], list[float]]:
        """For each thread of round ``r``: seconds from its first to its last slice, and the
        CPU seconds it used."""
        spans, cpu_each = r["threads"]
        alive = [
            max(s.end for s in spans if s.task == n) - min(s.start for s in spans if s.task == n)
            for n in self.names
        ]
        return alive, cpu_each
