"""What a span is, and what is measured on a list of them.

A ``Span(task, state, start, end)`` says that ``task`` was ``running`` (using the CPU),
``waiting`` (for I/O, a timer, a lock...), ``queued`` (connected, but not yet served: a server
that caps how many clients it serves keeps the others in its listen backlog) or ``idle`` from
``start`` to ``end``, in seconds from a shared zero. Those four are the course's ``STATES``.
A lesson may record states of its own (lesson 08's file clients: ``download``, ``upload``) and
declares them, with their colours, where it draws them (``labkit.figures``).

Spans travel from child processes as JSON, so they convert both ways::

    spans = spans_from_json(result.data["spans"])
    print(duration(spans), max_concurrent(spans))
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "Span",
    "STATES",
    "NOT_BUSY",
    "WithSpans",
    "spans_to_json",
    "spans_from_json",
    "duration",
    "busy_time",
    "max_concurrent",
]

#: the states every lesson shares
STATES = ("running", "waiting", "queued", "idle")
#: states in which a task is not doing or waiting for its own work (max_concurrent skips them)
NOT_BUSY = ("queued", "idle")


@dataclass(frozen=True)
class Span:
    task: str
    state: str
    start: float
    end: float

    def __post_init__(self) -> None:
        # a lesson's own states are checked where they are drawn (they need a colour there)
        if not isinstance(self.state, str) or not self.state.strip():
            raise ValueError(f"state must be a name, such as one of {STATES}, not {self.state!r}")
        if self.end < self.start:
            raise ValueError(f"span ends before it starts: {self}")

    @property
    def length(self) -> float:
        return self.end - self.start


class WithSpans:
    """For result dataclasses with a ``spans`` field: to and from plain JSON-able dicts
    (results come back from child processes as JSON)."""

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]  # a mixin: self is a dataclass

    @classmethod
    def from_dict(cls, data: dict) -> Any:
        return cls(**{**data, "spans": spans_from_json(data["spans"])})


def spans_to_json(spans: Iterable[Span]) -> str:
    return json.dumps([asdict(s) for s in spans])


def spans_from_json(data: str | list) -> list[Span]:
    """Spans from JSON text or from already-parsed JSON (a list of dicts)."""
    items = json.loads(data) if isinstance(data, str) else data
    return [Span(**item) for item in items]


def duration(spans: Iterable[Span]) -> float:
    """From the first start to the last end, in seconds."""
    spans = list(spans)
    return max(s.end for s in spans) - min(s.start for s in spans) if spans else 0.0


def busy_time(spans: Iterable[Span], task: str | None = None, state: str = "running") -> float:
    """Total seconds spent in ``state`` (by one task, or summed over all)."""
    return sum(s.length for s in spans if s.state == state and task in (None, s.task))


def max_concurrent(spans: Iterable[Span], states: Iterable[str] | None = None) -> int:
    """The largest number of tasks that were in one of ``states`` at the same moment
    (by default: in any state but ``queued`` and ``idle``, i.e. working or waiting for work
    they started)."""
    counted = None if states is None else set(states)
    edges = []
    for s in spans:
        busy = s.state not in NOT_BUSY if counted is None else s.state in counted
        if busy and s.end > s.start:
            edges += [(s.start, 1), (s.end, -1)]
    level = best = 0
    for _, step in sorted(edges):  # at a tie, -1 sorts before +1
        level += step
        best = max(best, level)
    return best
