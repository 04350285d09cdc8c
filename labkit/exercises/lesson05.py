"""Lesson 05's exercises: the event-driven model."""
from __future__ import annotations

import time
from typing import Any, Callable

from labkit.exercises.core import NotYet, Exercise, close_to


def _call_later_reference(loop, delay, callback):
    async def later():
        await loop.sleep(delay)
        callback()
    return loop.create_task(later())


def _check_call_later(fn: Callable) -> str:
    from labkit.eventloop.futures import Loop
    loop, fired = Loop(), []
    start = time.perf_counter()

    def note(name):
        return lambda: fired.append((name, round(time.perf_counter() - start, 2)))

    async def main():
        fn(loop, 0.06, note("late"))
        fn(loop, 0.02, note("early"))
        await loop.sleep(0.1)

    loop.run_until_complete(main())
    names = [name for name, _ in fired]
    if names != ["early", "late"]:
        raise NotYet(f"callbacks fired: {names or 'none'}; expected early, then late. Does your "
                     "task await loop.sleep(delay) before calling the callback?")
    late_at = fired[1][1]
    if late_at < 0.05:
        raise NotYet(f"the 0.06 s callback fired after {late_at} s: it did not wait.")
    return "a timer is just a Future that the loop completes when its time comes."


def _check_predicted_total(answer: Any) -> str:
    if not close_to(answer, 0.35, 0.1):
        raise NotYet(f"{answer} s. The three computations cannot overlap (one thread), the waits "
                     "can: when does the last task start waiting?")
    return "3 x 0.05 s of computing one after another, then the last 0.2 s wait: 0.35 s."


def _check_best_fit(answer: Any) -> str:
    if str(answer).strip().lower() != "b":
        raise NotYet("look for many independent tasks that mostly wait; computing is not waiting.")
    return "thousands of mostly idle connections: many tasks, independent, mostly waiting."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise("Write call_later(loop, delay, callback) for labkit.eventloop.futures.Loop: "
                    "callback() runs about delay seconds later, while other tasks go on.",
                    ["Make a small coroutine that awaits loop.sleep(delay), then calls callback.",
                     "Hand that coroutine to loop.create_task(...) and return the task."],
                    _check_call_later, lambda: _call_later_reference),
        2: Exercise("Three tasks each compute for 0.05 s and then wait 0.2 s for I/O, on one event "
                    "loop. About how many seconds does the run take?",
                    ["Draw it: computing blocks the loop, waiting does not."],
                    _check_predicted_total, lambda: 0.35),
        3: Exercise("Which suits an event loop best? (a) resizing 1,000 images (b) a chat server "
                    "with 5,000 mostly idle connections (c) one large matrix multiplication",
                    ["The section 'When is the event-driven model the right choice?'"],
                    _check_best_fit, lambda: "b"),
    }
