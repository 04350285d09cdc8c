"""Fetch many web pages: one harness, several strategies that differ only in ``download_many``.

    run = timed_run(download_many_sequential, urls)     # one after another
    run = timed_run(download_many_threads, urls)        # a thread per request (a pool)
    run = await timed_run_async(download_many_gather, urls)   # a task per request (asyncio)

The gevent strategy (``labkit/scripts/fetch_gevent.py``) uses this same harness, in a
monkey-patched child process; ``labkit.runs.fetch_with`` chooses where each strategy runs.

Every strategy calls the same ``fetch_one``, which records a Span per request and returns the
status and the SHA-256 of the body, so that every byte is checked. Errors (a 503, a refused
connection) are results, not crashes; but a run in which *no* request got an answer says so
(``summary``) and can refuse to pass as a result (``raise_if_unanswered``).

The asyncio strategies (``fetch_with("asyncio")`` and ``"asyncio-limited"``) are coroutines with
the same names and shape:
``download_many_await`` (one after another), ``download_many_gather`` (all at once) and
``download_many_limited`` (at most ``limit`` at once, a Semaphore), each awaiting
``fetch_one_async`` (``fetch_one`` on ``httpx.AsyncClient``). A lesson awaits them at top level
with ``timed_run_async``; ``STRATEGIES["asyncio"]`` and ``["asyncio-limited"]`` run them from
plain sync code, in a script or a Jupyter kernel alike (``run_in_new_loop``).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import httpx

from labkit.progress import Progress, Throttled
from labkit.timeline import Recorder, Span, WithSpans, busy_time

__all__ = [
    "PageResult",
    "FetchRun",
    "NoAnswer",
    "fetch_one",
    "download_many_sequential",
    "download_many_threads",
    "timed_run",
    "fetch_one_async",
    "open_async_client",
    "download_many_await",
    "download_many_gather",
    "download_many_limited",
    "timed_run_async",
    "run_in_new_loop",
    "StillRunning",
    "download_many_asyncio",
    "download_many_asyncio_limited",
    "STRATEGIES",
    "Progress",
]


@dataclass
class PageResult:
    url: str
    status: int  # HTTP status; 0 when no answer came at all
    size: int
    sha256: str
    error: str = ""


class NoAnswer(RuntimeError):
    """Not one request of a run got an answer: the server is down or unreachable."""


@dataclass
class FetchRun(WithSpans):
    strategy: str
    elapsed: float  # wall time of the whole download_many, seconds
    results: list[PageResult]
    spans: list[Span] = field(default_factory=list)
    cpu: float = 0.0  # CPU seconds the fetching process used meanwhile

    @property
    def answered(self) -> int:
        """Requests that got an HTTP answer (any status, 503 included)."""
        return sum(r.status != 0 for r in self.results)

    def summary(self) -> str:
        text = (
            f"{self.strategy}: {len(self.results)} requests in {self.elapsed:.2f} s, "
            f"overlap {self.overlap:.1f}, statuses {self.statuses}"
        )
        if self.results and not self.answered:
            text += f". NO REQUEST GOT AN ANSWER; the first error: {self.results[0].error}"
        return text

    def raise_if_unanswered(self) -> FetchRun:
        """Return the run, or raise NoAnswer if every request failed without an answer."""
        if self.results and not self.answered:
            raise NoAnswer(
                f"all {len(self.results)} requests failed without an answer (is the "
                f"server running?); the first error: {self.results[0].error}"
            )
        return self

    @property
    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def overlap(self) -> float:
        """Seconds of waiting done per second of wall time: 1 when sequential, N at best."""
        return busy_time(self.spans, state="waiting") / self.elapsed if self.elapsed else 0.0

    @classmethod
    def from_dict(cls, data: dict) -> FetchRun:
        run = super().from_dict(data)
        run.results = [PageResult(**r) for r in data["results"]]
        return run


def fetch_one(url: str, rec: Recorder, task: str, timeout: float = 60.0) -> PageResult:
    """GET one URL; the Span covers the whole request, from connect to the last byte."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body, error = response.status, response.read(), ""
    except urllib.error.HTTPError as err:  # the server answered, with an error status
        status, body, error = err.code, err.read(), str(err)
    except OSError as err:  # no answer: refused, reset, timed out
        status, body, error = 0, b"", f"{type(err).__name__}: {err}"
    rec.add(task, "waiting", start, time.perf_counter())
    return PageResult(url, status, len(body), hashlib.sha256(body).hexdigest(), error)


def download_many_sequential(
    urls: list[str], rec: Recorder, progress: Progress | None = None
) -> list[PageResult]:
    results = []
    for i, url in enumerate(urls, 1):
        results.append(fetch_one(url, rec, f"Request {i}"))
        if progress:
            progress(i, len(urls))
    return results


def download_many_threads(
    urls: list[str], rec: Recorder, progress: Progress | None = None, max_workers: int = 100
) -> list[PageResult]:
    with ThreadPoolExecutor(max_workers=min(max_workers, len(urls)) or 1) as pool:
        futures = [
            pool.submit(fetch_one, url, rec, f"Request {i}") for i, url in enumerate(urls, 1)
        ]
        results = []
        for done, future in enumerate(futures, 1):
            results.append(future.result())
            if progress:
                progress(done, len(urls))
    return results


def timed_run(
    download_many: Callable, urls: list[str], strategy: str = "", progress: Progress | None = None
) -> FetchRun:
    """The one harness: time ``download_many(urls, rec)`` and collect its results and Spans.
    ``progress(done, total)`` is called about 100 times, however many the requests."""
    rec = Recorder()
    start, cpu_start = time.perf_counter(), time.process_time()
    results = download_many(urls, rec, progress=Throttled(progress) if progress else None)
    return _fetch_run(download_many, strategy, start, cpu_start, results, rec)


def _fetch_run(
    download_many: Callable,
    strategy: str,
    start: float,
    cpu_start: float,
    results: list[PageResult],
    rec: Recorder,
) -> FetchRun:
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    name = strategy or download_many.__name__.removeprefix("download_many_")
    return FetchRun(name, elapsed, results, rec.spans, cpu)


# -- the same on asyncio ------------------------------------------------------------------------
def open_async_client() -> httpx.AsyncClient:
    """One ``httpx.AsyncClient`` per run, shared by its requests (a connection pool)."""
    # httpx caps a client at 100 connections by default: lifted, so that gather really sends
    # every request at once (a limit is the Semaphore's job, where the lesson can see it).
    # trust_env=False: no proxy from the environment between us and 127.0.0.1.
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
        trust_env=False,
    )


async def fetch_one_async(
    client: httpx.AsyncClient, url: str, rec: Recorder, task: str, timeout: float = 60.0
) -> PageResult:
    """``fetch_one``, awaited: the same Span, SHA-256, and errors as results."""
    start = time.perf_counter()
    try:
        response = await client.get(url, timeout=timeout)
        status, body, error = response.status_code, response.content, ""
        if status >= 400:  # the server answered, with an error status (as urllib words it)
            error = f"HTTP Error {status}: {response.reason_phrase}"
    except (httpx.HTTPError, OSError) as err:  # no answer: refused, reset, timed out
        status, body, error = 0, b"", f"{type(err).__name__}: {err}"
    rec.add(task, "waiting", start, time.perf_counter())
    return PageResult(url, status, len(body), hashlib.sha256(body).hexdigest(), error)


class _Done:
    """Counts finished requests and reports ``progress(done, total)``; returns the result."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, result: PageResult) -> PageResult:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)
        return result


async def download_many_await(
    urls: list[str], rec: Recorder, progress: Progress | None = None
) -> list[PageResult]:
    async with open_async_client() as client:
        results = []
        for i, url in enumerate(urls, 1):
            results.append(await fetch_one_async(client, url, rec, f"Request {i}"))
            if progress:
                progress(i, len(urls))
    return results


async def download_many_gather(
    urls: list[str], rec: Recorder, progress: Progress | None = None
) -> list[PageResult]:
    async with open_async_client() as client:
        report = _Done(progress, len(urls))

        async def fetch(i: int, url: str) -> PageResult:
            return report(await fetch_one_async(client, url, rec, f"Request {i}"))

        return list(await asyncio.gather(*(fetch(i, url) for i, url in enumerate(urls, 1))))


async def download_many_limited(
    urls: list[str], rec: Recorder, progress: Progress | None = None, limit: int = 10
) -> list[PageResult]:
    semaphore = asyncio.Semaphore(limit)  # at most `limit` requests in flight at once
    async with open_async_client() as client:
        report = _Done(progress, len(urls))

        async def fetch(i: int, url: str) -> PageResult:
            start = time.perf_counter()
            async with semaphore:
                rec.add(f"Request {i}", "queued", start, time.perf_counter())  # its turn came
                result = await fetch_one_async(client, url, rec, f"Request {i}")
            return report(result)

        return list(await asyncio.gather(*(fetch(i, url) for i, url in enumerate(urls, 1))))


async def timed_run_async(
    download_many: Callable[..., Awaitable[list[PageResult]]],
    urls: list[str],
    strategy: str = "",
    progress: Progress | None = None,
) -> FetchRun:
    """``timed_run`` for a coroutine ``download_many``: ``run = await timed_run_async(...)``."""
    rec = Recorder()
    start, cpu_start = time.perf_counter(), time.process_time()
    results = await download_many(urls, rec, progress=Throttled(progress) if progress else None)
    return _fetch_run(download_many, strategy, start, cpu_start, results, rec)


T = TypeVar("T")


class StillRunning(Exception):
    """``run_in_new_loop``'s coroutine had not finished when its ``timeout`` ran out."""


def run_in_new_loop(
    async_function: Callable[..., Awaitable[T]],
    *args: Any,
    timeout: float | None = None,
    **kwargs: Any,
) -> T:
    """``asyncio.run(async_function(*args, **kwargs))`` in a worker thread, and its result.

    A Jupyter kernel's own thread already runs an event loop, where ``asyncio.run`` raises
    "cannot be called from a running event loop" (and waiting on that loop from a cell would
    block the very loop that must run it). A fresh thread has no loop: ``asyncio.run`` makes
    one there, runs the coroutine to the end, and closes it; this thread just waits, at most
    ``timeout`` seconds when given (then ``StillRunning``; the daemon thread is left to end).
    The coroutine's own exception is raised here.
    """
    outcome: dict[str, Any] = {}

    async def main() -> T:
        return await async_function(*args, **kwargs)

    def run() -> None:
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as exc:  # raised again in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="asyncio-run", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise StillRunning(f"still running after {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return cast(T, outcome["result"])


def download_many_asyncio(
    urls: list[str], rec: Recorder, progress: Progress | None = None
) -> list[PageResult]:
    """``download_many_gather`` from sync code (a kernel included): its own loop and thread."""
    return run_in_new_loop(download_many_gather, urls, rec, progress)


def download_many_asyncio_limited(
    urls: list[str], rec: Recorder, progress: Progress | None = None, limit: int = 10
) -> list[PageResult]:
    """``download_many_limited`` from sync code, as ``download_many_asyncio``."""
    return run_in_new_loop(download_many_limited, urls, rec, progress, limit)


#: the strategies that run in this process, by name
STRATEGIES = {
    "sequential": download_many_sequential,
    "threads": download_many_threads,
    "asyncio": download_many_asyncio,
    "asyncio-limited": download_many_asyncio_limited,
}
