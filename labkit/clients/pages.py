"""Fetch many web pages: one harness, several strategies that differ only in ``download_many``.

    run = timed_run(download_many_sequential, urls)     # one after another
    run = timed_run(download_many_threads, urls)        # a thread per request (a pool)

The gevent strategy (``labkit/scripts/fetch_gevent.py``) uses this same harness, in a
monkey-patched child process; ``labkit.runs.fetch_with`` chooses where each strategy runs.

Every strategy calls the same ``fetch_one``, which records a Span per request and returns the
status and the SHA-256 of the body, so that every byte is checked. Errors (a 503, a refused
connection) are results, not crashes; but a run in which *no* request got an answer says so
(``summary``) and can refuse to pass as a result (``raise_if_unanswered``).
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    name = strategy or download_many.__name__.removeprefix("download_many_")
    return FetchRun(name, elapsed, results, rec.spans, cpu)


#: the strategies that run in this process, by name
STRATEGIES = {"sequential": download_many_sequential, "threads": download_many_threads}
