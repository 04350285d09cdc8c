"""A lesson's claims, stated once: the sentence the student reads is the one that is checked.

A plain claim is a sentence and the condition that makes it true::

    labkit.claim("every byte came back", back == sent)

A timing claim is a measurement protocol, not one sample. ``Timing`` runs the ways of doing a
job in interleaved rounds (each round runs every way once, taking turns at going first), and a
claim is judged on each way's *best* round: noise from a neighbour or a CPU quota only ever adds
time, so the fastest run is the fairest reading of what the code can do (``timeit`` reports its
best for the same reason). A claim that does not hold yet runs more rounds, up to ``rounds`` and
``seconds``; a ratio compares two ways measured in the same rounds::

    timing = labkit.Timing({"gather": run_gather, "one by one": run_in_a_loop}, rounds=5)
    timing.claim("gather took under two latencies", lambda t: t["gather"], below=2 * LATENCY)
    timing.claim("gather was over 5 times faster",
                 lambda t: t["one by one"] / t["gather"], above=5)

Each way may return a number or a dict of numbers (CPU seconds, counts): ``t.best(way, "cpu")``
is the smallest, ``t.most(way, "answered")`` the largest over the rounds. Wall and process CPU
time of every run are recorded as ``"wall"`` and ``"cpu"``.

When a claim holds it prints ``✔ sentence`` (with a fixed note of how it was judged), never the
numbers, so stored outputs stay stable. When it fails it prints ``✘ sentence`` with what was
measured, what the machine was doing (usable CPUs, load, the CPU the measurement got) and
whether re-running the cell is likely to help; then the lesson goes on. Under the instructors'
check (``LABKIT_STRICT_CLAIMS=1``, set by the test configuration) it also raises ``ClaimFailed``,
so ``pytest --nbval`` fails on that cell. With ``LABKIT_CLAIM_LOG=file.jsonl`` every claim
appends one JSON line (its value, limit and margin): ``docs/claim_margins.py`` reads them.

A claim judged otherwise (say, the median over the rounds of a ratio taken within each round)
says how with ``judged_on``. ``ServerRounds`` is a ``Timing`` whose ways measure servers it
starts, and stops them when its block ends.
"""

from __future__ import annotations

import json
import operator
import os
import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Self

from labkit.background import ServerHandle, serve
from labkit.cpus import MachineWatch, cpu_limits

__all__ = ["claim", "ClaimFailed", "DATA", "ServerRounds", "Timing", "strict"]

#: a server to start: its name and its options for ``labkit.serve``
ServerSpec = tuple[str, dict[str, Any]]

#: the course's data folder (pages, lyrics), wherever the lesson runs from
DATA = Path(__file__).resolve().parent.parent / "data"


class ClaimFailed(AssertionError):
    """A lesson's claim did not hold on this run. The message says what was measured."""


def strict() -> bool:
    """Do failed claims raise? Yes under the instructors' check; no in a student's JupyterLab."""
    return os.environ.get("LABKIT_STRICT_CLAIMS", "") not in ("", "0")


def _log(record: dict[str, Any]) -> None:
    path = os.environ.get("LABKIT_CLAIM_LOG")
    if not path:
        return
    limits = cpu_limits()
    record |= {"usable_cpus": limits.usable, "load1": limits.load1, "cwd": os.getcwd()}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record, ensure_ascii=False) + "\n")


def _fail(text: str, lines: list[str]) -> None:
    print("\n   ".join([f"✘ {text}", *lines]))
    if strict():
        raise ClaimFailed(f"this lesson's claim did not hold on this run: {text}; {lines[0]}")


def claim(text: str, condition: object, measured: str = "") -> None:
    """Print ``✔ text`` if ``condition`` is true.

    Otherwise print ``✘ text`` with ``measured`` (the numbers behind it) and this machine's
    CPUs and load (and raise ``ClaimFailed`` under the instructors' check). It returns nothing,
    so a cell that ends with a claim shows only the claim's line.
    """
    holds = bool(condition)
    _log({"text": text, "holds": holds, "value": None, "limit": None, "op": None,
          "margin": None, "rounds": None})  # fmt: skip
    if holds:
        print(f"✔ {text}")
        return
    _fail(text, [f"measured: {measured or 'the condition was false'}",
                 f"this machine: {cpu_limits()}"])  # fmt: skip


Metrics = dict[str, float]


class Timing:
    """Ways of doing one job, run in interleaved rounds; claims judged on each way's best.

    ``ways`` maps a name to a function of no arguments (or is one function, named "run"). The
    first ``least_rounds`` rounds run at once; a claim that does not hold yet runs more, while
    fewer than ``rounds`` have run and fewer than ``seconds`` have passed. A claim that noise
    can make hold (a wall time claimed *above* a limit) needs several rounds at once, so that
    each way's best is a quiet run.
    """

    def __init__(
        self,
        ways: Mapping[str, Callable[[], object]] | Callable[[], object],
        *,
        rounds: int = 5,
        seconds: float = 30.0,
        least_rounds: int = 1,
    ) -> None:
        self.ways = dict(ways) if isinstance(ways, Mapping) else {"run": ways}
        self.least_rounds = max(1, least_rounds)
        self.max_rounds, self.seconds = max(rounds, self.least_rounds), seconds
        self.records: dict[str, list[Metrics]] = {name: [] for name in self.ways}
        self.watch = MachineWatch()
        self.started = time.perf_counter()
        for _ in range(self.least_rounds):
            self.run_round()

    @property
    def rounds(self) -> int:
        """How many rounds have run."""
        return len(next(iter(self.records.values())))

    def run_round(self) -> None:
        """Run every way once; the way that goes first changes from round to round."""
        names = list(self.ways)
        shift = self.rounds % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            result = self.ways[name]()
            metrics = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
            if isinstance(result, Mapping):
                metrics |= {k: float(v) for k, v in result.items() if _is_number(v)}
            elif _is_number(result):
                metrics["value"] = float(result)  # type: ignore[arg-type]
            self.records[name].append(metrics)

    def _key(self, way: str | None, metric: str) -> tuple[str, str]:
        if way is None or (way not in self.ways and len(self.ways) == 1):
            only = next(iter(self.ways))
            return only, metric if way is None else way
        return way, metric

    def values(self, way: str | None = None, metric: str = "wall") -> list[float]:
        """What ``metric`` measured in each round of ``way`` (a one-way Timing needs no way)."""
        way, metric = self._key(way, metric)
        return [r[metric] for r in self.records[way]]

    def best(self, way: str | None = None, metric: str = "wall") -> float:
        """The smallest value over the rounds: for times, the run least disturbed by noise."""
        return min(self.values(way, metric))

    def most(self, way: str | None = None, metric: str = "value") -> float:
        """The largest value over the rounds: for counts done in a fixed time."""
        return max(self.values(way, metric))

    def median_ratio(self, top: tuple[str, str], bottom: tuple[str, str]) -> float:
        """The median over the rounds of ``top``'s value over ``bottom``'s in the same round
        (each a way and a metric). Where the machine's speed drifts, the same work takes more
        CPU time in one round than in another; a ratio taken within each round compares two
        ways at one moment, as a ratio of bests from different rounds does not."""
        pairs = zip(self.values(*top), self.values(*bottom), strict=True)
        return statistics.median(a / b for a, b in pairs)

    def round_with_most(self, way: str, metric: str) -> Metrics:
        """Everything measured in the round where ``metric`` was largest: e.g. the round with
        the most free CPUs, the fairest one to judge a parallel speed-up by."""
        return max(self.records[way], key=lambda r: r[metric])

    def __getitem__(self, key: str | tuple[str, str]) -> float:
        """``t["gather"]``: the best wall time of a way; ``t["gather", "cpu"]``: of a metric."""
        return self.best(*key) if isinstance(key, tuple) else self.best(key)

    def _more_time(self) -> bool:
        spent = time.perf_counter() - self.started
        per_round = spent / self.rounds
        return self.rounds < self.max_rounds and spent + per_round <= self.seconds

    @property
    def judged_on(self) -> str:
        """The fixed note printed after a claim: how it was judged (the same on every run)."""
        if self.max_rounds == 1:
            return "one run"
        return f"best of up to {self.max_rounds} interleaved runs"

    @property
    def median_of_rounds(self) -> str:
        """The note for a claim judged on a median over the rounds (``median_ratio``)."""
        return f"median over {self.least_rounds} to {self.max_rounds} interleaved rounds"

    def claim(
        self,
        text: str,
        value: Callable[[Timing], float],
        *,
        below: float | None = None,
        above: float | None = None,
        judged_on: str | None = None,
    ) -> None:
        """Claim that ``value(self)`` is below (or above) a limit, running rounds until it is.

        Prints ``✔ text [how it was judged]``, or ``✘`` with the measurement and the machine's
        state (and raises under the check). Returns nothing, like ``claim``. ``judged_on`` says
        how, when ``value`` is not judged on each way's best (e.g. a median over the rounds).
        """
        if (below is None) == (above is None):
            raise ValueError("give exactly one of below= or above=")
        limit, compare, sign = (
            (below, operator.lt, "<") if below is not None else (above, operator.gt, ">")
        )
        assert limit is not None
        measured = value(self)
        while not compare(measured, limit) and self._more_time():
            self.run_round()
            measured = value(self)
        holds = compare(measured, limit)
        margin = _margin(measured, limit, sign)
        _log({"text": text, "holds": holds, "value": measured, "limit": limit, "op": sign,
              "margin": margin, "rounds": self.rounds})  # fmt: skip
        note = judged_on or self.judged_on
        if holds:
            print(f"✔ {text} [{note}]")
            return
        spent = time.perf_counter() - self.started
        over = f"{self.rounds} rounds" if judged_on else f"best of {self.rounds} rounds"
        _fail(
            f"{text} [{note}]",
            [
                f"measured: {measured:.4g}, needed {sign} {limit:.4g} ({over} in {spent:.1f} s)",
                f"each way's fastest run: {self._summary()}",
                self.watch.report().explain(),
            ],
        )

    def _summary(self) -> str:
        return ", ".join(f"{name} {self.best(name):.3f} s" for name in self.ways)


class ServerRounds(Timing):
    """A ``Timing`` whose ways measure servers (label -> ``ServerSpec``). Each server starts
    once, before the first round, and its ``ServerHandle`` is kept in ``servers``; they stop
    when the block ends, or at once if starting them or the first rounds fail. A subclass gives
    ``ways_for(servers)``, one function per label, and may use ``stack`` for more to undo."""

    def __init__(self, servers: Mapping[str, ServerSpec], **timing: Any) -> None:
        self.stack = ExitStack()
        try:
            self.servers: dict[str, ServerHandle] = {
                label: self.stack.enter_context(serve(name, **options))
                for label, (name, options) in servers.items()
            }
            super().__init__(self.ways_for(self.servers), **timing)
        except BaseException:
            self.stack.close()
            raise

    def ways_for(self, servers: dict[str, ServerHandle]) -> dict[str, Callable[[], object]]:
        """One way per server: what a round measures."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the servers."""
        self.stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _margin(value: float, limit: float, sign: str) -> float | None:
    """How far from failing: over 1 means it held with that factor to spare."""
    try:
        return (limit / value) if sign == "<" else (value / limit)
    except ZeroDivisionError:
        return None
