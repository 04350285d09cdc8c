"""The instructors' answer key, generated from the exercise modules so it never drifts.

    python -m labkit.exercises.key            # (re)write docs/answer-key.md
    python -m labkit.exercises.key --check    # exit 1 if docs/answer-key.md is stale

For every ``labkit/exercises/lessonNN.py`` it writes each exercise's question (as the notebook
states it), every hint, and exactly what ``answer(n)`` prints: the worked solution that the
course's tests run through the exercise's own checker, and why it is right.
``tests/test_docs.py`` fails when the committed key differs from a fresh generation.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path

from labkit.exercises import Exercise, Lesson

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = ROOT / "docs" / "answer-key.md"
HERE = Path(__file__).resolve().parent

HEADER = """\
# Answer key

For instructors. **Generated** by `python -m labkit.exercises.key` from `labkit/exercises/`
(one module per lesson): do not edit by hand; `tests/test_docs.py` fails when this file differs
from a fresh generation. Students see the same text one call at a time in each lesson
(`hint(n)`, `answer(n)`); each worked solution below is run through its own checker by
`tests/test_exercises.py`, so every answer here passes `check(n, ...)`.

See also the [instructors' guide](instructors.md) and the [glossary](glossary.md).
"""


def lesson_numbers() -> list[int]:
    """Every lesson with an exercise module, ``labkit/exercises/lessonNN.py``."""
    return sorted(
        int(m[1]) for p in HERE.glob("lesson*.py") if (m := re.match(r"lesson(\d+)$", p.stem))
    )


def exercises_in(number: int) -> dict[int, Exercise]:
    module = importlib.import_module(f"labkit.exercises.lesson{number:02d}")
    found: dict[int, Exercise] = module.exercises()
    return found


def notebook_of(number: int) -> str:
    """The lesson's notebook file name, e.g. ``05_event_driven.ipynb`` (or "" if none)."""
    found = sorted((ROOT / "notebooks").glob(f"{number:02d}_*.ipynb"))
    return found[0].name if found else ""


def printed(call: Callable[..., object], *args: object) -> str:
    """What a call prints, as a student would see it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        call(*args)
    return out.getvalue().rstrip("\n")


def fenced(text: str) -> str:
    """A code fence longer than any run of backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def quoted(markdown: str) -> str:
    """A block quote (its code blocks stay exactly as the notebook shows them)."""
    return "\n".join(f"> {line}".rstrip() for line in markdown.splitlines())


def lesson_section(number: int) -> str:
    exercises = exercises_in(number)
    lesson = Lesson(number, exercises)
    notebook = notebook_of(number)
    where = f" ([`{notebook}`](../notebooks/{notebook}))" if notebook else ""
    parts = [f'<a id="lesson-{number:02d}"></a>\n\n## Lesson {number:02d}{where}']
    for n, exercise in exercises.items():
        hints = "\n".join(f"{i}. {hint}" for i, hint in enumerate(exercise.hints, 1))
        parts.append(
            f"### Lesson {number:02d}, exercise {n}\n\n"
            f"**Question**, as the notebook states it:\n\n{quoted(exercise.question)}\n\n"
            f"**Hints** (`hint({n})`, one per call):\n\n{hints}\n\n"
            f"**`answer({n})` prints:**\n\n{fenced(printed(lesson.answer, n))}"
        )
    return "\n\n".join(parts)


def generate() -> str:
    """The whole answer key, as markdown."""
    numbers = lesson_numbers()
    contents = "\n".join(
        f"* [Lesson {n:02d}](#lesson-{n:02d}): {len(exercises_in(n))} exercises" for n in numbers
    )
    sections = "\n\n".join(lesson_section(n) for n in numbers)
    return f"{HEADER}\n{contents}\n\n{sections}\n"


def main(argv: list[str]) -> int:
    fresh = generate()
    if argv == ["--check"]:
        current = KEY.read_text(encoding="utf-8") if KEY.exists() else ""
        if current != fresh:
            print(f"{KEY.relative_to(ROOT)} is stale: run python -m labkit.exercises.key")
            return 1
        print(f"{KEY.relative_to(ROOT)} is up to date")
        return 0
    if argv:
        print(__doc__)
        return 2
    KEY.write_text(fresh, encoding="utf-8")
    print(f"wrote {KEY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
