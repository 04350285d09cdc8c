"""What a server costs in CPU time: idle (lesson 06's spinning handler), and per round trip
(lesson 13, the appendix to lesson 09).

    with labkit.serve("gevent_echo_spin") as spin, labkit.serve("gevent_echo") as fixed:
        used, window = idle_cpu({"spin": spin, "fixed": fixed})

A server that waits properly uses next to no CPU while idle; one whose handler spins on a
closed connection burns a core. The servers' CPU time is read from ``/proc`` through
``ServerHandle.cpu_seconds()``.

Lesson 13 weighs servers by the CPU they spend per echo round trip, in interleaved rounds
(a ``labkit.Timing``: claims compare servers within each round, more rounds while one fails)::

    with EchoCpuRounds({"selectors": ("selectors_echo", {}),
                        "uvloop protocol": ("asyncio_echo", {"api": "protocol",
                                                             "loop": "uvloop"})}) as rounds:
        rounds.claim("uvloop is cheaper", lambda t: t.median_ratio(("uvloop protocol", "µs"),
                     ("selectors", "µs")), below=1, judged_on="median of the rounds")
        cpu = rounds.us_per_round_trip()
    plot_cpu_per_round_trip(cpu, reference="selectors")

and explains the bars by the system calls each server makes per round trip, counted by the
server itself (``--count-calls``: no strace needed, see ``labkit.count_calls``)::

    calls = system_calls_per_round_trip({"asks first": ("selectors_echo", {"wait_writable":
                                                                            True}),
                                         "sends at once": ("selectors_echo", {})})
    plot_system_calls(calls)
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from labkit.background import ServerHandle, serve
from labkit.claims import ServerRounds, ServerSpec
from labkit.clients.load import run_echo_clients
from labkit.timeline import STATE_COLORS

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

# The lazy matplotlib import and the list of names are alike in figures.py, on purpose: each
# module states its own.
__all__ = [
    "idle_cpu",
    "EchoCpuRounds",
    "cpu_per_round_trip",
    "plot_cpu_per_round_trip",
    "system_calls_per_round_trip",
    "plot_system_calls",
    "SYSTEM_CALLS",
    "TICK",
    "threads_cpu_seconds",
]


class HasCpuSeconds(Protocol):
    def cpu_seconds(self) -> float: ...


def idle_cpu(
    servers: Mapping[str, HasCpuSeconds], burn: float = 0.3, longest: float = 6.0
) -> tuple[dict[str, float], float]:
    """CPU seconds each server uses over one window with no client connected, and the window's
    length: we watch until one server has used ``burn`` seconds, or for ``longest`` seconds."""
    before = {name: srv.cpu_seconds() for name, srv in servers.items()}
    started = time.perf_counter()
    used = dict.fromkeys(servers, 0.0)
    while max(used.values()) < burn and time.perf_counter() - started < longest:
        time.sleep(0.05)
        used = {name: srv.cpu_seconds() - before[name] for name, srv in servers.items()}
    return used, time.perf_counter() - started


class EchoCpuRounds(ServerRounds):
    """Server CPU time per echo round trip, as the ways of a ``labkit.Timing``: one way per
    server; ``t.best(label, "µs")`` is a server's least, ``t.median_ratio((a, "µs"), (b,
    "µs"))`` compares two servers within each round.

    ``servers`` maps a label to a server's name and options (``("asyncio_echo", {"api":
    "protocol"})``). Every server is started once and warmed up; a round runs ``n_clients``
    clients sending ``messages`` of ``size`` bytes to each server in turn, and reads the CPU
    time the server spent from /proc (µs per round trip). At least ``least_rounds`` rounds run;
    a claim that does not hold yet runs more, up to ``rounds`` and ``seconds``. The same work's
    CPU time drifts with the machine (a neighbour on the same core evicts the server's caches;
    the CPU's speed changes), so two servers compare best within a round.

    With ``pin`` (and two cores or more) the servers run on one core and our clients on
    another. With ``together``, servers and clients share one core, as on a one-core machine:
    while a server waits for the core, the clients' next messages queue up, so each wake-up
    finds several sockets ready, as a busy server does. Apart, a server faster than its
    clients wakes for every message, and waking up costs more than the loop's own work: the
    bars then differ little, and by chance. The attribute ``servers`` holds each label's
    ``ServerHandle``. Use it as a context manager: the servers stop (and our thread's cores
    come back) when the block ends."""

    def __init__(
        self,
        servers: dict[str, ServerSpec],
        *,
        n_clients: int = 20,
        messages: int = 200,
        size: int = 1024,
        least_rounds: int = 3,
        rounds: int = 10,
        seconds: float = 30.0,
        pin: bool = True,
        together: bool = False,
    ) -> None:
        self.load, self.pin, self.together = (n_clients, messages, size), pin, together
        super().__init__(servers, rounds=rounds, seconds=seconds, least_rounds=least_rounds)

    def ways_for(self, servers: dict[str, ServerHandle]) -> dict[str, Callable[[], object]]:
        """Pin the servers, warm each one up, and measure its µs per round trip."""
        if self.pin or self.together:
            pids = [srv.pid for srv in servers.values()]
            self.stack.enter_context(_pinned(pids, self.together))
        n_clients, messages, size = self.load
        for srv in servers.values():  # warm up: first connections, lazy imports, caches
            _cpu_of_one_run(srv, n_clients, min(messages, 20), size)
        return {
            label: functools.partial(_us_per_round_trip, srv, *self.load)
            for label, srv in servers.items()
        }

    def us_per_round_trip(self) -> dict[str, float]:
        """Each server's least CPU per round trip over the rounds run so far, in µs."""
        return {label: self.best(label, "µs") for label in self.ways}

    def _summary(self) -> str:
        return ", ".join(f"{label} {us:.1f} µs" for label, us in self.us_per_round_trip().items())


def cpu_per_round_trip(
    servers: dict[str, ServerSpec], repeats: int = 3, **options: Any
) -> dict[str, float]:
    """Each server's least CPU per echo round trip (µs) over ``repeats`` interleaved rounds of
    ``EchoCpuRounds`` (which takes the same ``options``), the servers stopped afterwards."""
    with EchoCpuRounds(servers, least_rounds=repeats, rounds=repeats, **options) as timing:
        return timing.us_per_round_trip()


def _us_per_round_trip(
    srv: ServerHandle, n_clients: int, messages: int, size: int
) -> dict[str, float]:
    used, round_trips = _cpu_of_one_run(srv, n_clients, messages, size)
    return {"µs": used / round_trips * 1e6}


def _cpu_of_one_run(
    srv: ServerHandle, n_clients: int, messages: int, size: int
) -> tuple[float, int]:
    """CPU seconds the server used while serving one run of echo clients, and the round trips.

    ``cpu_seconds()`` (``/proc/PID/stat``) counts whole clock ticks, 10 ms: too coarse for a
    run of a second. Each thread's own clock (``schedstat``) counts nanoseconds, but forgets
    threads that have exited: we trust it unless the ticks say it missed something."""
    ticks, threads = srv.cpu_seconds(), threads_cpu_seconds(srv.pid)
    result = run_echo_clients(srv.address, n_clients=n_clients, messages=messages, size=size)
    used = srv.cpu_seconds() - ticks
    threads_after = threads_cpu_seconds(srv.pid)
    if threads is not None and threads_after is not None:
        if used <= threads_after - threads + 2 * TICK:  # no exited thread's time is missing
            used = threads_after - threads
    if result.errors or result.round_trips != n_clients * messages:
        raise RuntimeError(f"{srv.name}: {result.round_trips} round trips, {result.errors[:3]}")
    return used, result.round_trips


@contextmanager
def _pinned(server_pids: list[int], together: bool = False) -> Iterator[None]:
    """Each server's main thread on the first core, this thread (and so the client threads it
    starts, which inherit it) on the second, or on the first too (``together``). Left to the
    scheduler, a server sometimes shares a core with its clients and sometimes not, and a
    wake-up costs differently in each case: the same server measured twice could differ by
    half."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        yield
        return
    ours = os.sched_getaffinity(0)
    try:
        for pid in server_pids:
            os.sched_setaffinity(pid, {cores[0]})  # the thread whose id is pid: it serves
        os.sched_setaffinity(0, {cores[0] if together else cores[1]})
    except OSError:  # not allowed here (a container's cpuset): measure unpinned
        pass
    try:
        yield
    finally:
        os.sched_setaffinity(0, ours)


TICK = 1 / os.sysconf("SC_CLK_TCK")  # seconds: what /proc/PID/stat counts in


def threads_cpu_seconds(pid: int) -> float | None:
    """CPU time of the process's live threads, to the nanosecond (``/proc/PID/task/*/schedstat``);
    None where the kernel does not keep it."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # that thread has just exited
            continue
        except (OSError, ValueError, IndexError):
            return None
    return total / 1e9


def plot_cpu_per_round_trip(result: dict[str, float], reference: str) -> Figure:
    """One horizontal bar per server: its CPU per round trip as a ratio to ``reference``'s
    (shorter is cheaper), with the µs written beside each bar."""
    from matplotlib.figure import Figure

    if reference not in result:
        raise ValueError(f"reference {reference!r} is not one of {list(result)}")
    labels = list(result)
    ratios = [result[label] / result[reference] for label in labels]
    fig = Figure(figsize=(9.0, 0.9 + 0.4 * len(labels)), layout="constrained")
    ax = fig.add_subplot()
    colors = [STATE_COLORS["waiting" if label == reference else "running"] for label in labels]
    ax.barh(range(len(labels)), ratios, height=0.6, color=colors)
    for row, (label, ratio) in enumerate(zip(labels, ratios)):
        note = f"{ratio:.2f}x  ({result[label]:.1f} µs)"
        ax.text(ratio, row, f"  {note}", va="center", fontsize=9, zorder=3)
    ax.set_yticks(range(len(labels)), labels, fontsize=10)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first server on top
    ax.axvline(1.0, color="black", linewidth=0.8, zorder=0)  # the reference, behind the rest
    ax.set_xlim(0, max(ratios) * 1.35)  # room for the numbers
    ax.set_xlabel(f"server CPU time per round trip, relative to {reference}")
    ax.grid(axis="x", alpha=0.3)
    return fig


#: the system calls a server started with ``count_calls=True`` counts, in the order drawn
SYSTEM_CALLS = ("recvfrom", "sendto", "epoll_wait", "epoll_ctl", "poll", "select")


def system_calls_per_round_trip(
    servers: dict[str, ServerSpec],
    n_clients: int = 1,
    messages: int = 500,
    size: int = 1024,
) -> dict[str, dict[str, float]]:
    """System calls of each kind per echo round trip, as each server counts its own (started
    with ``count_calls=True``): ``{label: {"recvfrom": 1.0, ...}}``, kinds it never made left
    out. Counts, not times: they come out the same on a busy machine and on an idle one (with
    one client; with more, one ``epoll_wait`` may bring several at once)."""
    result = {}
    for label, (name, options) in servers.items():
        with serve(name, count_calls=True, **options) as srv:
            run_echo_clients(srv.address, n_clients=1, messages=1, size=size)  # loop started
            before = _settled_stats(srv)
            run = run_echo_clients(srv.address, n_clients=n_clients, messages=messages, size=size)
            after = _settled_stats(srv)
        if run.errors or run.round_trips != n_clients * messages:
            raise RuntimeError(f"{name}: {run.round_trips} round trips, {run.errors[:3]}")
        result[label] = {
            call: (after[call] - before.get(call, 0)) / run.round_trips
            for call in SYSTEM_CALLS
            if call in after
        }
    return result


def _settled_stats(srv: ServerHandle, longest: float = 5.0) -> dict[str, int]:
    """The server's counters once they stop changing: its last calls after our clients left."""
    deadline = time.monotonic() + longest
    stats = srv.stats()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        stats, previous = srv.stats(), stats
        if stats == previous:
            break
    return stats


def plot_system_calls(result: dict[str, dict[str, float]]) -> Figure:
    """One horizontal bar per server, split by system call: how many of each it makes per round
    trip, with the total written at the end."""
    from matplotlib.figure import Figure

    labels = list(result)
    fig = Figure(figsize=(9.0, 1.2 + 0.45 * len(labels)), layout="constrained")
    ax = fig.add_subplot()
    colors = dict(
        zip(SYSTEM_CALLS, ["#4c72b0", "#55a868", "#c44e52", "#dd8452", "#8172b3", "#937860"])
    )
    left = [0.0] * len(labels)
    for call in SYSTEM_CALLS:
        widths = [result[label].get(call, 0.0) for label in labels]
        if any(widths):
            ax.barh(
                range(len(labels)), widths, left=left, height=0.6, label=call, color=colors[call]
            )
            left = [a + b for a, b in zip(left, widths)]
    for row, total in enumerate(left):
        ax.text(total, row, f"  {total:.1f}", va="center", fontsize=9)
    ax.set_yticks(range(len(labels)), labels, fontsize=10)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first server on top
    ax.set_xlim(0, max(left) * 1.2)
    ax.set_xlabel("system calls per round trip, as each server counts its own")
    fig.legend(loc="outside upper center", fontsize=9, ncols=len(SYSTEM_CALLS), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return fig
