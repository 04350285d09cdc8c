"""Latency percentiles, one definition for all of labkit: the nearest rank.

The p-th percentile of n values is the smallest value with at least p % of the values at or
below it: sort them, and take the one at rank ceil(p / 100 * n), counting from 1::

    from labkit.percentiles import nearest_rank, nearest_rank_of_counts

    nearest_rank([1, 2, 3, 4], 50)               # 2: two of the four are at or below it
    nearest_rank(range(1, 101), 99)              # 99, not the maximum: 99 % are at or below 99
    nearest_rank_of_counts({100: 95, 900: 5}, 95)  # 100: a histogram {value: count}

Every value it returns is one of the values measured (no interpolation), and p99 of 100
samples is the 99th, so one slow outlier shows only from p100 up. Percents are read as the
decimal written (``99.9`` is 999/1000 exactly), so float rounding never moves a rank.

Locust computes its percentiles otherwise (``calculate_response_time_percentile`` in
``locust/stats.py`` counts down from the slowest time with ``int(n * p)``): for
``{100: 95, 900: 5}`` it gives p95 = 900. labkit reports Locust's numbers as Locust computed
them (``labkit.locust_lab``) and never mixes them with these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction

__all__ = ["nearest_rank", "nearest_rank_of_counts", "rank"]


def _share(p: float) -> Fraction:
    """``p`` percent as an exact fraction of 1, read as the decimal it is written as."""
    if not 0 <= p <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {p!r}")
    return Fraction(str(p)) / 100


def rank(n: int, p: float) -> int:
    """The nearest rank of the p-th percentile among ``n`` sorted values, counting from 1:
    ceil(p / 100 * n), and at least 1 (p0 is the smallest value)."""
    if n < 1:
        raise ValueError("no values: a percentile needs at least one")
    return max(1, math.ceil(_share(p) * n))


def nearest_rank(values: Iterable[float], p: float) -> float:
    """The p-th percentile (``p`` in percent, 0 to 100) of ``values``, by nearest rank."""
    ordered = sorted(values)
    return ordered[rank(len(ordered), p) - 1]


def nearest_rank_of_counts(counts: Mapping[float, float], p: float) -> float:
    """The p-th percentile of a histogram ``{value: count}`` (counts may be fractions, as when
    summaries of several runs are weighted): the smallest value whose running count, from the
    smallest value up, reaches p % of all the counts."""
    weights = {value: Fraction(count) for value, count in counts.items() if count > 0}
    if not weights:
        raise ValueError("no values: a percentile needs at least one")
    wanted, seen = _share(p) * sum(weights.values()), Fraction(0)
    for value in sorted(weights):
        seen += weights[value]
        if seen >= wanted:
            return value
    return max(weights)  # not reached: the running count ends at the total, >= wanted
