"""Lesson 04's exercises: synchronous vs asynchronous I/O."""
from __future__ import annotations

from typing import Any

from labkit.exercises.core import NotYet, Exercise, close_to


def _check_sequential_time(answer: Any) -> str:
    if not close_to(answer, 3.0, 0.15):
        raise NotYet(f"{answer} s. One after the other, each request waits its full 0.1 s.")
    return "30 x 0.1 s = 3 s: sequential time is the sum of the latencies."


def _check_gevent_time(answer: Any) -> str:
    if not 0.09 <= float(answer) <= 0.2:
        raise NotYet(f"{answer} s. All 30 requests are sent at once and wait together.")
    return "about one latency (0.1 s) plus a little overhead: the waits overlap."


def _check_patch_first(answer: Any) -> str:
    text = str(answer).replace(" ", "")
    if "monkey.patch_all()" not in text and "patch_all()" not in text:
        raise NotYet("which call makes the standard library's blocking calls cooperative?")
    return "patch_all() first, before anything imports socket, ssl, time or threading."


def _check_overlap(answer: Any) -> str:
    if not close_to(answer, 50, 0.1):
        raise NotYet(f"{answer}. Overlap is seconds of waiting per second of wall time: 50 "
                     "requests of 0.2 s waiting together for about 0.2 s.")
    return "50 requests x 0.2 s of waiting in about 0.2 s of wall time: an overlap of about 50."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise("30 requests, each answered after 0.1 s, fetched one after another: about "
                    "how many seconds?",
                    ["The first timeline of this lesson shows the sequential case."],
                    _check_sequential_time, lambda: 3.0),
        2: Exercise("The same 30 requests with gevent: about how many seconds?",
                    ["How long does the slowest single request take?"],
                    _check_gevent_time, lambda: 0.11),
        3: Exercise("Which line must come first in a program that uses gevent with ordinary "
                    "blocking libraries? Answer with the line of code.",
                    ["The patch_too_late script shows what happens otherwise."],
                    _check_patch_first, lambda: "from gevent import monkey; monkey.patch_all()"),
        4: Exercise("A run's overlap is its total waiting time divided by its wall time. What "
                    "overlap does gevent reach for 50 requests of 0.2 s? Try it with the panel.",
                    ["Sequential: overlap 1. Perfectly concurrent: overlap N."],
                    _check_overlap, lambda: 48),
    }
