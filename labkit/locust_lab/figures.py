"""Lesson 11's figure: a Locust run second by second."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

    from labkit.locust_lab.results import LocustRun


def plot_over_time(runs: dict[str, LocustRun], title: str = "") -> Figure:
    """Requests/s (failures dashed) and p50/p95, second by second, one colour per run."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    users_axis = None
    for i, (label, run) in enumerate(runs.items()):
        color = f"C{i}"
        # each second's count is drawn across that second: one more edge at the end
        rows = [*run.per_second, *run.per_second[-1:]]
        seconds = [s for s, _, _ in run.per_second] + [s + 1 for s, _, _ in run.per_second[-1:]]
        top.step(seconds, [r for _, r, _ in rows], where="post", color=color,
                 label=f"{label}: requests/s")  # fmt: skip
        if run.failures:
            top.step(seconds, [f for _, _, f in rows], where="post", color=color,
                     linestyle="--", label=f"{label}: failures/s")  # fmt: skip
        hist = run.history
        for key, style in (("p50", "-"), ("p95", ":")):
            bottom.plot([h["s"] for h in hist], [h[key] for h in hist], style, color=color,
                        marker="o", label=f"{label}: {key}")  # fmt: skip
        if hist:  # the users, on their own scale at the right
            users_axis = users_axis or top.twinx()
            users_axis.step([h["s"] for h in hist], [h["users"] for h in hist], where="post",
                            color=color, alpha=0.35, linewidth=3)  # fmt: skip
    if users_axis:
        users_axis.set_ylabel("users (wide, pale)")
        users_axis.set_ylim(bottom=0)
    top.set_ylabel("per second")
    bottom.set_ylabel("response time (ms)")
    bottom.set_xlabel("seconds into the run (Locust's own clock)")
    for ax in (top, bottom):
        ax.legend(fontsize=8, loc="upper left")
        ax.set_ylim(bottom=0)
    top.set_title(title or "Locust, second by second")
    fig.tight_layout()
    plt.close(fig)
    return fig
