"""Lesson 11's exercises: load testing with Locust. Locust itself never runs in the kernel, so
these check what a student reasons out about a run, and one function that reads a percentile
from a response-time histogram like Locust's."""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from labkit.exercises import Exercise, NotYet, chosen_option, close_to, first_reading, worked
from labkit.percentiles import nearest_rank_of_counts


# -- exercise 1: requests/s from users, wait time and response time -------------------------
def _check_rate(answer: Any) -> str:
    if first_reading(answer, lambda rate: 38 <= rate <= 46) is None:
        raise NotYet(
            f"{answer}? Each user makes one request per (response time + wait time) seconds; "
            "how long is one user's round, and how many users are there?"
        )
    return "50 users, each one request every 1.2 s (0.2 s answer + 1 s wait): about 42/s."


# -- exercise 2: users per worker ---------------------------------------------------------------
def _check_users(answer: Any) -> str:
    if first_reading(answer, lambda users: close_to(users, 25, 1e-9)) is None:
        raise NotYet(f"{answer}? The master hands the -u users out evenly over its workers.")
    return "the master splits the 100 users evenly: 25 on each of the 4 workers."


# -- exercise 3: a percentile of a histogram ----------------------------------------------------
def percentile(histogram, fraction):
    total = sum(histogram.values())
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= fraction * total:
            return ms


def locusts_rule(histogram: dict[int, int], fraction: float) -> float:
    """Locust's own percentile (``calculate_response_time_percentile`` in ``locust/stats.py``,
    Locust 2.47): count down from the slowest time, and return the first time at which no more
    than int(N * fraction) requests are left below it."""
    total = sum(histogram.values())
    processed = 0
    for ms in sorted(histogram, reverse=True):
        processed += histogram[ms]
        if total - processed <= int(total * fraction):
            return ms
    return 0


def definitions() -> dict[str, Callable[[dict[int, int], float], float]]:
    """Every standard percentile of a histogram the check accepts, by name; the question asks
    for the first. numpy's methods are the definitions of Hyndman and Fan (1996) and more."""
    import numpy

    def of_numpy(method: Any) -> Callable[[dict[int, int], float], float]:  # a numpy method name
        def percentile_by(histogram: dict[int, int], fraction: float) -> float:
            times = sorted(ms for ms, count in histogram.items() for _ in range(count))
            return float(numpy.percentile(times, fraction * 100, method=method))

        return percentile_by

    methods = ["linear", "lower", "higher", "nearest", "midpoint", "averaged_inverted_cdf",
               "closest_observation", "interpolated_inverted_cdf", "hazen", "weibull",
               "median_unbiased", "normal_unbiased"]  # fmt: skip
    return {
        "nearest rank": lambda h, f: nearest_rank_of_counts(h, round(f * 100, 10)),
        "Locust's rule (calculate_response_time_percentile)": locusts_rule,
        **{f"numpy's method={m!r}": of_numpy(m) for m in methods},
    }


def _cases() -> list[tuple[dict[int, int], float]]:
    """Histograms and fractions, some on the very rank where the definitions part (N * fraction
    a whole number), none where float rounding could move a rank."""
    cases: list[tuple[dict[int, int], float]] = [
        ({10: 1, 20: 1}, 0.5),
        ({10: 1, 20: 1}, 0.99),
        ({100: 95, 900: 5}, 0.95),  # nearest rank 100, Locust 900
        ({100: 95, 900: 5}, 0.99),
        ({30: 7, 10: 3}, 0.5),  # not in order: sort the times first
        ({1: 1, 2: 1, 3: 1, 4: 1}, 0.5),
    ]
    rng = random.Random(11)
    while len(cases) < 36:
        histogram = {rng.randint(1, 2000): rng.randint(1, 40) for _ in range(rng.randint(1, 9))}
        fraction = rng.choice([0.5, 0.66, 0.9, 0.95, 0.99])
        product, exact = (
            fraction * sum(histogram.values()),
            Fraction(str(fraction)) * sum(histogram.values()),
        )
        if int(product) == int(exact) and -int(-product // 1) == -int(-exact // 1):
            cases.append((histogram, fraction))
    return cases


def _same(got: Any, want: float) -> bool:
    try:
        return not isinstance(got, bool) and abs(float(got) - want) <= 1e-9 * max(1, abs(want))
    except (TypeError, ValueError):
        return False


def _check_percentile(fn: Callable) -> str:
    cases, named = _cases(), definitions()
    answers = [fn(dict(histogram), fraction) for histogram, fraction in cases]
    followed = next(
        (
            name
            for name, rule in named.items()
            if all(_same(got, rule(h, f)) for got, (h, f) in zip(answers, cases))
        ),
        None,
    )
    if followed is None:
        asked = named["nearest rank"]
        (h, f), got = next(
            (case, got) for case, got in zip(cases, answers) if not _same(got, asked(*case))
        )
        raise NotYet(
            f"percentile({h}, {f}) should be {asked(h, f)}, you returned {got!r}. Go "
            "through the times from the fastest, adding up their counts, until the sum "
            "reaches fraction × all requests."
        )
    if followed == "nearest rank":
        return "the smallest time that at least that fraction of the requests met."
    yours = float(fn({100: 95, 900: 5}, 0.95))
    return (
        f"a standard percentile too: {followed}. The question asks for the nearest rank: "
        f"for {{100: 95, 900: 5}} at 0.95 it gives 100, yours {yours:g}, Locust's own 900."
    )


# -- exercise 4: how to report a non-HTTP request -------------------------------------------
_WAYS = {
    "a": "self.client.get",
    "b": "self.environment.events.request.fire",
    "c": "print",
}


def _check_fire(answer: Any) -> str:
    letter = chosen_option(answer, _WAYS)
    if letter is None:
        raise NotYet('answer "a", "b" or "c" (one of them).')
    if letter == "a":
        raise NotYet("a plain User has no HTTP client, and our protocol is not HTTP.")
    if letter == "c":
        raise NotYet("Locust counts only what reaches its statistics; a print reaches a log.")
    return "firing the request event puts the request in Locust's stats, failures included."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            50 Locust users each run `wait_time = constant(1)`, and the server answers every
            request in 0.2 s. About how many requests per second do they make together?""",
            [
                "One user: a request (0.2 s), then a wait (1 s), then the next request.",
                "So one user makes 1 / 1.2 requests per second.",
            ],
            _check_rate,
            answer="""
            check(1, 50 / 1.2)""",
            why="""A user waits for each answer before it waits its wait_time, so it makes
            one request every 0.2 + 1 = 1.2 s; 50 of them make 50 / 1.2, about 42 a second.""",
        ),
        2: Exercise(
            """
            A master started with `-u 100 --expect-workers 4` and four workers on four
            machines. How many users does each worker run?""",
            ["The master decides, and hands the users out as evenly as it can."],
            _check_users,
            answer="""
            check(2, 100 // 4)""",
            why="""The workers run users; the master only hands them out, as evenly as it
            can, over the workers that are connected: 100 over 4 is 25 each.""",
        ),
        3: Exercise(
            """
            Write `percentile(histogram, fraction)`: Locust keeps response times as a
            histogram `{milliseconds: count}`. Return the nearest-rank percentile, the smallest
            time in it that at least `fraction` of all the requests met (`fraction` 0.95 gives
            the p95).""",
            [
                "total = sum(histogram.values()); go through sorted(histogram) from the fastest.",
                "Keep a running count; return the time at which it reaches fraction * total.",
            ],
            _check_percentile,
            answer=worked(3, percentile),
            why="""Sorted by time, the running count says how many requests took that long
            or less; the first time at which it reaches the fraction of all the requests is
            the nearest-rank percentile. Locust's own rule differs: its
            `calculate_response_time_percentile` (locust/stats.py) counts down from the slowest
            time with int(N × fraction), so for {100: 95, 900: 5} its p95 is 900, not 100.""",
        ),
        4: Exercise(
            """
            A Locust `User` talks lesson 08's file protocol over its own socket. How does a
            request it made get into Locust's statistics? (a) `self.client.get(...)`,
            (b) `self.environment.events.request.fire(...)`, (c) `print(...)`. Answer
            `"a"`, `"b"` or `"c"`.""",
            ["Which of them does Locust's own HttpUser call after each request?"],
            _check_fire,
            answer="""
            check(4, "b")""",
            why="""Locust's statistics listen to the request event: HttpUser fires it after
            each HTTP request, and a User for another protocol fires it itself, with the
            response time, the length, and the exception if the request failed.""",
        ),
    }
