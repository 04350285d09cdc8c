"""Lesson 11's exercises: load testing with Locust. Locust itself never runs in the kernel, so
these check what a student reasons out about a run, and one function that reads Locust's
response-time histogram the way Locust does."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from labkit.exercises import Exercise, NotYet, chosen_option, worked


def _number_in(answer: Any) -> float:
    numbers = re.findall(r"\d[\d,_]*(?:\.\d+)?", str(answer))
    if not numbers:
        raise NotYet("answer a number.")
    return float(re.sub("[,_]", "", numbers[-1]))


# -- exercise 1: requests/s from users, wait time and response time -------------------------
def _check_rate(answer: Any) -> str:
    rate = _number_in(answer)
    if not 38 <= rate <= 46:
        raise NotYet(
            f"{answer}? Each user makes one request per (response time + wait time) seconds; "
            "how long is one user's round, and how many users are there?"
        )
    return "50 users, each one request every 1.2 s (0.2 s answer + 1 s wait): about 42/s."


# -- exercise 2: users per worker ---------------------------------------------------------------
def _check_users(answer: Any) -> str:
    users = _number_in(answer)
    if users != 25:
        raise NotYet(f"{answer}? The master hands the -u users out evenly over its workers.")
    return "the master splits the 100 users evenly: 25 on each of the 4 workers."


# -- exercise 3: Locust's percentile of a histogram ---------------------------------------------
def percentile(histogram, fraction):
    total = sum(histogram.values())
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= fraction * total:
            return ms


def _percentile_by_expanding(histogram: dict[int, int], fraction: float) -> int:
    """Also right: write out every request's time, sorted, and index into it."""
    import math

    times = sorted(ms for ms, count in histogram.items() for _ in range(count))
    return times[max(0, math.ceil(fraction * len(times)) - 1)]


def _percentile_by_accumulate(histogram: dict[int, int], fraction: float) -> int:
    """Also right: running totals with itertools.accumulate."""
    from itertools import accumulate

    keys = sorted(histogram)
    total = sum(histogram.values())
    for ms, seen in zip(keys, accumulate(histogram[k] for k in keys)):
        if seen >= fraction * total:
            return ms
    return keys[-1]


def _check_percentile(fn: Callable) -> str:
    cases: list[tuple[dict[int, int], float]] = [
        ({10: 1, 20: 1}, 0.5),
        ({10: 1, 20: 1}, 0.99),
        ({100: 95, 900: 5}, 0.95),
        ({100: 95, 900: 5}, 0.99),
        ({30: 7, 10: 3}, 0.5),  # not in order: sort the times first
    ]
    rng = random.Random(11)
    for _ in range(30):
        histogram = {rng.randint(1, 2000): rng.randint(1, 40) for _ in range(rng.randint(1, 9))}
        cases.append((histogram, rng.choice([0.5, 0.66, 0.9, 0.95, 0.99])))
    for histogram, fraction in cases:
        expected = percentile(dict(histogram), fraction)
        got = fn(dict(histogram), fraction)
        if got != expected:
            raise NotYet(
                f"percentile({histogram}, {fraction}) should be {expected}, you returned "
                f"{got!r}. Go through the times from the fastest, adding up their counts, "
                "until the sum reaches fraction × all requests."
            )
    return "the smallest time that at least that fraction of the requests met, as Locust does."


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
            also_correct=[lambda: 42, lambda: "about 41.7 requests/s"],
            wrong=[lambda: 50, lambda: 250, lambda: "about 10"],
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
            also_correct=[lambda: "25", lambda: 25.0],
            wrong=[lambda: 100, lambda: 400, lambda: "4"],
        ),
        3: Exercise(
            """
            Write `percentile(histogram, fraction)`: Locust keeps response times as a
            histogram `{milliseconds: count}`. Return the smallest time in it that at least
            `fraction` of all the requests met (`fraction` 0.95 gives the p95).""",
            [
                "total = sum(histogram.values()); go through sorted(histogram) from the fastest.",
                "Keep a running count; return the time at which it reaches fraction * total.",
            ],
            _check_percentile,
            answer=worked(3, percentile),
            why="""Sorted by time, the running count says how many requests took that long
            or less; the first time at which it reaches the fraction of all the requests is
            the percentile, which is how Locust reads its own histogram.""",
            also_correct=[lambda: _percentile_by_expanding, lambda: _percentile_by_accumulate],
            wrong=[
                lambda: lambda histogram, fraction: max(histogram),
                lambda: (
                    lambda histogram, fraction: sorted(histogram)[
                        int(fraction * (len(histogram) - 1))
                    ]
                ),
            ],
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
            also_correct=[lambda: "B", lambda: "(b) self.environment.events.request.fire"],
            wrong=[lambda: "a", lambda: "c", lambda: "print"],
        ),
    }
