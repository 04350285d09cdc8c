"""Draw spans as timelines, in the one style every figure of the course shares.

``plot_timeline`` draws one row per task, time in milliseconds along x; ``compare_timelines``
stacks several runs on one time axis, so a difference is seen, not told. Every state has its
colour and pattern (``STATE_COLORS``, ``STATE_HATCHES``), the same in every lesson::

    plot_timeline(rec.spans)
    compare_timelines({"sync": a, "async": b})
    plot_timeline(file_spans, states={"download": "#2ca02c", "upload": "#9467bd"})

Figures are made without pyplot, so they are never drawn twice and a widget can redraw them.
Jupyter shows them through ``figure_png``, which ``labkit.setup()`` registers; a figure drawn
in a kernel where nothing shows figures warns (``FigureShownAsText``) instead of showing its
text repr in silence.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from labkit.spans import STATES, Span, duration

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The lazy matplotlib import and the list of names are alike in server_cpu.py, on purpose: each
# module states its own.
__all__ = [
    "plot_timeline",
    "compare_timelines",
    "figure_png",
    "STATE_COLORS",
    "STATE_HATCHES",
    "OUTLINE",
    "BACKGROUND",
    "contrast",
    "FigureShownAsText",
]

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
#: figures are drawn at twice the pixels they are shown at, sharp on a HiDPI screen
DPI, SHOWN_DPI = 180, 90
#: matplotlib's Figure, as IPython's formatters name a type without importing it
FIGURE_TYPE = "matplotlib.figure.Figure"


def figure_png(fig: Figure) -> tuple[bytes, dict[str, int]]:
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


class FigureShownAsText(UserWarning):
    """A figure was drawn in an IPython kernel where nothing shows a Figure as a picture."""


def shown_as_text(shell: Any) -> bool:
    """Whether ``shell`` (an IPython shell) would show a matplotlib Figure only as its text
    repr, ``<Figure size 900x300 with 1 Axes>``: no image formatter and no display hook has
    a printer for Figure (``labkit.setup()`` registers one, so does matplotlib's inline
    backend once pyplot has drawn)."""
    formatter = shell.display_formatter
    images = [f for mime, f in formatter.formatters.items() if mime != "text/plain"]
    for f in [*images, formatter.ipython_display_formatter, formatter.mimebundle_formatter]:
        try:
            f.lookup_by_type(FIGURE_TYPE)  # by name: neither imports nor moves anything
        except KeyError:
            continue
        return False
    return True


def _new_figure(**options: Any) -> Figure:
    """A Figure; in an IPython kernel that would show it as text, first a warning that says
    what to run (a lesson that forgot ``labkit.setup()`` fails loudly, not with a blank)."""
    from matplotlib.figure import Figure

    ipython = sys.modules.get("IPython")  # a kernel has it loaded; a script need not load it
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and shown_as_text(shell):
        warnings.warn(
            "this figure will show as text, not as a picture: nothing in this kernel draws "
            "matplotlib figures. Run labkit.setup() once, after `import labkit`, then draw "
            "it again.",
            FigureShownAsText,
            stacklevel=3,  # the line of the lesson that asked for the figure
        )
    return Figure(**options)


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
    spans = list(spans)
    colors = _colors(spans, states)
    rows = min(len(_task_order(spans)), 60)
    fig = _new_figure(figsize=(width, 0.9 + min(0.32 * max(rows, 1), 6.0)), layout="constrained")
    ax = fig.add_subplot()
    _draw(ax, spans, title, colors)
    _legend(fig, spans, colors)
    return fig


def compare_timelines(
    runs: dict[str, Iterable[Span]], width: float = 9.0, states: dict[str, str] | None = None
) -> Figure:
    """Several timelines stacked on one shared time axis, so the difference is seen
    (``states``: a lesson's own states and their colours, as for ``plot_timeline``)."""
    lists = {name: list(spans) for name, spans in runs.items()}
    colors = _colors([s for spans in lists.values() for s in spans], states)
    heights = [min(len(_task_order(s)), 60) + 1.5 for s in lists.values()]
    row = min(0.3, 8.0 / sum(heights))  # many rows: thinner rows, not a taller page
    fig = _new_figure(figsize=(width, 0.6 + row * sum(heights)), layout="constrained")
    axes = fig.subplots(
        len(lists), 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False
    )[:, 0]
    for ax, (name, spans) in zip(axes, lists.items()):
        _draw(ax, spans, f"{name}: {duration(spans) * 1000:.0f} ms", colors)
        if ax is not axes[-1]:
            ax.set_xlabel("")
    _legend(fig, [s for spans in lists.values() for s in spans], colors)
    return fig
