"""Lesson 03 (gevent basics): answers in other styles, and wrong ones."""

import time

import gevent
from gevent.event import Event


def nap_on_an_event(seconds):
    Event().wait(timeout=seconds)  # nobody sets it: returns after the timeout


def nap_with_a_timeout(seconds):
    with gevent.Timeout(seconds, False):
        gevent.sleep(10 * seconds + 1)  # cut short, silently, by the Timeout


CORRECT = {
    1: {"a string": lambda: "toast eggs tea", "capitals and commas": lambda: "Toast, Eggs, Tea"},
    2: {
        "an expression": lambda: 3 * 50.0,
        "what run_pool(2, 6) shows": lambda: 158,
        "with the unit": lambda: "150 ms",
        "in seconds, with the unit": lambda: "0.15 s",
    },
    3: {
        "an Event's timeout": lambda: nap_on_an_event,
        "a gevent.Timeout": lambda: nap_with_a_timeout,
        "gevent.sleep itself": lambda: gevent.sleep,
    },
}

WRONG = {
    1: {"spawn order": lambda: "tea toast eggs", "wrong order": lambda: "tea eggs toast"},
    2: {
        "one after another": lambda: 300,
        "all at once": lambda: 50,
        "two rounds": lambda: 100,
        "seconds without the unit": lambda: 0.15,
    },
    3: {
        "blocks: naps don't overlap": lambda: time.sleep,
        "does not wait at all": lambda: lambda seconds: None,
    },
}
