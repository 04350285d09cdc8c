"""Progress reports, ``progress(done, total)``, passed on about 100 times a run.

A progress bar redrawn 30,000 times, or 30,000 lines through a pipe, would slow the very run it
shows. So every runner in labkit wraps the caller's ``progress`` in one ``Throttled``: a call
goes through when ``done`` has moved by a hundredth of ``total`` since the last one that went
through, and the last one always does (``done == total``, or ``final=True``)::

    report = Throttled(progress)       # progress may be None: then nothing is reported
    for done, job in enumerate(finished, 1):
        report(done, len(jobs))
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "Throttled"]

Progress = Callable[[int, int], None]  # progress(done, total)


class Throttled:
    """``progress``, called at most about ``times`` times; used from one thread at a time."""

    def __init__(self, progress: Progress | None, times: int = 100) -> None:
        self.progress, self.times, self.shown = progress, times, 0

    def __call__(self, done: int, total: int, final: bool = False) -> None:
        if self.progress is None or done == self.shown:
            return
        if final or done >= total or done - self.shown >= max(1, total // self.times):
            self.shown = done
            self.progress(done, total)
