"""The machinery behind the exercises (see labkit/exercises/__init__.py). Exercises at the end of each lesson: ``hint(n)`` nudges, ``check(n, answer)`` says if you have it.

    from labkit.exercises import lesson
    hint, check = lesson(1)
    hint(1)                  # the first hint; call again for the next one
    check(1, running_max)    # True when right; a message that helps when not

Each exercise's checker runs your answer on fresh inputs, so it cannot be fooled by a constant,
and it never crashes on a wrong answer: it explains what went wrong.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Exercise", "NotYet", "Lesson"]


class NotYet(Exception):
    """Raised by a checker with the message the student should read."""


@dataclass
class Exercise:
    question: str
    hints: list[str]
    checker: Callable[[Any], str]        # returns the praise, raises NotYet with advice
    solution: Callable[[], Any]          # a correct answer (used by the course's own tests)
    # Other answers a student could rightly give, written differently from ``solution`` (the
    # course's tests require at least two, so a checker never rejects a correct answer), and
    # wrong answers it must reject with advice. Each is a function that returns the answer.
    also_correct: list[Callable[[], Any]] = field(default_factory=list, repr=False)
    wrong: list[Callable[[], Any]] = field(default_factory=list, repr=False)
    shown_hints: int = field(default=0, repr=False)


def _no_answer(answer: Any) -> bool:
    if inspect.isclass(answer):        # a class template: every method still a placeholder
        methods = [f for f in vars(answer).values() if inspect.isfunction(f)]
        return bool(methods) and all(_returns_nothing(f) for f in methods)
    return answer is ... or answer is None or (callable(answer) and _returns_nothing(answer))


def _returns_nothing(fn: Callable) -> bool:
    """A placeholder function whose body is only ``...`` or ``pass``."""
    try:
        lines = [ln.strip() for ln in inspect.getsource(fn).splitlines()[1:]]
    except (OSError, TypeError):
        return False
    body = [ln for ln in lines if ln and not ln.startswith(("#", '"""', "'''"))]
    return bool(body) and all(ln in ("...", "pass") or ln.startswith("...") for ln in body)


class Lesson:
    def __init__(self, number: int, exercises: dict[int, Exercise]) -> None:
        self.number = number
        self.exercises = exercises

    def _get(self, n: int) -> Exercise:
        if n not in self.exercises:
            raise ValueError(f"lesson {self.number:02d} has exercises "
                             f"{', '.join(map(str, self.exercises))}, not {n}")
        return self.exercises[n]

    def hint(self, n: int) -> None:
        """Print the next hint for exercise ``n`` (the last one repeats)."""
        ex = self._get(n)
        i = min(ex.shown_hints, len(ex.hints) - 1)
        ex.shown_hints += 1
        print(f"Hint {i + 1}/{len(ex.hints)} for exercise {n}: {ex.hints[i]}")

    def check(self, n: int, answer: Any) -> None:
        """Check an answer; print why it is right, or what to look at."""
        self.passed(n, answer)

    def passed(self, n: int, answer: Any) -> bool:
        """Like check, and return True when the answer is right."""
        ex = self._get(n)
        if _no_answer(answer):
            print(f"Exercise {n}: no answer yet. Replace the ... with yours; hint({n}) helps.")
            return False
        try:
            praise = ex.checker(answer)
        except NotYet as advice:
            print(f"Exercise {n}: not yet. {advice}")
            return False
        except Exception as exc:          # the student's code raised: say so, don't crash
            print(f"Exercise {n}: not yet. Your answer raised {type(exc).__name__}: {exc}")
            return False
        print(f"Exercise {n}: correct! {praise}")
        return True


# -- shared checking helpers -------------------------------------------------------------------
def expect_equal(answer: Any, expected: Any, what: str) -> None:
    if answer != expected:
        raise NotYet(f"{what}: you said {answer!r}.")


def words_of(answer: Any) -> list[str]:
    """Accept "A0 B0 A1" or ["A0", "B0", "A1"]."""
    if isinstance(answer, str):
        return answer.replace(",", " ").split()
    return [str(a) for a in answer]


def close_to(answer: float, expected: float, tolerance: float) -> bool:
    return abs(float(answer) - expected) <= tolerance * expected


def chosen_option(answer: Any, options: dict[str, str]) -> str | None:
    """The letter of a multiple-choice answer: "b", "(B)", "b) because ...", or a sentence that
    names exactly one option by its own words (``options`` maps letters to those words)."""
    text = str(answer).strip().lower()
    if m := re.match(r"\(?([a-z])\s*(?:[):.,]|$)", text):
        return m.group(1) if m.group(1) in options else None
    named = [letter for letter, words in options.items() if words in text]
    return named[0] if len(named) == 1 else None
