"""Each question lives once, in labkit/exercises/lessonNN.py: the lesson's notebook states
exactly that text, and its exercise section uses the same hint/check/answer API as every other
lesson."""

import difflib
import re
import sys
from pathlib import Path

import pytest

from labkit import exercises

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))
import build  # noqa: E402

HEADING = re.compile(r"\*\*Exercise (\d+)\.\*\*\s*")


def source_of(number: int) -> Path:
    (source,) = (NOTEBOOKS / "src").glob(f"{number:02d}_*.py")
    return source


def exercise_section(number: int) -> list[tuple[str, str]]:
    """The cells from the lesson's "## Exercises" heading to the end, as the notebook has them."""
    cells = build.parse(source_of(number).read_text(encoding="utf-8"))
    starts = [
        (i, m.start())
        for i, (kind, body) in enumerate(cells)
        if kind == "markdown" and (m := re.search(r"^## Exercises$", body, re.MULTILINE))
    ]
    assert len(starts) == 1, f"lesson {number:02d}: one '## Exercises' heading"
    ((i, at),) = starts  # the heading may close the summary's cell
    return [("markdown", cells[i][1][at:]), *cells[i + 1 :]]


def notebook_questions(number: int) -> dict[int, str]:
    """{n: the markdown after "**Exercise n.**"} for each exercise cell of the notebook."""
    found: dict[int, str] = {}
    for kind, body in exercise_section(number):
        if kind == "markdown" and (m := HEADING.match(body)):
            assert int(m[1]) not in found, f"exercise {m[1]} stated twice"
            found[int(m[1])] = body[m.end() :]
    return found


def words(markdown: str) -> list[str]:
    """The words of a question: line breaks and runs of spaces are layout, not text."""
    return markdown.split()


@pytest.mark.parametrize("number", exercises.LESSONS)
def test_notebook_states_each_question_of_the_module(number):
    held = exercises.exercises_of(number)
    stated = notebook_questions(number)
    assert sorted(stated) == sorted(held), (
        f"lesson {number:02d}: the notebook states exercises {sorted(stated)}, "
        f"labkit/exercises/lesson{number:02d}.py holds {sorted(held)}"
    )
    for k, question in held.items():
        if words(stated[k]) != words(question.question):
            diff = "\n".join(
                difflib.unified_diff(
                    words(question.question),
                    words(stated[k]),
                    "module",
                    "notebook",
                    lineterm="",
                    n=2,
                )
            )
            pytest.fail(
                f"lesson {number:02d} exercise {k}: the notebook and "
                f"labkit/exercises/lesson{number:02d}.py state it differently:\n{diff}"
            )


def test_words_ignore_layout_only():
    assert words("a `b`\n  c") == words("a `b` c")
    assert words("a `b` c") != words("a b c")


@pytest.mark.parametrize("number", exercises.LESSONS)
def test_exercise_section_uses_hint_check_answer(number):
    section = exercise_section(number)
    code = [body for kind, body in section if kind == "code"]
    prose = " ".join(" ".join(body.split()) for kind, body in section if kind == "markdown")
    assert code[0] == f"from labkit.exercises import lesson\nhint, check, answer = lesson({number})"
    assert "`answer(n)` shows a worked solution" in prose
    for k in exercises.exercises_of(number):
        assert any(re.search(rf"^check\({k}, ", body, re.MULTILINE) for body in code), (
            f"lesson {number:02d}: no cell checks exercise {k}"
        )


@pytest.mark.parametrize("number", exercises.LESSONS)
def test_no_cell_calls_answer(number):
    """answer(n) is the student's to call: a notebook that calls it spoils its own page."""
    for kind, body in exercise_section(number):
        assert kind == "markdown" or not re.search(r"^\s*answer\(", body, re.MULTILINE), body
