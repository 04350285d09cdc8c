"""When one task fails, who stops the others? Each way of running jobs, and how it ended."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ending:
    """How one way of running several jobs ended: what the call raised, how each job stood
    when the call returned, and how each stood ``after`` seconds later."""

    way: str
    raised: str  # the exception's type, or "nothing"
    at_return: dict[str, str]  # job -> "running", "done", "failed" or "cancelled"
    later: dict[str, str]

    def text(self) -> str:
        """One stable line: no times, the jobs in order."""

        def states(log: dict[str, str]) -> str:
            return ", ".join(f"{job} {state}" for job, state in sorted(log.items()))

        return (
            f"{self.way}: raised {self.raised}; when it returned: {states(self.at_return)}; "
            f"later: {states(self.later)}"
        )

    def summary(self, job: str) -> tuple[str, str, str]:
        """(what the call raised, how ``job`` stood when it returned, and later)."""
        return self.raised, self.at_return[job], self.later[job]


async def how_it_ended(
    way: Callable[[dict[str, str]], Awaitable[Any]], jobs: list[str], after: float = 0.6
) -> Ending:
    """Await ``way(log)``, where each job notes in ``log`` how it ended ("done", "failed",
    "cancelled"); a job not in ``log`` is still running. Note what the call raised and the
    jobs' states when it returned, then again ``after`` seconds later: long enough for a job
    left running to end on its own."""
    log: dict[str, str] = {}
    try:
        await way(log)
        raised = "nothing"
    except Exception as error:  # the first failure, or an ExceptionGroup of them all
        raised = type(error).__name__
    at_return = {job: log.get(job, "running") for job in jobs}
    await asyncio.sleep(after)
    return Ending(way.__name__, raised, at_return, {job: log.get(job, "running") for job in jobs})


async def all_endings(
    ways: list[Callable[[dict[str, str]], Awaitable[Any]]], jobs: list[str], after: float = 0.6
) -> list[Ending]:
    """``how_it_ended`` for every way at the same time (each with its own log): one run takes
    as long as one way, and every way meets the same machine."""
    return list(await asyncio.gather(*(how_it_ended(way, jobs, after) for way in ways)))
