"""Lesson 10's figures: every PING's latency around the WORK, and how workers shared the load."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.cpu_lab.balance import median_latency_ms
from labkit.cpu_lab.clients import CpuLatencyRun, Spread, Worker
from labkit.timeline import STATE_COLORS

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure


#: the CPU request, shaded in every latency figure
WORK_COLOR = "#d62728"
#: PINGs answered by the process that did the WORK, and by any other (pre-fork workers)
SAME_COLOR, OTHER_COLOR = STATE_COLORS["queued"], STATE_COLORS["running"]


def plot_latency(runs: dict[str, CpuLatencyRun], width: float = 9.0, log: bool = True) -> Figure:
    """One panel per run on a shared time axis: every PING's latency (ms) at the time it was
    sent, the WORK request shaded. Where several processes answered (pre-fork workers), PINGs
    answered by the one that did the WORK are drawn in another colour."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 0.6 + 2.0 * len(runs)), layout="constrained")
    axes = fig.subplots(len(runs), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, (label, run) in zip(axes, runs.items()):
        _draw_latency(ax, label, run, log)
    axes[-1].set_xlabel("time a PING was sent (ms)")
    return fig


def _draw_latency(ax: Any, label: str, run: CpuLatencyRun, log: bool) -> None:
    start, end = run.work_start * 1000, run.work_end * 1000
    ax.axvspan(start, end, color=WORK_COLOR, alpha=0.12, lw=0, label=f"WORK {run.work_ms} ms")
    groups: list[tuple[Worker, str]] = [(None, OTHER_COLOR)]
    if len(run.pids) > 1:
        groups = [("same", SAME_COLOR), ("other", OTHER_COLOR)]
    for worker, color in groups:
        pings = run.select(worker=worker)
        ax.scatter(
            [p.sent * 1000 for p in pings],
            [max(p.latency * 1000, 0.01) for p in pings],  # a log axis has no zero
            s=4,
            color=color,
            alpha=0.6,
            lw=0,
            label=f"PINGs answered by the {worker} process as WORK" if worker else "PINGs",
        )
    if log:
        ax.set_yscale("log")
    before, during = run.percentiles("before"), run.percentiles("during")
    title = f"{label}: p99 {before.p99:.1f} ms before, {during.p99:.1f} ms during the WORK"
    ax.set_title(title, loc="left", fontsize=10)
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="upper right", markerscale=3)


def plot_spread(
    spreads: dict[str, Spread], n_workers: int | None = None, width: float = 9.0
) -> Figure:
    """One panel per server, one bar per worker (busiest first): its share of the
    connections, with its counts written on it. A fair server's bars all reach the dashed
    line; the title gives Jain's index (1.0 fair, 1/n when one worker took everything)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 2.8), layout="constrained")
    axes = fig.subplots(1, len(spreads), sharey=True, squeeze=False)[0]
    for ax, (label, s) in zip(axes, spreads.items()):
        _draw_spread(ax, label, s, n_workers)
    axes[0].set_ylabel("share of the connections (%)")
    return fig


def _draw_spread(ax: Any, label: str, s: Spread, n_workers: int | None) -> None:
    n = max(n_workers or 0, s.workers)
    pids = sorted(s.connections, key=lambda pid: -s.connections[pid])  # busiest worker first
    total = sum(s.connections.values()) or 1
    shares = [100 * s.connections[pid] / total for pid in pids] + [0.0] * (n - len(pids))
    ax.bar(range(n), shares, 0.6, color=STATE_COLORS["running"])
    for x, pid in enumerate(pids):
        note = f"{s.connections[pid]} conn.\n{s.requests.get(pid, 0)} req."
        white = {"facecolor": "white", "edgecolor": "none", "pad": 1}  # over the dashed line
        ax.text(x, shares[x] + 2, note, ha="center", va="bottom", fontsize=8, bbox=white)
    if n:
        ax.axhline(100 / n, color="black", lw=0.8, ls="--", zorder=0)
    ax.set_xticks(range(n), [f"worker {i + 1}" for i in range(n)], fontsize=9)
    ax.set_title(
        f"{label}: fairness {s.fairness(n_workers, of='connections'):.2f}", loc="left", fontsize=10
    )
    ax.set_ylim(0, 125)  # room for the counts above a full bar
    ax.set_yticks(range(0, 101, 20))
    ax.grid(axis="y", alpha=0.3)


def plot_spread_latency(spreads: dict[str, Spread], width: float = 9.0) -> Figure:
    """The latency histogram of each server's requests (ms, log-spaced bins), one panel each
    on a shared axis, its median marked."""
    from matplotlib.figure import Figure

    every = [t * 1000 for s in spreads.values() for t in s.latencies if t > 0]
    low, high = (min(every), max(every)) if every else (0.01, 1.0)
    bins = [low * (high / low) ** (i / 40) for i in range(41)] if high > low else 10
    fig = Figure(figsize=(width, 0.6 + 1.5 * len(spreads)), layout="constrained")
    axes = fig.subplots(len(spreads), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, s) in zip(axes, spreads.items()):
        ax.hist([t * 1000 for t in s.latencies], bins=bins, color=STATE_COLORS["running"])
        median = median_latency_ms(s)
        ax.axvline(median, color="black", lw=0.8, ls="--")
        ax.set_title(f"{label}: median {median:.2f} ms", loc="left", fontsize=10)
        ax.set_ylabel("requests")
        ax.grid(alpha=0.3)
    axes[-1].set_xscale("log")
    axes[-1].set_xlabel("request latency (ms)")
    return fig
