"""labkit.percentiles: one definition of a percentile (nearest rank), used by every client and
benchmark; and Locust's numbers, which follow Locust's own rule, read from Locust."""

import math
import random
from fractions import Fraction

import pytest

from labkit import locust_lab
from labkit.clients.load import LoadResult
from labkit.cpu_lab.clients import percentiles
from labkit.percentiles import nearest_rank, nearest_rank_of_counts, rank


def test_p99_of_100_samples_is_not_the_maximum():
    samples = list(range(1, 101))
    assert nearest_rank(samples, 99) == 99
    assert nearest_rank(samples, 100) == 100


@pytest.mark.parametrize(
    "values,p,expected",
    [
        ([1, 2, 3, 4], 50, 2),  # two of four at or below 2
        ([1, 2, 3, 4], 51, 3),
        ([1, 2, 3, 4], 25, 1),
        ([1, 2, 3, 4], 0, 1),  # p0: the smallest
        ([4, 1, 3, 2], 75, 3),  # any order
        ([7], 99, 7),
        ([10, 20], 50, 10),
        ([10, 20], 99, 20),
        (range(1, 1001), 99.9, 999),
        (range(1, 21), 95, 19),
    ],
)
def test_nearest_rank(values, p, expected):
    assert nearest_rank(values, p) == expected


def test_it_is_the_smallest_value_with_p_percent_at_or_below_it():
    rng = random.Random(7)
    for _ in range(300):
        values = [rng.randint(0, 50) for _ in range(rng.randint(1, 40))]
        p = rng.choice([1, 5, 10, 25, 50, 66, 90, 95, 99, 99.9, 100])
        got = nearest_rank(values, p)
        at_or_below = [v for v in values if v <= got]
        below = [v for v in values if v < got]
        assert len(at_or_below) * 100 >= p * len(values)
        assert len(below) * 100 < p * len(values) or not below


def test_ranks_are_exact_for_percents_written_as_decimals():
    # 0.07 * 100 is 7.000000000000001 in floats: the rank must still be 7
    assert rank(100, 7) == 7 and rank(1000, 99.9) == 999 and rank(3, 100) == 3
    assert rank(5, 0) == 1


@pytest.mark.parametrize("p", [-1, 100.5])
def test_percent_out_of_range_is_refused(p):
    with pytest.raises(ValueError, match="between 0 and 100"):
        nearest_rank([1, 2], p)


def test_no_values_is_refused():
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 50)
    with pytest.raises(ValueError, match="no values"):
        nearest_rank_of_counts({5: 0}, 50)


def test_a_histogram_gives_what_its_values_written_out_give():
    rng = random.Random(11)
    for _ in range(200):
        counts = {rng.randint(1, 500): rng.randint(1, 9) for _ in range(rng.randint(1, 8))}
        values = [v for v, n in counts.items() for _ in range(n)]
        p = rng.choice([50, 66, 90, 95, 99, 100])
        assert nearest_rank_of_counts(counts, p) == nearest_rank(values, p)
    assert nearest_rank_of_counts({100: 95, 900: 5}, 95) == 100
    assert nearest_rank_of_counts({100: 95, 900: 5}, 96) == 900


def test_fractional_weights_are_summed_exactly():
    tenths = {float(v): Fraction(1, 10) for v in range(1, 11)}
    assert [nearest_rank_of_counts(tenths, p) for p in (10, 30, 70, 71)] == [1, 3, 7, 8]
    assert nearest_rank_of_counts({1: 0.1, 2: 0.2, 3: 0.7}, 30) == 2  # 0.1 + 0.2 is 0.3 here


def test_the_clients_use_it():
    result = LoadResult(clients=1, latencies=[i / 1000 for i in range(100, 0, -1)])
    assert result.percentile(99) == pytest.approx(0.099)  # not the slowest, 0.100
    assert result.percentile(50) == pytest.approx(0.050)
    assert math.isnan(LoadResult(clients=1).percentile(50))
    got = percentiles([0.001, 0.002, 0.003, 0.004])
    assert (got.p50, got.p99, got.count) == (pytest.approx(2.0), pytest.approx(4.0), 4)


def test_locust_computes_its_own_way_and_we_report_it():
    """Locust's p95 of {100: 95, 900: 5} is 900 (it counts down from the slowest with
    int(N * p)); nearest rank says 100. locust_lab reports Locust's."""
    p50, p95, p99 = locust_lab.locusts_percentiles({100: 95, 900: 5}, 100)
    assert (p50, p95, p99) == (100, 900, 900)
    assert nearest_rank_of_counts({100: 95, 900: 5}, 95) == 100
    assert locust_lab.locusts_percentiles({}, 0) == (0, 0, 0)  # Locust's value for no requests


def test_the_echo_benchmark_merges_by_nearest_rank():
    from benchmarks import echo

    base = dict.fromkeys(["connections", "bytes_verified", "mismatches", "errors", "unfinished"], 0)
    quick = {"round_trips": 99, "quantiles": [10.0] * 99, "elapsed": 1}
    slow = {"round_trips": 1, "quantiles": [500.0], "elapsed": 1}
    merged = echo.merge_results([base | quick, base | slow])
    assert merged["p99_us"] == 10.0  # 99 of 100 round trips at or below 10 µs: not the slowest
    idle = {"round_trips": 0, "quantiles": [-1.0] * 4, "elapsed": 1}
    assert math.isnan(echo.merge_results([base | idle, base | idle])["p50_us"])


def test_lesson_11s_statement_of_locusts_rule_is_locusts():
    """The exercise accepts Locust's rule, restated in labkit/exercises/lesson11.py: on every
    case the check uses, it gives what Locust's own function gives (run in a child process:
    importing Locust here would monkey-patch this process)."""
    import json
    import subprocess
    import sys

    from labkit.exercises.lesson11 import _cases, locusts_rule

    cases = _cases()
    code = (
        "import json, sys\n"
        "from locust.stats import calculate_response_time_percentile as p\n"
        "cases = json.load(sys.stdin)\n"
        "print(json.dumps([p({int(k): n for k, n in h.items()}, sum(h.values()), f)"
        " for h, f in cases]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == [locusts_rule(h, f) for h, f in cases]
