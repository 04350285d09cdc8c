"""The counters a teaching server keeps (connections, bytes_in, ...), read by ``stats()``.

``launch`` prints them on ``STATS``; the accept policy adds its own (``accept_paused``,
``evicted_idle``). Both import them from here, so neither imports the other for it.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Callable

from labkit.child import original, real_lock

__all__ = ["Counters", "counters"]


class Counters:
    """Named counters (connections, bytes_in, ...) the parent can read, nearly free to add to.

    Each thread adds to a dict of its own, so that no two threads ever write the same dict and
    no lock is taken per count (a lock and ``Counter.update`` cost a server about a microsecond
    per call, twice per echo: a tenth of its round trip). ``snapshot()`` adds them up. Under
    gevent every greenlet of a thread shares its dict: they take turns, never in the middle of
    a ``+=`` (no switch happens there)."""

    def __init__(self) -> None:
        self._lock = real_lock()  # for the rare calls: a new thread, peak(), snapshot()
        self._get_ident = original("_thread", "get_ident")  # the OS thread's, not a greenlet's
        self._threads: dict[int, defaultdict[str, int]] = {}  # thread id -> its counts
        self._gone: Counter[str] = Counter()  # the counts of threads that have ended
        self._peaks: dict[str, int] = {}
        self._readings: dict[str, Callable[[], int]] = {}  # name -> a count kept elsewhere
        self._tidy_at = 64  # fold in ended threads when this many have counted

    def for_this_thread(self) -> defaultdict[str, int]:
        """This thread's own counts, to add to with ``counts["bytes_in"] += n``: a plain dict
        (missing names start at 0), about as cheap as adding to a local variable. Ask for it
        in the thread that counts (a server's loop, a client's handler thread)."""
        try:
            return self._threads[self._get_ident()]
        except KeyError:
            return self._add_thread()

    def _add_thread(self) -> defaultdict[str, int]:
        with self._lock:
            if len(self._threads) >= self._tidy_at:  # a thread per client: forget ended ones
                alive = sys._current_frames()  # every live OS thread's id
                for ident in [i for i in self._threads if i not in alive]:
                    self._gone.update(self._threads.pop(ident))
                self._tidy_at = 2 * len(self._threads) + 64
            return self._threads.setdefault(self._get_ident(), defaultdict(int))

    def add(self, **amounts: int) -> None:
        counts = self.for_this_thread()
        for name, amount in amounts.items():
            counts[name] += amount

    def peak(self, **values: int) -> None:
        """Keep the largest value seen for each name (a high-water mark)."""
        with self._lock:
            for name, value in values.items():
                self._peaks[name] = max(self._peaks.get(name, value), value)

    def read_at_snapshot(self, name: str, read: Callable[[], int]) -> None:
        """Add ``read()`` to ``name`` in every snapshot: a count something else keeps (gevent's
        hub counts its own polls), read only when the stats are asked for."""
        with self._lock:
            self._readings[name] = read

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            total = self._gone.copy()
            for counts in list(self._threads.values()):  # dict(): one step, under the GIL
                total.update(dict(counts))
            for name, read in self._readings.items():
                total[name] += read()
            return {**total, **self._peaks}


counters = Counters()
