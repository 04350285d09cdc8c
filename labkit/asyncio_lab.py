"""Measure what a lesson 09 student writes on asyncio: the lesson holds the code, this measures.

Three jobs, each a function the lesson shows with ``labkit.show``::

    endings = await all_endings([plain_gather, task_group])   # who stopped the other tasks?
    run = await buffer_growth(handler)            # a stream handler's write buffer, over time
    plot_growth({"write() only": run.series})

``Rounds`` runs such experiments as the ways of a ``labkit.Timing`` (interleaved rounds, each
claim judged on each way's best) and keeps the last result of each way, to print and draw::

    rounds = Rounds({"drain": partial(run_in_new_loop, buffer_growth, handler)},
                    measure=lambda run: {"peak": run.peak})
    rounds.claim("it grew past 1 MB", lambda t: t.most("drain", "peak"), above=1e6)
    plot_growth({name: run.series for name, run in rounds.last.items()})

A Timing calls plain functions; a coroutine runs there on a loop of its own, in a thread of its
own (``labkit.clients.pages.run_in_new_loop``), since a Jupyter kernel's thread runs one already.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.claims import Timing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Rounds",
    "Ending",
    "how_it_ended",
    "all_endings",
    "Series",
    "BufferGrowth",
    "buffer_growth",
    "record_every",
    "plot_growth",
]


# -- experiments as the ways of a Timing -------------------------------------------------------
class Rounds(Timing):
    """Experiments run as the ways of a ``labkit.Timing``: interleaved rounds, each claim judged
    on each way's best round, more rounds only while a claim does not hold yet.

    Each way returns a result (a list of Endings, a BufferGrowth, spans ...); ``measure(result)``
    gives the numbers the claims judge (``t.best(way, name)``, ``t.most(way, name)``). ``last``
    keeps each way's latest result, to print and draw.

    An outcome can depend on timing too (a task that a starved loop lets finish before the
    failure that should have cancelled it). With ``expect`` (a test of one result), the numbers
    gain ``"as expected"`` (1 or 0), so that ``t.most(way, "as expected")`` runs rounds until
    one passes, and once a way has a result that passed, ``last`` keeps its latest such result.
    """

    def __init__(
        self,
        ways: Mapping[str, Callable[[], Any]],
        measure: Callable[[Any], Mapping[str, float]] = lambda result: {},
        *,
        expect: Callable[[Any], bool] | None = None,
        rounds: int = 4,
        seconds: float = 10.0,
    ) -> None:
        self.last: dict[str, Any] = {}
        passed: set[str] = set()

        def kept(name: str, run: Callable[[], Any]) -> Callable[[], Mapping[str, float]]:
            def way() -> Mapping[str, float]:
                result = run()
                numbers = dict(measure(result))
                if expect is not None:
                    ok = expect(result)
                    numbers["as expected"] = float(ok)
                    if not ok and name in passed:
                        return numbers  # keep showing the result that was as expected
                    if ok:
                        passed.add(name)
                self.last[name] = result
                return numbers

            return way

        super().__init__(
            {name: kept(name, run) for name, run in ways.items()}, rounds=rounds, seconds=seconds
        )


# -- when one task fails: who stops the others? ------------------------------------------------
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


# -- a stream handler's write buffer -----------------------------------------------------------
Series = list[tuple[float, int]]  # (seconds from the start, a size)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]

KERNEL_BUFFER = 16 * 1024  # bytes asked for each socket's buffer (Linux doubles it)


@dataclass
class BufferGrowth:
    """What a handler's transport buffer did while a slow client read: its size over time, and
    the transport's flow-control limits (low and high water marks, bytes)."""

    series: Series
    limits: tuple[int, int]

    @property
    def peak(self) -> int:
        return max((size for _, size in self.series), default=0)


async def record_every(
    measure: Callable[[], int], series: Series, zero: float, every: float
) -> None:
    """Append ``(time, measure())`` every ``every`` seconds until cancelled."""
    while True:
        series.append((time.perf_counter() - zero, measure()))
        await asyncio.sleep(every)


async def slow_reader(reader: asyncio.StreamReader, every: float, size: int = 4096) -> None:
    """A client that takes ``size`` bytes every ``every`` seconds: far slower than the handler."""
    while await reader.read(size):
        await asyncio.sleep(every)


async def buffer_growth(
    handler: Handler, seconds: float = 0.5, read_every: float = 0.01, every: float = 0.01
) -> BufferGrowth:
    """Serve one slow client with ``handler`` for ``seconds``; sample the bytes waiting in the
    handler's transport buffer every ``every`` seconds. Then stop the handler's task, drop what
    is still buffered and close the server."""
    served: asyncio.Future[tuple[asyncio.Task[None], asyncio.StreamWriter]]
    served = asyncio.get_running_loop().create_future()

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.set_result((asyncio.create_task(handler(reader, writer)), writer))

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    # Small kernel buffers (the accepted socket inherits the listener's receive buffer): the
    # transport's own buffer fills at once, not after the few MB the kernel would take first.
    server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)
    client_reader, client_writer = await asyncio.open_connection(
        *server.sockets[0].getsockname()[:2], limit=4096
    )
    task, writer = await served
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
    series: Series = []
    sampler = asyncio.create_task(
        record_every(writer.transport.get_write_buffer_size, series, time.perf_counter(), every)
    )
    reading = asyncio.create_task(slow_reader(client_reader, read_every))
    await asyncio.sleep(seconds)
    for job in (task, sampler, reading):
        job.cancel()
    await asyncio.gather(task, sampler, reading, return_exceptions=True)
    limits = writer.transport.get_write_buffer_limits()
    writer.transport.abort()  # drop what is still buffered: close() would wait to send it all
    client_writer.transport.abort()
    server.close()
    await server.wait_closed()
    return BufferGrowth(series, limits)


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
