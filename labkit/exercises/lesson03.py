"""Lesson 03's exercises: gevent basics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent

from labkit.exercises import Exercise, NotYet, close_to, first_reading, labels_in, worked


def _check_wakeup_order(answer: Any) -> str:
    got = [w.lower() for w in labels_in(answer, r"\b(?:tea|toast|eggs)\b")]
    if got != ["toast", "eggs", "tea"]:
        raise NotYet(
            f"you said {' '.join(got) or repr(answer)}: they finish in the order their sleeps end."
        )
    return "gevent.sleep hands control to the hub, which wakes each greenlet when its timer fires."


def _check_pool_time(answer: Any) -> str:
    if first_reading(answer, lambda ms: close_to(ms, 150, 0.2), "ms") is not None:
        return "Pool(2) runs 6 tasks in 3 rounds of 50 ms: about 150 ms."
    if first_reading(answer, lambda ms: close_to(ms * 1000, 150, 0.2), "ms") is not None:
        raise NotYet(
            f"{answer} looks like seconds; the question asks for milliseconds "
            '(0.15 s is 150 ms; write the unit, "0.15 s", if you mean seconds).'
        )
    raise NotYet(f"{answer} ms? Six tasks, two at a time: how many rounds of 50 ms?")


def nap(seconds):
    gevent.sleep(seconds)  # the hub runs other greenlets meanwhile, and wakes this one on time


def _check_nap(fn: Callable) -> str:
    start = time.perf_counter()
    gevent.joinall([gevent.spawn(fn, 0.05) for _ in range(5)], timeout=2)
    elapsed = time.perf_counter() - start
    if elapsed < 0.045:
        raise NotYet(f"five naps of 0.05 s took {elapsed * 1000:.0f} ms: does nap wait at all?")
    if elapsed > 0.15:
        raise NotYet(
            f"five naps of 0.05 s took {elapsed * 1000:.0f} ms: they ran one after the "
            "other. Which sleep lets other greenlets run?"
        )
    return f"five naps overlapped: {elapsed * 1000:.0f} ms for 5 x 50 ms."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            Greenlets `tea` (sleeps 0.03 s), `toast` (0.01 s) and `eggs` (0.02 s) are
            spawned in that order; each prints its name after `gevent.sleep`. In what order are
            the names printed? Answer like `"tea toast eggs"`.""",
            ["All three start sleeping at about the same moment."],
            _check_wakeup_order,
            answer="""
            import gevent

            names = []

            def cook(name, seconds):
                gevent.sleep(seconds)
                print(name)
                names.append(name)

            gevent.joinall([gevent.spawn(cook, "tea", 0.03), gevent.spawn(cook, "toast", 0.01),
                            gevent.spawn(cook, "eggs", 0.02)])
            check(1, names)""",
            why="""All three start sleeping at about the same moment: gevent.sleep hands control
            to the hub, which wakes each greenlet when its timer fires, toast at 10 ms, eggs at
            20 ms, tea at 30 ms. The order they were spawned in does not matter.""",
        ),
        2: Exercise(
            """
            A `Pool(2)` runs 6 tasks that each `gevent.sleep(0.05)`. About how many
            milliseconds does the whole run take? Check your answer with `run_pool(2, 6)`.""",
            ["At most 2 run at once; the timeline of the Pool section shows rounds."],
            _check_pool_time,
            answer="""
            check(2, 6 / 2 * 50)   # 6 tasks, 2 at a time: 3 rounds of 50 ms""",
            why="""Pool(2) lets at most 2 tasks run at once and starts the next one only when
            one ends, so 6 tasks run in 3 rounds of 50 ms: about 150 ms (`run_pool(2, 6)`
            measures a little more).""",
        ),
        3: Exercise(
            """
            Write `nap(seconds)` so that five greenlets napping 0.05 s at once finish in
            about 0.05 s, not 0.25 s.""",
            ["time.sleep blocks the whole thread.", "gevent has its own sleep."],
            _check_nap,
            answer=worked(3, nap, imports="import gevent"),
            why="""`time.sleep` blocks the whole thread, so five naps would run one after
            another (0.25 s). `gevent.sleep` hands control to the hub, which runs the other
            greenlets and wakes each nap when its timer fires: the five naps overlap, about
            0.05 s in all.""",
        ),
    }
