"""Lesson 09's figure: sizes over time, one line each (a write buffer as it grows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from labkit.asyncio_lab.buffers import Series


def plot_growth(
    series: Mapping[str, Series],
    ylabel: str = "bytes in the write buffer",
    title: str | None = None,
    width: float = 9.0,
) -> Figure:
    """One line per series (a size over time), time in ms along x as in every figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for name, points in series.items():
        ax.step([t * 1000 for t, _ in points], [n for _, n in points], where="post", label=name)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    if title:
        ax.set_title(title, loc="left", fontsize=10)
    return fig
