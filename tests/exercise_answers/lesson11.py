"""Lesson 11 (load testing with Locust): answers in other styles, and wrong ones."""

import tempfile
from pathlib import Path

import numpy

from labkit.exercises.lesson11 import locusts_rule
from labkit.locust_lab import SKELETON

FOLDER = tempfile.TemporaryDirectory(prefix="lesson11-answers-")  # removed when tests end


def written(name: str, source: str) -> Path:
    """A locustfile in a folder of its own, as a student's my-work/ holds one."""
    path = Path(FOLDER.name) / name
    path.write_text(source, encoding="utf-8")
    return path


def skeleton_with(*edits: tuple[str, str]) -> str:
    text = SKELETON.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return text


DELAYED = ("?id=", "?delay=0.1&id=")
WAITING = ("    # TODO: wait 0.5 s", "    wait_time = constant(0.5)\n    # TODO: wait 0.5 s")
CONSTANT = ("FastHttpUser, task", "FastHttpUser, constant, task")

HTTPUSER_PARAMS = """
import uuid

from locust import HttpUser, between, task


class Reader(HttpUser):
    wait_time = between(0.5, 0.5)

    @task
    def page(self):
        query = {"delay": 0.1, "id": uuid.uuid4().hex}
        self.client.get("/pages/page-48k.html", params=query, name="page")
"""

WAIT_METHOD = """
import random

from locust import FastHttpUser, task


class Reader(FastHttpUser):
    def wait_time(self):
        return 0.5

    @task
    def page(self):
        self.client.get(f"/pages/page-48k.html?delay=0.1&id={random.getrandbits(64)}")
"""

NO_TASK = """
from locust import HttpUser, constant


class Reader(HttpUser):
    wait_time = constant(0.5)

    def page(self):
        self.client.get("/pages/page-48k.html?delay=0.1")
"""


def percentile_by_expanding(histogram: dict[int, int], fraction: float) -> int:
    """Also right: write out every request's time, sorted, and index into it."""
    import math

    times = sorted(ms for ms, count in histogram.items() for _ in range(count))
    return times[max(0, math.ceil(fraction * len(times)) - 1)]


def percentile_by_accumulate(histogram: dict[int, int], fraction: float) -> int:
    """Also right: running totals with itertools.accumulate."""
    from itertools import accumulate

    keys = sorted(histogram)
    total = sum(histogram.values())
    for ms, seen in zip(keys, accumulate(histogram[k] for k in keys)):
        if seen >= fraction * total:
            return ms
    return keys[-1]


def percentile_numpy_linear(histogram, fraction):
    """Right too (another standard definition): numpy's default, linear interpolation."""
    times = [ms for ms, count in histogram.items() for _ in range(count)]
    return float(numpy.percentile(times, fraction * 100))


CORRECT = {
    1: {
        "a whole number": lambda: 42,
        "a string with the unit": lambda: "about 41.7 requests/s",
        "the result, then how": lambda: "42 (50 users / 1.2 s)",
    },
    2: {
        "a string": lambda: "25",
        "a float": lambda: 25.0,
        "the result, then how": lambda: "25 each (100 / 4)",
    },
    3: {
        "written out": lambda: percentile_by_expanding,
        "itertools.accumulate": lambda: percentile_by_accumulate,
        "Locust's own rule": lambda: locusts_rule,
        "numpy's linear interpolation": lambda: percentile_numpy_linear,
    },
    4: {
        "a capital": lambda: "B",
        "a letter and the call": lambda: "(b) self.environment.events.request.fire",
    },
    5: {
        "the skeleton completed, as a Path": lambda: written(
            "completed.py", skeleton_with(DELAYED, WAITING, CONSTANT)
        ),
        "HttpUser, params and between, as a str path": lambda: str(
            written("params.py", HTTPUSER_PARAMS)
        ),
        "wait_time as a method, as source text": lambda: WAIT_METHOD,
    },
    6: {
        "a percent and a unit": lambda: "9%, 110 ms",
        "a dict": lambda: {"share": 0.12, "p50": 100},
        "seconds, written": lambda: (0.1, "0.11 s"),
        "p50 first, in a sentence": lambda: "p50 was 120 ms and 8 % failed",
    },
}

WRONG = {
    1: {"the users": lambda: 50, "one request a 0.2 s": lambda: 250, "a fifth": lambda: "about 10"},
    2: {"all of them": lambda: 100, "times four": lambda: 400, "the workers": lambda: "4"},
    3: {
        "the slowest": lambda: lambda histogram, fraction: max(histogram),
        "counts ignored": lambda: (
            lambda histogram, fraction: sorted(histogram)[int(fraction * (len(histogram) - 1))]
        ),
    },
    4: {"HTTP": lambda: "a", "a print": lambda: "c", "c's words": lambda: "print"},
    5: {
        "the skeleton as shipped (no delay, no wait)": lambda: SKELETON,
        "no wait": lambda: skeleton_with(DELAYED),
        "one id for every request": lambda: skeleton_with(
            ("?id={next(ids)}", "?delay=0.1"), WAITING, CONSTANT
        ),
        "no task": lambda: written("no_task.py", NO_TASK),
        "a missing file": lambda: Path(FOLDER.name) / "not_written_yet.py",
        "a number": lambda: 42,
    },
    6: {
        "all failed": lambda: (1.0, 100),
        "the wait counted": lambda: (0.1, 600),
        "seconds read as ms": lambda: (0.1, 0.1),
        "one number": lambda: 0.1,
    },
}
