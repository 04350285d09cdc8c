"""Exercises at the end of each lesson: ``hint(n)`` nudges, ``check(n, answer)`` says if you have it.

    from labkit.exercises import lesson
    hint, check = lesson(1)
    hint(1)                  # the first hint; call again for the next one
    check(1, running_max)    # True when right; a message that helps when not

Each exercise's checker runs your answer on fresh inputs, so it cannot be fooled by a constant,
and it never crashes on a wrong answer: it explains what went wrong.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from labkit.exercises.core import Exercise, Lesson, NotYet

__all__ = ["lesson", "exercises_of", "Exercise", "NotYet", "Lesson", "LESSONS"]


def _loader(number: int) -> Callable[[], dict[int, Exercise]]:
    return lambda: importlib.import_module(f"labkit.exercises.lesson{number:02d}").exercises()


# One module per lesson: labkit/exercises/lessonNN.py, each with exercises() -> {n: Exercise}.
LESSONS: dict[int, Callable[[], dict[int, Exercise]]] = {
    int(n): _loader(int(n)) for n in ['01', '02', '03', '04', '05', '06', '07', '08']}


def lesson(number: int) -> tuple[Callable[[int], None], Callable[[int, Any], None]]:
    """``hint`` and ``check`` for one lesson's exercises."""
    if number not in LESSONS:
        raise ValueError(f"no exercises for lesson {number}; lessons with exercises: "
                         f"{', '.join(map(str, LESSONS))}")
    chosen = Lesson(number, LESSONS[number]())
    return chosen.hint, chosen.check


def exercises_of(number: int) -> dict[int, Exercise]:
    """The exercises of one lesson (fresh objects), for tests and instructors."""
    return LESSONS[number]()
