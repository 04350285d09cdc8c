"""What goes wrong with many tasks at once, on asyncio and on gevent (lesson 09).

Each function runs one small experiment and returns plain records that the lesson prints as
stable text and draws; the lesson shows their source. Three stories::

    report = await fetch_all_or_fail(urls)      # errors: TaskGroup cancels the others
    report = await fetch_within(urls, 0.3)      # asyncio.timeout around each request
    report = greenlets_all_or_fail([...], 2)    # the same on gevent: joinall, kill

    queue_growth(bounded=None)                  # back-pressure: a producer faster than
    writer_buffer_growth(drain=False)           # its consumer, and a writer that never drains

    blocked_loop("time.sleep")                  # one blocking call stalls every task

The sync entry points run their own event loop in a worker thread (``run_in_new_loop``), so
they work the same in a script and in a Jupyter kernel, whose thread already runs a loop.
``Rounds`` runs such experiments as the ways of a ``labkit.Timing`` (interleaved rounds, each
claim judged on each way's best) and keeps the last result of each way, to print and draw::

    queues = Rounds({"Queue()": partial(queue_growth, None)}, measure=growth)
    queues.claim("past 100 items", lambda t: t.most("Queue()", "peak"), above=100)
    plot_growth(queues.last)
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from labkit.bench import compute
from labkit.claims import Timing
from labkit.clients.pages import open_async_client, run_in_new_loop
from labkit.timeline import Recorder, Span, WithSpans, compare_timelines

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "TaskEnd",
    "TaskReport",
    "OUTCOME_COLORS",
    "fetch_all_or_fail",
    "fetch_all_keep_going",
    "fetch_within",
    "greenlets_all_or_fail",
    "greenlets_within",
    "plot_outcomes",
    "Rounds",
    "record_every",
    "run_for",
    "grow_queue",
    "queue_growth",
    "growth",
    "BufferGrowth",
    "grow_write_buffer",
    "writer_buffer_growth",
    "plot_growth",
    "SlowCallback",
    "BlockedLoop",
    "blocked_loop_demo",
    "run_in_debug_mode",
    "blocked_loop",
    "BLOCKS",
]


# -- errors, timeouts, cancellation -----------------------------------------------------------
#: how a task ended, and its colour in ``plot_outcomes``
OUTCOME_COLORS = {
    "done": "#2ca02c",
    "failed": "#d62728",
    "cancelled": "#ff9896",
    "timed out": "#9467bd",
}
# asyncio and gevent name them alike: matched by name, so asyncio's runs never import gevent
CANCELLED = ("CancelledError", "GreenletExit")
TIMED_OUT = ("TimeoutError", "Timeout")


@dataclass(frozen=True)
class TaskEnd:
    """``task`` ran from ``start`` to ``end`` (seconds from the run's zero) and ended so."""

    task: str
    outcome: str  # one of OUTCOME_COLORS
    start: float
    end: float
    detail: str = ""  # what it raised, e.g. "HTTPStatusError: 503 Service Unavailable"


@dataclass
class TaskReport:
    """Which task ended how, and when; ``raised`` is what the whole run raised, if anything."""

    ends: list[TaskEnd] = field(default_factory=list)
    raised: str = ""
    zero: float = field(default_factory=time.perf_counter)

    @contextmanager
    def watching(self, task: str) -> Iterator[None]:
        """Record how the block ends (done, failed, cancelled, timed out); re-raise as it did."""
        start = time.perf_counter() - self.zero
        try:
            yield
        except BaseException as exc:  # cancellation too: that is what we are here to see
            self._end(task, start, _outcome(exc), _describe(exc))
            raise
        self._end(task, start, "done")

    def _end(self, task: str, start: float, outcome: str, detail: str = "") -> None:
        self.ends.append(TaskEnd(task, outcome, start, time.perf_counter() - self.zero, detail))

    @property
    def outcomes(self) -> dict[str, str]:
        """task -> outcome, in the tasks' own order ("Task 2" before "Task 10")."""
        return {e.task: e.outcome for e in sorted(self.ends, key=lambda e: _natural(e.task))}

    @property
    def spans(self) -> list[Span]:
        """One span per task, its state the outcome: draw with ``states=OUTCOME_COLORS``."""
        return [Span(e.task, e.outcome, e.start, e.end) for e in self.ends]

    @property
    def after_failure(self) -> float:
        """Seconds from the first failure to the end of the last cancelled task: near 0 when
        the failure cancelled the others at once (infinite with no failure or no cancel)."""
        failed = [e.end for e in self.ends if e.outcome == "failed"]
        cancelled = [e.end for e in self.ends if e.outcome == "cancelled"]
        if not failed or not cancelled:
            return float("inf")
        return max(cancelled) - min(failed)

    @property
    def stopped_after(self) -> float:
        """How long the longest-running stopped (cancelled or timed out) task ran, seconds
        (0 when none was stopped)."""
        return max(
            (e.end - e.start for e in self.ends if e.outcome in ("cancelled", "timed out")),
            default=0.0,
        )

    def text(self) -> str:
        """Stable lines to print: each task and how it ended (no times), then what was raised."""
        by_task = {e.task: e for e in self.ends}
        lines = [
            f"{task}: {outcome}" + (f" ({by_task[task].detail})" if by_task[task].detail else "")
            for task, outcome in self.outcomes.items()
        ]
        return "\n".join(lines + ([f"raised: {self.raised}"] if self.raised else []))


def _outcome(exc: BaseException) -> str:
    name = type(exc).__name__
    return "cancelled" if name in CANCELLED else "timed out" if name in TIMED_OUT else "failed"


def _describe(exc: BaseException) -> str:
    """The exception, without the addresses and ports that change from run to run."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTPStatusError: {exc.response.status_code} {exc.response.reason_phrase}"
    if isinstance(exc, BaseExceptionGroup):
        inner = ", ".join(_describe(e) for e in exc.exceptions)
        return f"{type(exc).__name__}: {exc.message} [{inner}]"
    if _outcome(exc) != "failed":
        return ""  # cancelled or timed out says it all
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


async def get_or_raise(client: httpx.AsyncClient, url: str) -> int:
    """GET ``url`` and return its size; an error status (a 503) is raised, not returned."""
    response = await client.get(url, timeout=30.0)
    response.raise_for_status()  # httpx.HTTPStatusError: the TaskGroup's cue to cancel
    return len(response.content)


async def fetch_all_or_fail(urls: list[str]) -> TaskReport:
    """All or nothing: a TaskGroup with one task per URL. The first request to fail (a 503)
    cancels every request still running, and the group raises an ExceptionGroup."""
    report = TaskReport()
    async with open_async_client() as client:

        async def request(task: str, url: str) -> None:
            with report.watching(task):
                await get_or_raise(client, url)

        try:
            async with asyncio.TaskGroup() as group:
                for i, url in enumerate(urls, 1):
                    group.create_task(request(f"Request {i}", url))
        except* Exception as errors:  # an ExceptionGroup of every request that failed
            report.raised = _describe(errors)
    return report


async def fetch_all_keep_going(urls: list[str]) -> TaskReport:
    """The other way: ``gather(..., return_exceptions=True)`` lets every request finish, and
    a failure is one result among the others; nothing is cancelled, nothing is raised."""
    report = TaskReport()
    async with open_async_client() as client:

        async def request(task: str, url: str) -> None:
            with report.watching(task):
                await get_or_raise(client, url)

        await asyncio.gather(
            *(request(f"Request {i}", url) for i, url in enumerate(urls, 1)),
            return_exceptions=True,
        )
    return report


async def fetch_within(urls: list[str], seconds: float) -> TaskReport:
    """Each request under its own ``asyncio.timeout(seconds)``: a slower one is cancelled
    where it waits and ends "timed out"; the others are not touched."""
    report = TaskReport()
    async with open_async_client() as client:

        async def request(task: str, url: str) -> None:
            with report.watching(task):
                async with asyncio.timeout(seconds):  # cancels the await, raises TimeoutError
                    await get_or_raise(client, url)

        await asyncio.gather(
            *(request(f"Request {i}", url) for i, url in enumerate(urls, 1)),
            return_exceptions=True,  # a timed-out request is in the report
        )
    return report


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """gevent prints a failing greenlet's traceback, with a timestamp and an address, to the
    hub's exception_stream: not in a checked lesson cell. We report ``g.exception`` instead."""
    import gevent

    hub = gevent.get_hub()
    before, hub.exception_stream = hub.exception_stream, None
    try:
        yield
    finally:
        hub.exception_stream = before


def _sleeper(report: TaskReport, task: str, seconds: float, fail: bool) -> None:
    import gevent

    with report.watching(task):
        gevent.sleep(seconds)
        if fail:
            raise RuntimeError(f"{task} failed on purpose")


def greenlets_all_or_fail(delays: list[float], fail: int, kill_rest: bool = True) -> TaskReport:
    """gevent, un-patched (safe in a kernel): "Task i" sleeps ``delays[i-1]`` s, and Task
    ``fail`` raises when it wakes. ``joinall(raise_error=True)`` raises that first failure but
    leaves the others running; ``killall`` (``greenlet.kill`` for each) cancels them, which
    asyncio's TaskGroup does by itself. With ``kill_rest=False`` they run to the end."""
    import gevent

    report = TaskReport()
    with _quiet_hub():
        greenlets = [
            gevent.spawn(_sleeper, report, f"Task {i}", delay, i == fail)
            for i, delay in enumerate(delays, 1)
        ]
        try:
            gevent.joinall(greenlets, raise_error=True)
        except Exception as err:  # the first greenlet to fail
            report.raised = _describe(err)
        if kill_rest:
            gevent.killall(greenlets)  # GreenletExit raised in each, where it sleeps
        gevent.joinall(greenlets)
    return report


def greenlets_within(delays: list[float], seconds: float) -> TaskReport:
    """``gevent.Timeout(seconds)`` around each greenlet's sleep: a longer one is interrupted
    where it waits and ends "timed out"; the others are not touched."""
    import gevent

    report = TaskReport()

    def task(name: str, delay: float) -> None:
        with report.watching(name), gevent.Timeout(seconds):  # raised in this greenlet
            gevent.sleep(delay)

    with _quiet_hub():
        greenlets = [gevent.spawn(task, f"Task {i}", d) for i, d in enumerate(delays, 1)]
        gevent.joinall(greenlets)
    return report


def plot_outcomes(reports: Mapping[str, TaskReport], width: float = 9.0) -> Figure:
    """Several reports on one time axis, each task a bar coloured by how it ended."""
    return compare_timelines(
        {name: r.spans for name, r in reports.items()}, width, states=OUTCOME_COLORS
    )


# -- experiments as the ways of a Timing -----------------------------------------------------
def _report_numbers(report: TaskReport) -> dict[str, float]:
    return {"after the failure": report.after_failure, "stopped after": report.stopped_after}


class Rounds(Timing):
    """Experiments run as the ways of a ``labkit.Timing``: interleaved rounds, each claim judged
    on each way's best round, more rounds only while a claim does not hold yet.

    Each way returns a result (a TaskReport, a Series, a BlockedLoop ...); ``measure(result)``
    gives the numbers the claims judge (``t.best(way, name)``, ``t.most(way, name)``), by
    default a TaskReport's ``after_failure`` and ``stopped_after``. ``last`` keeps each way's
    latest result, to print and draw.

    An outcome can depend on timing too (a 0.1 s request that a starved loop finishes after
    its 0.3 s timeout). With ``expect`` (a test of one result), the numbers gain ``"as
    expected"`` (1 or 0), so that ``t.most(way, "as expected")`` runs rounds until one passes,
    and once a way has a result that passed, ``last`` keeps its latest such result.
    """

    def __init__(
        self,
        ways: Mapping[str, Callable[[], Any]],
        measure: Callable[[Any], Mapping[str, float]] = _report_numbers,
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


# -- back-pressure ----------------------------------------------------------------------------
Series = list[tuple[float, int]]  # (seconds from the start, a length)
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def record_every(
    measure: Callable[[], int], series: Series, zero: float, every: float
) -> None:
    """Append ``(time, measure())`` every ``every`` seconds until cancelled."""
    while True:
        series.append((time.perf_counter() - zero, measure()))
        await asyncio.sleep(every)


async def run_for(seconds: float, *jobs: Awaitable[None]) -> None:
    """Run ``jobs`` for ``seconds``, then cancel them (they are endless loops)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def grow_queue(
    bounded: int | None,
    produce_every: float = 0.001,
    consume_every: float = 0.005,
    duration: float = 0.5,
) -> Series:
    """A producer that puts an item every ``produce_every`` s, a consumer that takes one every
    ``consume_every`` s, for ``duration`` s: the queue's length, sampled 50 times."""
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=bounded or 0)  # 0: no bound

    async def producer() -> None:
        for item in range(10**9):
            await queue.put(item)  # with a bound: waits here while the queue is full
            await asyncio.sleep(produce_every)

    async def consumer() -> None:
        while True:
            await queue.get()
            await asyncio.sleep(consume_every)  # the slow work on each item

    series: Series = []
    sampler = record_every(queue.qsize, series, time.perf_counter(), duration / 50)
    await run_for(duration, producer(), consumer(), sampler)
    return series


def queue_growth(
    bounded: int | None,
    produce_every: float = 0.001,
    consume_every: float = 0.005,
    duration: float = 0.5,
) -> Series:
    """A producer faster than its consumer, for ``duration`` seconds: the queue's length over
    time. Unbounded (``None``), the queue, and memory, grow for as long as it runs; with
    ``asyncio.Queue(maxsize=bounded)`` the producer waits in ``put`` and the length stays
    at the bound: the slow consumer's pace is pushed back onto the producer."""
    return run_in_new_loop(grow_queue, bounded, produce_every, consume_every, duration)


def growth(series: Series) -> dict[str, float]:
    """A Series' peak, and how much it rose over its last 10 samples (still growing if > 0)."""
    earlier = series[max(0, len(series) - 10)][1]
    return {"peak": max(n for _, n in series), "rise at the end": series[-1][1] - earlier}


KERNEL_BUFFER = 16 * 1024  # bytes asked for each socket's buffer (Linux doubles it)


@dataclass
class BufferGrowth:
    """What a stream writer's transport buffer did: its size over time, the transport's flow
    control limits, and its size each time ``await writer.drain()`` had waited and returned."""

    series: Series
    limits: tuple[int, int]  # (low, high) water marks, bytes
    after_waiting: list[int] = field(default_factory=list)


async def grow_write_buffer(
    drain: bool,
    chunk: int = 16_384,
    write_every: float = 0.001,
    read_every: float = 0.01,
    duration: float = 0.5,
) -> BufferGrowth:
    """A writer sends ``chunk`` bytes every ``write_every`` s to a reader (a server in this
    loop) that takes 4 KiB every ``read_every`` s; with ``drain``, it awaits drain() too."""
    accepted: asyncio.Future[Stream] = asyncio.get_running_loop().create_future()
    server = await asyncio.start_server(  # a plain callback: the reading task is ours to stop
        lambda *stream: accepted.set_result(stream), "127.0.0.1", 0, limit=4096
    )
    # Small buffers on the way (the reader's stream holds at most 2 x limit, the accepted
    # socket inherits the listener's kernel buffer): the writer's transport buffer fills at
    # once, instead of after the few MB the kernel and the reader would take first.
    server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)
    _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
    reader, server_side = await accepted

    async def slow_reader() -> None:
        while await reader.read(4096):  # 4 KiB per tick: far slower than the writer
            await asyncio.sleep(read_every)

    buffered = writer.transport.get_write_buffer_size
    low, high = writer.transport.get_write_buffer_limits()
    after_waiting: list[int] = []

    async def fast_writer() -> None:
        while True:
            writer.write(b"x" * chunk)  # never blocks: what the socket won't take is buffered
            if drain:
                above = buffered() > high  # then write() has paused the stream: drain waits
                await writer.drain()  # returns once the transport resumes it (at `low`)
                if above:
                    after_waiting.append(buffered())
            await asyncio.sleep(write_every)

    series: Series = []
    sampler = record_every(buffered, series, time.perf_counter(), 0.01)
    await run_for(duration, fast_writer(), slow_reader(), sampler)
    writer.transport.abort()  # drop what is still buffered: close() would wait to send it all
    server_side.transport.abort()
    server.close()
    await server.wait_closed()
    return BufferGrowth(series, (low, high), after_waiting)


def writer_buffer_growth(
    drain: bool,
    chunk: int = 16_384,
    write_every: float = 0.001,
    read_every: float = 0.01,
    duration: float = 0.5,
) -> BufferGrowth:
    """``grow_write_buffer`` on a fresh loop: the bytes waiting in the writer's transport buffer
    over time. ``write()`` never waits, so without ``drain`` the buffer grows without end once
    the sockets' own buffers are full. With it, a write that takes the buffer above the
    high-water mark (64 KiB by default) pauses the stream, and ``drain()`` waits until the
    buffer is down to the low-water mark (16 KiB by default) (``asyncio/transports.py``,
    ``_FlowControlMixin``; ``asyncio/streams.py``, ``FlowControlMixin._drain_helper``)."""
    args = (drain, chunk, write_every, read_every, duration)
    return run_in_new_loop(grow_write_buffer, *args)


def plot_growth(
    series: Mapping[str, Series],
    ylabel: str = "items in the queue",
    title: str | None = None,
    width: float = 9.0,
) -> Figure:
    """One line per series (a length over time), time in ms along x as in every figure."""
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


# -- blocking the loop ------------------------------------------------------------------------
#: what Task 1 does for ``seconds``: block the loop, hand the wait to a thread, or await
BLOCKS = ("time.sleep", "cpu", "to_thread", "none")


@dataclass(frozen=True)
class SlowCallback:
    """One "Executing <Task ...> took 0.201 seconds" warning of asyncio's debug mode."""

    task: str  # the task's name, e.g. "Task 1"
    coro: str  # the coroutine it was running, e.g. "hog"
    seconds: float
    message: str  # the whole warning, as logged

    def __str__(self) -> str:
        """Stable text: the task, and the threshold it crossed (not the varying duration)."""
        return f"Executing <Task {self.task!r} coro={self.coro}()> took more than 0.1 seconds"


@dataclass
class BlockedLoop(WithSpans):
    block: str
    spans: list[Span]
    slow_callbacks: list[SlowCallback]
    tick: float  # each wait the other tasks asked for, seconds

    @property
    def late_by(self) -> float:
        """How much longer than asked the other tasks' longest wait lasted, seconds."""
        waits = [s.length for s in self.spans if s.task != "Task 1" and s.state == "waiting"]
        return max(waits, default=self.tick) - self.tick


async def hog(rec: Recorder, block: str, seconds: float) -> None:
    """Task 1: one tick like the others, then ``seconds`` of ``block``."""
    with rec.span("Task 1", "waiting"):
        await asyncio.sleep(0.05)
    if block == "time.sleep":
        with rec.span("Task 1", "running"):  # holds the loop: no other task can run
            time.sleep(seconds)
    elif block == "cpu":
        with rec.span("Task 1", "running"):  # CPU work: nothing in it gives the loop a turn
            compute(seconds)
    elif block == "to_thread":
        with rec.span("Task 1", "waiting"):  # the sleep happens in a worker thread
            await asyncio.to_thread(time.sleep, seconds)
    else:
        with rec.span("Task 1", "waiting"):
            await asyncio.sleep(seconds)


async def ticker(rec: Recorder, name: str, ticks: int, tick: float) -> None:
    """A well-behaved task: ``ticks`` short waits, each recorded as long as it really took,
    and a moment of work after each (so the figure shows every tick)."""
    for _ in range(ticks):
        with rec.span(name, "waiting"):
            await asyncio.sleep(tick)
        with rec.span(name, "running"):
            compute(0.002)


async def blocked_loop_demo(
    block: str, rec: Recorder, seconds: float = 0.2, tasks: int = 3, tick: float = 0.05
) -> None:
    """Task 1 blocks (or not) for ``seconds``; Tasks 2.. tick every ``tick`` s meanwhile."""
    if block not in BLOCKS:
        raise ValueError(f"block is one of {BLOCKS}, not {block!r}")
    jobs = [asyncio.create_task(hog(rec, block, seconds), name="Task 1")]
    for i in range(2, tasks + 1):
        ticks = round((0.1 + seconds) / tick)  # long enough to see the block go by
        jobs.append(asyncio.create_task(ticker(rec, f"Task {i}", ticks, tick), name=f"Task {i}"))
    await asyncio.gather(*jobs)


class _Captured(logging.Handler):
    """The asyncio logger's warnings from one thread (another loop may log meanwhile)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextmanager
def _asyncio_warnings() -> Iterator[_Captured]:
    logger = logging.getLogger("asyncio")
    handler, propagate = _Captured(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # ours to show: not also printed to the cell's stderr
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


async def run_in_debug_mode(
    block: str, rec: Recorder, seconds: float = 0.2, tasks: int = 3, tick: float = 0.05
) -> list[str]:
    """``blocked_loop_demo`` with the running loop in debug mode: the warnings it logged."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)  # debug mode: times every callback and task step
    loop.slow_callback_duration = 0.1  # and warns about any that holds the loop longer
    with _asyncio_warnings() as captured:
        await blocked_loop_demo(block, rec, seconds, tasks, tick)
    return captured.messages


def _parse(message: str) -> SlowCallback | None:
    took = re.search(r"took ([0-9.]+) seconds", message)
    name = re.search(r"name='([^']*)'", message)
    coro = re.search(r"coro=<(\w+)\(\)", message)
    if not (took and message.startswith("Executing")):
        return None
    return SlowCallback(
        name.group(1) if name else "", coro.group(1) if coro else "", float(took[1]), message
    )


def blocked_loop(
    block: str, seconds: float = 0.2, tasks: int = 3, tick: float = 0.05
) -> BlockedLoop:
    """Run ``blocked_loop_demo`` on a fresh loop in debug mode (its own thread: this works in
    a kernel too), and return the tasks' Spans and the slow callbacks debug mode logged."""
    rec = Recorder()
    messages = run_in_new_loop(run_in_debug_mode, block, rec, seconds, tasks, tick)
    slow = [s for s in map(_parse, messages) if s is not None]
    return BlockedLoop(block, rec.spans, slow, tick)
