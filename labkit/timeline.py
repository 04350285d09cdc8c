"""Record what every task did, and when, as Spans (``labkit.spans``).

``Recorder`` collects spans against one zero, from code that says when a task starts and stops
waiting; ``GreenletTrace`` records greenlets from their switches, ``AsyncioTrace`` asyncio
Tasks from the steps the event loop takes::

    rec = Recorder()
    with rec.span("Task 1", "waiting"):
        time.sleep(0.1)
    plot_timeline(rec.spans)

The lessons import everything about timelines from here: the recorders, the spans and their
measures (``labkit.spans``) and the drawing (``labkit.figures``), re-exported below. Nothing is
drawn or imported from matplotlib until a figure is asked for.
"""

from __future__ import annotations

import collections.abc
import contextvars
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

from labkit.figures import (
    BACKGROUND,
    OUTLINE,
    STATE_COLORS,
    STATE_HATCHES,
    compare_timelines,
    plot_timeline,
)
from labkit.spans import (
    NOT_BUSY,
    STATES,
    Span,
    WithSpans,
    busy_time,
    duration,
    max_concurrent,
    spans_from_json,
    spans_to_json,
)

__all__ = [
    "Recorder",
    "GreenletTrace",
    "AsyncioTrace",
    # re-exported from labkit.spans
    "Span",
    "WithSpans",
    "spans_to_json",
    "spans_from_json",
    "duration",
    "max_concurrent",
    "busy_time",
    "STATES",
    "NOT_BUSY",
    # re-exported from labkit.figures
    "plot_timeline",
    "compare_timelines",
    "STATE_COLORS",
    "STATE_HATCHES",
    "OUTLINE",
    "BACKGROUND",
]


class Recorder:
    """Collects Spans against one zero (``time.perf_counter`` at creation)."""

    def __init__(self, zero: float | None = None) -> None:
        self.zero = time.perf_counter() if zero is None else zero
        self.spans: list[Span] = []
        self._open: dict[str, tuple[str, float]] = {}

    def now(self) -> float:
        return time.perf_counter() - self.zero

    @contextmanager
    def span(self, task: str, state: str) -> Iterator[None]:
        """Record ``task`` in ``state`` for as long as the block runs."""
        start = self.now()
        try:
            yield
        finally:
            self.spans.append(Span(task, state, start, self.now()))

    def add(self, task: str, state: str, start: float, end: float) -> None:
        self.spans.append(Span(task, state, start - self.zero, end - self.zero))

    def switch(self, task: str, state: str | None) -> None:
        """Close ``task``'s current span and open one in ``state`` (None: just close)."""
        now = self.now()
        if task in self._open:
            old_state, start = self._open.pop(task)
            self.spans.append(Span(task, old_state, start, now))
        if state is not None:
            self._open[task] = (state, now)

    def close(self) -> list[Span]:
        for task in list(self._open):
            self.switch(task, None)
        return self.spans


class GreenletTrace:
    """Trace greenlet switches (``greenlet.settrace``) into running/waiting Spans.

    A traced greenlet is *running* from a switch into it until the next switch out, and
    *waiting* in between (from its first switch in until it finishes). Only the greenlets
    named in ``names`` (greenlet -> label, or a function of the greenlet that returns a label
    or None) are recorded; switches to others are still listed, as None.

        with GreenletTrace({g1: "Task 1", g2: "Task 2"}) as trace:
            g1.switch()
        plot_timeline(trace.spans)
    """

    def __init__(
        self,
        names: dict | Callable[[Any], str | None] | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.names = names if callable(names) else dict(names or {})
        self.recorder = recorder or Recorder()
        self.switches: list[tuple[str | None, str | None]] = []
        self._previous = None

    def label(self, g: Any) -> str | None:
        return self.names(g) if callable(self.names) else self.names.get(g)

    def _on_event(self, event: str, args: tuple[Any, Any]) -> None:
        if event not in ("switch", "throw"):
            return
        origin, target = (self.label(g) for g in args)
        self.switches.append((origin, target))
        if origin:
            self.recorder.switch(origin, None if args[0].dead else "waiting")
        if target:
            self.recorder.switch(target, "running")

    def __enter__(self) -> GreenletTrace:
        import greenlet

        self._previous = greenlet.settrace(self._on_event)
        return self

    def __exit__(self, *exc: object) -> None:
        import greenlet

        greenlet.settrace(self._previous)
        self.recorder.close()

    @property
    def spans(self) -> list[Span]:
        return self.recorder.spans


_TRACING: contextvars.ContextVar[AsyncioTrace | None] = contextvars.ContextVar(
    "labkit_asyncio_trace", default=None
)


class AsyncioTrace:
    """Record when each asyncio Task runs and when it waits, into running/waiting Spans.

    Each step of a task is one ``send`` (or ``throw``) of its coroutine by the event loop: from
    there to the coroutine's next ``await`` that suspends, the task is *running*; between two
    steps (and from its creation to its first step) it is *waiting*. Each task is a row named
    by its name (``asyncio.create_task(coro, name="Request 1")``; give each task its own).
    Use it inside a coroutine, or in a Jupyter cell (top-level ``await``): it needs the running
    loop, whose task factory it replaces while active (then puts the previous one back).
    Only tasks created inside the ``with`` block (and by them) are recorded, not the kernel's.

        with AsyncioTrace() as trace:
            await asyncio.gather(*(asyncio.create_task(fetch(i), name=f"Request {i}")
                                   for i in range(1, 4)))
        plot_timeline(trace.spans)
    """

    def __init__(self, recorder: Recorder | None = None) -> None:
        self.recorder = recorder or Recorder()
        self.active = False
        self._steps: list[_TimedCoroutine] = []

    def __enter__(self) -> AsyncioTrace:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._previous = self._loop.get_task_factory()
        self._loop.set_task_factory(self._task_factory)
        self._token = _TRACING.set(self)
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False
        _TRACING.reset(self._token)
        self._loop.set_task_factory(self._previous)
        now = self.recorder.now()
        for coro in self._steps:  # tasks still waiting: their wait lasts until now
            if coro.task is not None and not coro.task.done():
                self.recorder.spans.append(Span(coro.task.get_name(), "waiting", coro.since, now))

    def _task_factory(self, loop: Any, coro: Any, **kwargs: Any) -> Any:
        import asyncio

        context = kwargs.get("context") or contextvars.copy_context()
        timed = None
        if context.get(_TRACING) is self:  # created inside the block, not by the kernel
            coro = timed = _TimedCoroutine(coro, self)
        if self._previous is not None:
            task = self._previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        if timed is not None:
            timed.task = task  # its name is set after the factory returns: read it at each step
            self._steps.append(timed)
        return task

    @property
    def spans(self) -> list[Span]:
        return self.recorder.spans


class _TimedCoroutine(collections.abc.Coroutine):
    """A Task's coroutine, wrapped: each step the event loop takes (send/throw) is timed."""

    def __init__(self, coro: Any, trace: AsyncioTrace) -> None:
        self.coro, self.trace = coro, trace
        self.task: Any = None  # the asyncio Task that steps it
        self.since = trace.recorder.now()  # when its current wait began: now, at its creation

    def send(self, value: Any) -> Any:
        return self._step(self.coro.send, value)

    def throw(self, *exc: Any) -> Any:
        return self._step(self.coro.throw, *exc)

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.coro.__await__()

    def __getattr__(self, name: str) -> Any:  # cr_frame, __qualname__ ... for asyncio's reprs
        return getattr(self.coro, name)

    def _step(self, method: Callable[..., Any], *args: Any) -> Any:
        if not self.trace.active or self.task is None:
            return method(*args)
        name, rec = self.task.get_name(), self.trace.recorder
        start = rec.now()
        rec.spans.append(Span(name, "waiting", self.since, start))
        try:
            return method(*args)  # the task runs until it awaits something not ready
        finally:
            self.since = rec.now()
            rec.spans.append(Span(name, "running", start, self.since))
