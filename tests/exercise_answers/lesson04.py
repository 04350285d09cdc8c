"""Lesson 04 (synchronous vs asynchronous I/O): answers in other styles, and wrong ones."""

from labkit.exercises.lesson04 import measured_overlap

CORRECT = {
    1: {
        "a whole number": lambda: 3,
        "what a run measures": lambda: 3.2,
        "a string": lambda: "3.1",
        "milliseconds, with the unit": lambda: "3000 ms",
        "a sentence": lambda: "30 x 0.1 = 3 s",
    },
    2: {
        "a little more": lambda: 0.11,
        "more overhead": lambda: 0.15,
        "a string": lambda: "0.12",
        "milliseconds, with the unit": lambda: "100 ms",
    },
    3: {
        "module path": lambda: "import gevent.monkey; gevent.monkey.patch_all()",
        "the call alone": lambda: "monkey.patch_all()",
        "with an option": lambda: "gevent.monkey.patch_all(thread=False)",
    },
    4: {
        "the ideal": lambda: 50,
        "below this machine's": lambda: 0.9 * measured_overlap(),
        "a string": lambda: "45",
    },
}

WRONG = {
    1: {"one latency": lambda: 0.1, "the count": lambda: 30, "a tenth": lambda: 0.3},
    2: {
        "sequential": lambda: 3.0,
        "latency over the count": lambda: 0.0033,
        "ten times too long": lambda: 1.0,
    },
    3: {
        "an import only": lambda: "import gevent",
        "the module only": lambda: "from gevent import monkey",
        "not called": lambda: "monkey.patch_all",
    },
    4: {
        "sequential": lambda: 1,
        "too low": lambda: 5,
        "more than the requests": lambda: 100,
        "far too high": lambda: 500,
    },
}
