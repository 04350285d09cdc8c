"""Lesson 11's exercises: load testing with Locust. Locust itself never runs in the kernel, so
these check what a student reasons out about a run, one function that reads a percentile from a
response-time histogram like Locust's, and a locustfile of the student's own, which the check
runs (in a child process, like every Locust of the course) and judges by what happened."""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from labkit.background import serve
from labkit.exercises import (
    Exercise,
    NotYet,
    close_to,
    first_reading,
    parts_of,
    readings,
    worked,
)
from labkit.exercises.reading import choice_advice
from labkit.locust_lab import LOCUSTFILES, LocustError, LocustRun, check_locustfile, run_locust
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
        total = sum(histogram.values())
        product, exact = fraction * total, Fraction(str(fraction)) * total
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

    def follows(rule: Callable[[dict[int, int], float], float]) -> bool:
        return all(_same(got, rule(h, f)) for got, (h, f) in zip(answers, cases))

    followed = next((name for name, rule in named.items() if follows(rule)), None)
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
_WAYS = {"a": "self.client.get", "b": "self.environment.events.request.fire", "c": "print"}


def _check_fire(answer: Any) -> str:
    advice = {
        None: 'answer "a", "b" or "c" (one of them).',
        "a": "a plain User has no HTTP client, and our protocol is not HTTP.",
        "c": "Locust counts only what reaches its statistics; a print reaches a log.",
    }
    if wrong := choice_advice(answer, _WAYS, "b", advice):
        raise NotYet(wrong)
    return "firing the request event puts the request in Locust's stats, failures included."


# -- exercise 5: a locustfile of your own, run --------------------------------------------------
PAGE = "/pages/page-48k.html"
DELAY, WAIT = 0.1, 0.5  # seconds: what the question asks the requests and the users for
CHECK_USERS, CHECK_SECONDS = 10, 3
WAITED = (0.3, 0.8)  # a user's wait between requests, worked out from the counts, in seconds

#: the worked answer: a locustfile beside the skeleton it starts from
WORKED_LOCUSTFILE = (LOCUSTFILES / "worked_pages.py").read_text(encoding="utf-8")


@contextlib.contextmanager
def _as_file(answer: Any) -> Iterator[Path]:
    """The locustfile an answer names: its path (a Path or a string), or its source written
    to a temporary file for the length of the check."""
    if isinstance(answer, str) and "\n" in answer.strip():
        with tempfile.TemporaryDirectory(prefix="lesson11-check-") as folder:
            path = Path(folder) / "my_locustfile.py"
            path.write_text(answer, encoding="utf-8")
            yield path
    elif isinstance(answer, str | os.PathLike):
        yield Path(answer)
    else:
        raise NotYet(
            f"{answer!r}? Hand the check your locustfile: its path, check(5, MY_LOCUSTFILE), "
            "or its source as a string."
        )


def _server_log(address: tuple[str, int]) -> list[dict[str, Any]]:
    """latency_http's record of every request it answered (GET /_log)."""
    url = f"http://{address[0]}:{address[1]}/_log"
    with urllib.request.urlopen(url, timeout=10) as reply:
        records: list[dict[str, Any]] = json.loads(reply.read())
    return records


def _run_locustfile(path: Path) -> tuple[LocustRun, list[dict[str, Any]]]:
    """Run the locustfile against a fresh latency_http that does not wait unless asked; return
    Locust's run and the server's log. Not a locustfile, or a run that failed: NotYet, why."""
    try:
        check_locustfile(path)  # before a server starts for it
        with serve("latency_http", delay=0) as srv:
            run = run_locust(path, srv, users=CHECK_USERS, spawn_rate=1000, seconds=CHECK_SECONDS)
            return run, _server_log(srv.address)
    except LocustError as err:  # a LocustfileError too
        raise NotYet(str(err)) from None


def _check_locustfile(answer: Any) -> str:
    with _as_file(answer) as path:
        run, log = _run_locustfile(path)
        if not log:
            problem = run.task_error(path)
            found = (
                f"A task raised:\n{problem}" if problem else "Does the task call self.client.get?"
            )
            raise NotYet(
                f"Locust ran {path.name} for {CHECK_SECONDS} s and not one request reached "
                f"the server. {found}"
            )
    return _judge(run, log)


def _judge(run: LocustRun, log: list[dict[str, Any]]) -> str:
    elsewhere = sorted({r["path"] for r in log} - {PAGE})
    if elsewhere:
        raise NotYet(f"requests went to {', '.join(elsewhere)}: the question asks for {PAGE}.")
    refused = [row for row in run.errors if "503" not in row["Error"]]
    if refused:
        raise NotYet(f"Locust counted failures: {refused[0]['Error']}. Is the query well formed?")
    ids = [r["id"] for r in log]
    if len(set(ids)) < len(ids):
        raise NotYet(
            f"{len(ids)} requests carried {len(set(ids))} different ids: give each request its "
            "own id in the query (the skeleton's next(ids)), since the server draws each "
            "request's fate from it."
        )
    served = statistics.median(r["end"] - r["start"] for r in log)
    if not 0.9 * DELAY <= served <= 1.5 * DELAY:
        raise NotYet(
            f"the server took {served * 1000:.0f} ms over each request (its median): ask it "
            f"to wait {DELAY} s, with delay={DELAY} in the query."
        )
    # one user's time from request to request: a run of T s holds T / cycle rounds and the
    # one under way when it ends, half a round on average, per user
    cycle = CHECK_USERS * CHECK_SECONDS / max(len(log) - CHECK_USERS / 2, 1)
    waited = cycle - run.p50 / 1000
    if not WAITED[0] <= waited <= WAITED[1]:
        raise NotYet(
            f"{CHECK_USERS} users made {len(log)} requests in {CHECK_SECONDS} s: one every "
            f"{cycle:.2f} s each, of which about {max(waited, 0):.2f} s waiting. Set wait_time "
            f"so that a user waits {WAIT} s after each answer (from locust import constant)."
        )
    return (
        f"Locust ran it: {len(log)} requests, each with its own id, answered after the "
        f"server's {DELAY * 1000:.0f} ms (Locust's p50: {run.p50:.0f} ms), and between them "
        f"each user waited about {waited:.1f} s."
    )


# -- exercise 6: reading your run ---------------------------------------------------------------
def _share(value: float) -> float | None:
    """A share of requests as a fraction: 0.08, or 8 meaning 8 %."""
    return value if 0 <= value <= 1 else value / 100 if 1 < value <= 100 else None


def _check_reading(answer: Any) -> str:
    parts = parts_of(answer, 2)
    if parts is None:
        raise NotYet(f"{answer!r}? Answer two numbers: the failure share, then the p50 in ms.")
    for share_part, p50_part in (parts, parts[::-1]):
        shares = [s for s in map(_share, readings(share_part)) if s is not None]
        p50s = readings(p50_part, "ms")
        if any(0.01 <= s <= 0.3 for s in shares) and any(100 <= p <= 300 for p in p50s):
            return (
                "about a tenth failed, as the server was told (each request's fate drawn "
                "from its id), and half the answers took the server's 100 ms or a little more."
            )
    shares = [s for s in map(_share, readings(parts[0])) if s is not None]
    if shares and all(s in (0.0, 1.0) for s in shares):
        raise NotYet(
            "none or all of them failed? Then every request carried the same id, and the "
            "server drew the same fate for each: give each request its own id."
        )
    raise NotYet(
        f"{answer!r}? The share is failures / requests from the summary (about 0.1 here), and "
        "the p50 is a response time: it counts the server's 100 ms, not the user's wait."
    )


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
        5: Exercise(
            """
            Make `my_locustfile.py` a load test of `latency_http`. Each user GETs
            `/pages/page-48k.html` with `delay=0.1` in the query and an `id` that no other
            request has. It waits 0.5 s after each answer (`wait_time`) before its next
            request. The check runs it: `check(5, MY_LOCUSTFILE)`.""",
            [
                "from locust import constant; in the class: wait_time = constant(0.5).",
                'The query: f"/pages/page-48k.html?delay=0.1&id={next(ids)}".',
                'Run it yourself first: with labkit.serve("latency_http") as pages: '
                "run = run_locust(MY_LOCUSTFILE, pages, users=10, seconds=3); "
                "then print(run.summary()).",
            ],
            _check_locustfile,
            answer=f'check(5, """\n{WORKED_LOCUSTFILE}""")  # or its path: MY_LOCUSTFILE',
            why="""The check runs it for 3 s with 10 users against a fresh latency_http and
            reads what happened. The server logs each request's id and how long it took, and
            Locust counts the requests. A user's round is the server's 0.1 s plus the 0.5 s
            wait, about five requests each in 3 s. Without wait_time, Locust's default is
            constant(0): each user asks again at once.""",
        ),
        6: Exercise(
            """
            Run your locustfile against a server that fails one request in ten:
            `with labkit.serve("latency_http", error_rate=0.1) as pages:` then
            `mine = run_locust(MY_LOCUSTFILE, pages, users=10, seconds=3)`, and
            `print(mine.summary())`. What share of the requests did Locust count as failures,
            and what was its p50 in ms? Answer both, share first.""",
            [
                "Locust counts the server's 503s as failures: the share is failures / requests.",
                "The p50 is the median response time: the server's delay, and a little more.",
            ],
            _check_reading,
            answer="""
            check(6, (0.1, 100))  # the numbers of your run: a share near 0.1, a p50 of 100 ms+""",
            why="""The server fails each request with probability 0.1, drawn from its id, so
            the share lands near a tenth. Each answer takes the 100 ms delay plus the time to
            send 48 KiB. Locust stores a time from 100 ms to 1 s rounded to 10 ms
            (bucket_response_time, locust/stats.py), so its p50 is a multiple of 10 ms, from
            100 up.""",
        ),
    }
