"""Lesson 01 (coroutines with generators): answers in other styles, and wrong ones."""

import functools


def _primed(generator_function):
    """The lesson's decorator: a coroutine that comes back already primed."""

    def start(*args, **kwargs):
        coroutine = generator_function(*args, **kwargs)
        next(coroutine)
        return coroutine

    return start


@_primed
def running_max_primed():
    best = None
    while True:
        value = yield best
        best = value if best is None else max(best, value)


def running_max_from_minus_infinity():
    best = float("-inf")
    while True:
        best = max(best, (yield best))


def running_max_keeps_everything():
    seen = []
    while True:
        seen.append((yield max(seen) if seen else None))


def _running(combine):
    best = None
    while True:
        value = yield best
        best = value if best is None else combine(best, value)


class RunningMax:
    """A callable object that hands out a fresh coroutine on each call."""

    def __call__(self):
        return _running(max)


def running_max_skips_values():
    best = None
    while True:
        value = yield best  # every other send() lands on the second yield
        best = value if best is None else max(best, value)
        yield best


def running_min():
    best = None
    while True:
        value = yield best
        best = value if best is None else min(best, value)


CORRECT = {
    1: {
        "primed by a decorator": lambda: running_max_primed,
        "starting from minus infinity": lambda: running_max_from_minus_infinity,
        "keeping every value": lambda: running_max_keeps_everything,
        "a partial of a general coroutine": lambda: functools.partial(_running, max),
        "a callable object": lambda: RunningMax(),
    },
    2: {
        "a list": lambda: ["A0", "B0", "C0", "A1", "C1", "A2"],
        "commas": lambda: "A0, B0, C0, A1, C1, A2",
        "lower case": lambda: "a0 b0 c0 a1 c1 a2",
    },
    3: {
        "a list of expressions": lambda: [3 * 0.3, 0.3],
        "what a run measures": lambda: (0.93, 0.33),
        "strings": lambda: ("0.9", "0.3"),
        "milliseconds, with the unit": lambda: ("900 ms", "300 ms"),
        "one string": lambda: "(0.9, 0.3)",
    },
}

WRONG = {
    1: {
        "not a generator": lambda: lambda: iter([1, 2, 3]),
        "the minimum": lambda: running_min,
        "skips every other value": lambda: running_max_skips_values,
    },
    2: {
        "one task at a time": lambda: "A0 A1 A2 B0 C0 C1",
        "B runs a second step": lambda: "A0 B0 C0 A1 B1 C1 A2",
    },
    3: {
        "both overlap": lambda: (0.3, 0.3),
        "both add up": lambda: (0.9, 0.9),
        "one number": lambda: 0.9,
        "milliseconds without the unit": lambda: (900, 300),
    },
}
