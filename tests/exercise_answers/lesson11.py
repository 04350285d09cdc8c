"""Lesson 11 (load testing with Locust): answers in other styles, and wrong ones."""

import numpy

from labkit.exercises.lesson11 import locusts_rule


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
}
