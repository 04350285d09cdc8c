"""Exercises at the end of each lesson: a hint, a check and a worked answer, one call away.

    from labkit.exercises import lesson
    hint, check, answer = lesson(1)
    hint(1)                  # the first hint; call again for the next one
    check(1, running_max)    # says why it is right, or what to look at
    answer(1)                # a worked solution and why it is right (try first!)
    lesson(1).question(1)    # the question, as the notebook states it

Each lesson's exercises live in one module, ``labkit/exercises/lessonNN.py``, whose
``exercises()`` returns ``{n: Exercise}``. An exercise holds its question once (the notebook's
markdown states exactly that text: ``tests/test_exercise_texts.py`` proves it), its hints, a
checker, and its worked solution as code that ends with ``check(n, ...)``: ``answer(n)`` prints
that code and the tests run it through the checker, so the two cannot drift apart.

Each checker runs your answer on fresh inputs, so it cannot be fooled by a constant, and it
never crashes on a wrong answer: it explains what went wrong. A function answer is called,
never compared with ours (a lambda, a partial, a bound method or any callable object will
do); a written answer is read by ``labkit.exercises.reading``, which accepts the right value
however it is written (a number, a string with a unit, a sentence that works it out).

The course's tests (``tests/test_exercises.py``) run each checker on correct answers written
in several styles and on wrong ones; those answers live in ``tests/``, not here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.exercises.reading import (
    chosen_option,
    close_to,
    first_reading,
    labels_in,
    parts_of,
    readings,
)
from labkit.exercises.translations import WORDS, translate

__all__ = [
    "lesson",
    "exercises_of",
    "Exercise",
    "NotYet",
    "Lesson",
    "LESSONS",
    "worked",
    "readings",
    "first_reading",
    "parts_of",
    "labels_in",
    "chosen_option",
    "close_to",
]


class NotYet(Exception):
    """Raised by a checker with the message the student should read."""


@dataclass
class Exercise:
    question: str  # markdown, exactly as the lesson's notebook states it (after "Exercise n.")
    hints: list[str]
    checker: Callable[[Any], str]  # returns the praise, raises NotYet with advice
    # The worked solution: code a student could put in the exercise's cell, ending with
    # ``check(n, ...)``. ``answer(n)`` prints it; ``solution()`` runs it.
    answer: str
    why: str  # one or two sentences: why that solution is right
    # Names the worked solution takes from the lesson's notebook (e.g. its ``run_fetch``),
    # given here so that ``solution()`` runs outside the notebook too.
    lesson_names: dict[str, Any] = field(default_factory=dict, repr=False)
    shown_hints: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.question = textwrap.dedent(self.question).strip()
        self.answer = textwrap.dedent(self.answer).strip()
        self.why = " ".join(self.why.split())

    def solution(self) -> Any:
        """Run the worked solution; return what it hands to ``check``."""
        handed: list[Any] = []
        namespace = {**self.lesson_names, "check": lambda n, answer: handed.append(answer)}
        exec(compile(self.answer, "<worked solution>", "exec"), namespace)
        if len(handed) != 1:
            raise RuntimeError(f"a worked solution calls check once, not {len(handed)} times")
        return handed[0]


def worked(n: int, solution: Callable[..., Any], imports: str = "") -> str:
    """The worked solution of exercise ``n`` when it is a function or class: its source (so the
    code that is shown is the code the tests run), then the call that checks it."""
    source = textwrap.dedent(inspect.getsource(solution)).strip()
    head = f"{textwrap.dedent(imports).strip()}\n\n\n" if imports else ""
    return f"{head}{source}\n\n\ncheck({n}, {solution.__name__})"


def _no_answer(answer: Any) -> bool:
    if inspect.isclass(answer):  # a class template: every method still a placeholder
        methods = [f for f in vars(answer).values() if inspect.isfunction(f)]
        return bool(methods) and all(_returns_nothing(f) for f in methods)
    return answer is ... or answer is None or (callable(answer) and _returns_nothing(answer))


def _returns_nothing(fn: Callable[..., Any]) -> bool:
    """A placeholder function whose body is only ``...`` or ``pass`` (after any docstring),
    on its own line or on the ``def`` line (as ``ruff format`` writes it)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):  # no source, or a lambda inside an expression
        return False
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not defs:
        return False
    body = defs[0].body
    if body and _is_constant(body[0], str):  # the docstring
        body = body[1:]
    return bool(body) and all(isinstance(s, ast.Pass) or _is_constant(s, type(...)) for s in body)


def _is_constant(statement: ast.stmt, kind: type) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, kind)
    )


class Lesson:
    """One lesson's exercises. Unpacks as ``hint, check, answer``."""

    def __init__(self, number: int, exercises: dict[int, Exercise], lang: str = "en") -> None:
        self.number = number
        self.exercises = exercises
        self.words = WORDS[lang]

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter((self.hint, self.check, self.answer))

    def _get(self, n: int) -> Exercise:
        if n not in self.exercises:
            raise ValueError(
                f"lesson {self.number:02d} has exercises "
                f"{', '.join(map(str, self.exercises))}, not {n}"
            )
        return self.exercises[n]

    def question(self, n: int) -> None:
        """Print exercise ``n``'s question, as the notebook states it."""
        print(f"{self.words['exercise']} {n}. {self._get(n).question}")

    def hint(self, n: int) -> None:
        """Print the next hint for exercise ``n`` (the last one repeats)."""
        ex = self._get(n)
        i = min(ex.shown_hints, len(ex.hints) - 1)
        ex.shown_hints += 1
        print(self.words["hint"].format(i=i + 1, n=len(ex.hints), k=n, text=ex.hints[i]))

    def answer(self, n: int) -> None:
        """Print a worked solution of exercise ``n`` and why it is right."""
        ex = self._get(n)
        why = textwrap.fill(f"{self.words['why']}{ex.why}", width=96)
        print(f"{self.words['worked'].format(k=n)}\n\n{ex.answer}\n\n{why}")

    def check(self, n: int, answer: Any) -> None:
        """Check an answer; print why it is right, or what to look at."""
        self.passed(n, answer)

    def passed(self, n: int, answer: Any) -> bool:
        """Like check, and return True when the answer is right."""
        ex = self._get(n)
        if _no_answer(answer):
            print(self.words["no answer"].format(k=n))
            return False
        try:
            praise = ex.checker(answer)
        except NotYet as advice:
            print(f"{self.words['not yet'].format(k=n)}{advice}")
            return False
        except Exception as exc:  # the student's code raised: say so, don't crash
            print(self.words["raised"].format(k=n, error=f"{type(exc).__name__}: {exc}"))
            return False
        print(f"{self.words['correct'].format(k=n)}{praise}")
        return True


def _loader(number: int) -> Callable[[], dict[int, Exercise]]:
    return lambda: importlib.import_module(f"labkit.exercises.lesson{number:02d}").exercises()


# One module per lesson: labkit/exercises/lessonNN.py, each with exercises() -> {n: Exercise}.
# Found by file name (a new lesson's module needs no entry here) and imported on first use, so
# that a lesson's checker imports (gevent, servers) load only there.
LESSONS: dict[int, Callable[[], dict[int, Exercise]]] = {
    int(path.stem[len("lesson") :]): _loader(int(path.stem[len("lesson") :]))
    for path in sorted(Path(__file__).parent.glob("lesson[0-9][0-9].py"))
}


def default_language() -> str:
    """The language a lesson's exercises speak when none is asked for: the lesson's folder's.
    A kernel starts in its notebook's folder, and the Chinese lessons live in a folder named
    ``zh`` (``notebooks/zh``, ``my-work/zh``), so the same code cell, ``lesson(n)``, speaks
    Chinese there and English everywhere else (no setting that could make the English
    lessons' stored outputs differ)."""
    return "zh" if Path.cwd().name == "zh" else "en"


def lesson(number: int, lang: str | None = None) -> Lesson:
    """One lesson's exercises: ``hint, check, answer = lesson(n)``; also ``.question(n)``.

    ``lang="zh"``: the questions, hints and explanations in Chinese (the same checkers); by
    default, the language of the folder the lesson runs in (``default_language``)."""
    if number not in LESSONS:
        raise ValueError(
            f"no exercises for lesson {number}; lessons with exercises: "
            f"{', '.join(map(str, LESSONS))}"
        )
    lang = lang or default_language()
    return Lesson(number, translate(number, LESSONS[number](), lang), lang)


def exercises_of(number: int) -> dict[int, Exercise]:
    """The exercises of one lesson (fresh objects), for tests and instructors."""
    return LESSONS[number]()
