"""Experiments run as the ways of a ``labkit.Timing``, each way's last result kept to draw."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from labkit.claims import Timing


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
