"""Record what every task did, and when, and draw it.

A ``Span(task, state, start, end)`` says that ``task`` was ``running`` (using the CPU),
``waiting`` (for I/O, a timer, a lock...), ``queued`` (connected, but not yet served: a server
that caps how many clients it serves keeps the others in its listen backlog) or ``idle`` from
``start`` to ``end``, in seconds from a shared zero. Those four are the course's ``STATES``.
A lesson may record states of its own (lesson 08's file clients: ``download``, ``upload``) and
declares them, with their colours, where it draws them. Clients, greenlet switch traces and
child scripts all produce lists of Spans; ``plot_timeline`` and ``compare_timelines`` draw them,
the same way in every lesson::

    rec = Recorder()
    with rec.span("Task 1", "waiting"):
        time.sleep(0.1)
    plot_timeline(rec.spans)

    plot_timeline(file_spans, states={"download": "#2ca02c", "upload": "#9467bd"})
"""

from __future__ import annotations

import collections.abc
import contextvars
import json
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Span",
    "Recorder",
    "GreenletTrace",
    "AsyncioTrace",
    "plot_timeline",
    "compare_timelines",
    "spans_to_json",
    "spans_from_json",
    "duration",
    "max_concurrent",
    "busy_time",
    "STATES",
    "STATE_COLORS",
    "show_figures_inline",
    "WithSpans",
]

#: the states every lesson shares
STATES = ("running", "waiting", "queued", "idle")
#: one colour per state, in every figure of the course (waiting is grey, as in the classic
#: figures; queued, a wait for the server to start serving at all, is orange). Each stands at
#: least 3:1 against the white background (WCAG 2's contrast for graphics), except idle, which
#: is pale on purpose (nothing happens) and so is outlined.
STATE_COLORS = {"running": "#1f77b4", "waiting": "#858585", "queued": "#d95f02", "idle": "#f2f2f2"}
#: a pattern per state too, so the states are told apart without colour (and in grey print)
STATE_HATCHES = {"running": "", "waiting": "////", "queued": "xx", "idle": ""}
#: the outline of a pale state's bars (4.5:1 against white)
OUTLINE = "#767676"
#: the figures' background, against which every state's colour is judged
BACKGROUND = "#ffffff"
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


# -- measurements on spans ---------------------------------------------------------------------
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


# -- figures -----------------------------------------------------------------------------------
#: figures are drawn at twice the pixels they are shown at, sharp on a HiDPI screen
DPI, SHOWN_DPI = 180, 90


def _figure_png(fig: Figure) -> tuple[bytes, dict[str, int]]:
    """The figure as a PNG of twice the pixels it is shown at (Jupyter reads the width and
    height in the metadata), reduced to a palette: sharp, and smaller than a plain 90 dpi PNG."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor=BACKGROUND)
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    small = io.BytesIO()
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(small, "png", optimize=True)
    scale = DPI / SHOWN_DPI
    return small.getvalue(), {
        "width": round(image.width / scale),
        "height": round(image.height / scale),
    }


def show_figures_inline() -> None:
    """Let Jupyter display a matplotlib Figure returned by a cell as a PNG image.

    Our figures are made without pyplot (so they are never drawn twice, and widgets can redraw
    them), and this kernel's inline backend only draws pyplot's own figures.
    """
    import sys

    if "IPython" not in sys.modules:  # not in Jupyter (a server, a script): import nothing,
        return  # above all not numpy, whose BLAS starts threads
    shell = sys.modules["IPython"].get_ipython()
    if shell is not None:
        from matplotlib.figure import Figure

        shell.display_formatter.formatters["image/png"].for_type(Figure, _figure_png)


def _task_order(spans: list[Span]) -> list[str]:
    first: dict[str, float] = {}
    for s in spans:
        first[s.task] = min(first.get(s.task, s.start), s.start)
    return sorted(first, key=lambda t: (first[t], _natural(t)))


def _natural(name: str) -> list:
    """Sort key that puts "Task 2" before "Task 10"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _colors(spans: list[Span], states: dict[str, str] | None) -> dict[str, str]:
    """The course's colours plus a lesson's own ``states``; every state drawn must have one."""
    colors = {**STATE_COLORS, **(states or {})}
    unknown = sorted({s.state for s in spans} - set(colors))
    if unknown:
        raise ValueError(
            f"states {unknown} are not the course's {STATES}: a lesson that records "
            f"its own states declares them, e.g. states={{{unknown[0]!r}: '#2ca02c'}}"
        )
    return colors


def contrast(color: str, background: str = BACKGROUND) -> float:
    """WCAG 2's contrast ratio of two colours (1 to 21); graphics need at least 3."""
    from matplotlib.colors import to_rgb

    def luminance(c: str) -> float:
        r, g, b = (x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in to_rgb(c))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(color), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _style(state: str, color: str) -> dict[str, Any]:
    """How a state's bars are drawn: its colour, its pattern, and an outline where it is pale."""
    style: dict[str, Any] = {"facecolor": color, "linewidth": 0}
    if STATE_HATCHES.get(state):
        style |= {"hatch": STATE_HATCHES[state], "edgecolor": "white", "linewidth": 0}
    if contrast(color) < 3:
        style |= {"edgecolor": OUTLINE, "linewidth": 0.8}
    return style


def _draw(
    ax: Axes, spans: list[Span], title: str | None, colors: dict[str, str], max_rows: int = 60
) -> None:
    tasks = _task_order(spans)
    total = len(tasks)
    if total > max_rows:  # thousands of clients: show a sample
        step = total / max_rows
        tasks = [tasks[int(i * step)] for i in range(max_rows)]
    if total > 30:
        ax.set_ylabel(
            f"{total:,} tasks, one per row"
            if total <= max_rows
            else f"{max_rows} of {total:,} tasks, one per row"
        )
    row = {t: i for i, t in enumerate(tasks)}
    for state, color in colors.items():
        for task in tasks:
            bars = [
                (s.start * 1000, max(s.length * 1000, 0.05))
                for s in spans
                if s.task == task and s.state == state
            ]
            if bars:
                ax.broken_barh(bars, (row[task] - 0.4, 0.8), **_style(state, color))
    ax.set_yticks(
        range(len(tasks)),
        tasks if len(tasks) <= 30 else [""] * len(tasks),
        fontsize=10 if len(tasks) <= 12 else 7,
    )
    ax.set_ylim(len(tasks) - 0.5, -0.5)  # first task on top
    ax.set_xlabel("time (ms)")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, loc="left", fontsize=10)


def _legend(fig: Figure, spans: list[Span], colors: dict[str, str]) -> None:
    from matplotlib.patches import Patch

    used = [st for st in colors if any(s.state == st for s in spans)]
    fig.legend(
        [Patch(**_style(st, colors[st])) for st in used],
        used,
        loc="upper right",
        ncol=len(used),
        frameon=False,
        fontsize=9,
    )


def plot_timeline(
    spans: Iterable[Span],
    title: str | None = None,
    width: float = 9.0,
    states: dict[str, str] | None = None,
) -> Figure:
    """One row per task, time in ms along x; returns a matplotlib Figure (shown by Jupyter).

    ``states`` maps a lesson's own states (beyond the course's ``STATES``) to their colours.
    """
    from matplotlib.figure import Figure

    spans = list(spans)
    colors = _colors(spans, states)
    rows = min(len(_task_order(spans)), 60)
    fig = Figure(figsize=(width, 0.9 + min(0.32 * max(rows, 1), 6.0)), layout="constrained")
    ax = fig.add_subplot()
    _draw(ax, spans, title, colors)
    _legend(fig, spans, colors)
    return fig


def compare_timelines(
    runs: dict[str, Iterable[Span]], width: float = 9.0, states: dict[str, str] | None = None
) -> Figure:
    """Several timelines stacked on one shared time axis, so the difference is seen
    (``states``: a lesson's own states and their colours, as for ``plot_timeline``)."""
    from matplotlib.figure import Figure

    lists = {name: list(spans) for name, spans in runs.items()}
    colors = _colors([s for spans in lists.values() for s in spans], states)
    heights = [min(len(_task_order(s)), 60) + 1.5 for s in lists.values()]
    row = min(0.3, 8.0 / sum(heights))  # many rows: thinner rows, not a taller page
    fig = Figure(figsize=(width, 0.6 + row * sum(heights)), layout="constrained")
    axes = fig.subplots(
        len(lists), 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False
    )[:, 0]
    for ax, (name, spans) in zip(axes, lists.items()):
        _draw(ax, spans, f"{name}: {duration(spans) * 1000:.0f} ms", colors)
        if ax is not axes[-1]:
            ax.set_xlabel("")
    _legend(fig, [s for spans in lists.values() for s in spans], colors)
    return fig
