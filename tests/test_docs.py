"""The instructors' documents cannot drift from the course.

* every exercise of every ``labkit/exercises/lessonNN.py`` has a worked answer and a why;
* ``docs/instructors.md`` has a section for every notebook in ``notebooks/``;
* ``docs/answer-key.md`` is exactly what ``python -m labkit.exercises.key`` writes now;
* the README and lesson 00 link the guide and the glossary;
* the guide's minutes are what ``docs/lesson_minutes.py`` computes now, and each lesson's
  "Time:" line and "Sitting k of m (about N minutes)" headings say the same minutes.
"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from labkit.exercises import Exercise, key

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDE = DOCS / "instructors.md"
NOTEBOOKS = ROOT / "notebooks"
LESSON_00 = NOTEBOOKS / "src" / "00_start_here.py"

_spec = importlib.util.spec_from_file_location("lesson_minutes", DOCS / "lesson_minutes.py")
assert _spec and _spec.loader
minutes = importlib.util.module_from_spec(_spec)
sys.modules["lesson_minutes"] = minutes  # dataclasses look their module up there
_spec.loader.exec_module(minutes)


# -- the checks, as functions of what they read, so that each can be shown to fail ----------------
def missing_answers(exercises: dict[int, Exercise]) -> list[int]:
    """Exercises without a worked solution that calls ``check(n, ...)``, or without a why."""
    return [
        n
        for n, ex in exercises.items()
        if not re.search(rf"^\s*check\({n}, ", ex.answer, re.MULTILINE) or not ex.why.strip()
    ]


def missing_sections(guide: str, notebooks: list[str]) -> list[str]:
    """Notebooks (``NN_name``) without a ``## Lesson NN`` section in the guide."""
    return [nb for nb in notebooks if not re.search(rf"^## Lesson {nb[:2]}\b", guide, re.MULTILINE)]


def missing_links(text: str, targets: list[str]) -> list[str]:
    """Targets not linked from a markdown text (``](…target)``)."""
    return [t for t in targets if not re.search(rf"\]\([^)]*{re.escape(t)}(#[^)]*)?\)", text)]


def disagreements(source_text: str, parts: list) -> list[str]:
    """Where a lesson's Time line or sitting headings differ from the measured minutes."""
    found = []
    want = minutes.time_line(parts)
    have = re.search(r"^# \*\*Time:\*\*.*$", source_text, re.MULTILINE)
    if not have or have[0] != f"# {want}":
        found.append(f"Time line {have[0] if have else None!r}, measured {want!r}")
    markdown = "\n".join(line.removeprefix("# ") for line in source_text.splitlines())
    stated = {f"{m[1]} of {m[2]}": int(m[3]) for m in minutes.SITTING_HEADING.finditer(markdown)}
    measured = {p.sitting: p.minutes for p in parts if p.sitting and not p.sitting.startswith("1 ")}
    if stated != measured:
        found.append(f"sitting headings say {stated}, measured {measured}")
    return found


def notebook_names() -> list[str]:
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


# -- the tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", key.lesson_numbers())
def test_every_exercise_has_an_answer(number):
    exercises = key.exercises_in(number)
    assert exercises, f"labkit/exercises/lesson{number:02d}.py has no exercises"
    assert not missing_answers(exercises), (
        f"lesson {number:02d}: exercises without a worked answer or a why: "
        f"{missing_answers(exercises)}"
    )


def test_the_guide_has_a_section_for_every_notebook():
    assert not missing_sections(GUIDE.read_text(encoding="utf-8"), notebook_names())


def test_the_answer_key_is_fresh():
    assert (DOCS / "answer-key.md").read_text(encoding="utf-8") == key.generate(), (
        "docs/answer-key.md is stale: run `python -m labkit.exercises.key`"
    )


def test_readme_and_lesson_00_link_the_guide_and_glossary():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not missing_links(readme, ["docs/instructors.md", "docs/glossary.md"])
    assert not missing_links(readme, ["docs/answer-key.md"])
    lesson_00 = LESSON_00.read_text(encoding="utf-8").replace("\n# ", "\n")
    assert not missing_links(lesson_00, ["../docs/instructors.md", "../docs/glossary.md"])


def test_the_guide_shows_the_minutes_measured_now():
    guide = GUIDE.read_text(encoding="utf-8")
    assert guide == minutes.with_minutes(guide), (
        "docs/instructors.md's minutes are stale: run `python docs/lesson_minutes.py --guide`"
    )


@pytest.mark.parametrize("source", minutes.sources(), ids=lambda p: p.stem)
def test_each_lesson_states_the_minutes_of_the_guide(source):
    parts = minutes.measure(source, minutes.load_seconds())
    assert not disagreements(source.read_text(encoding="utf-8"), parts), (
        f"{source.name}: {disagreements(source.read_text(encoding='utf-8'), parts)}; "
        "write what `python docs/lesson_minutes.py` says"
    )


def too_long(parts: list) -> list[str]:
    """A lesson over SPLIT_ABOVE minutes in one piece, or a sitting over SITTING minutes."""
    if len(parts) == 1:
        p = parts[0]
        return (
            [f"{p.lesson}: {p.minutes} min in one sitting"]
            if p.minutes > minutes.SPLIT_ABOVE
            else []
        )
    return [
        f"{p.lesson} {p.sitting}: {p.minutes} min" for p in parts if p.minutes > minutes.SITTING
    ]


@pytest.mark.parametrize("source", minutes.sources(), ids=lambda p: p.stem)
def test_every_sitting_fits_in_one_sitting(source):
    parts = minutes.measure(source, minutes.load_seconds())
    assert not too_long(parts), (
        f"split the lesson into sittings of at most {minutes.SITTING} minutes: {too_long(parts)}"
    )


def test_the_checks_can_fail():
    from labkit.exercises import lesson01

    exercises = lesson01.exercises()
    assert missing_answers(exercises) == []
    exercises[1].answer = "def running_max():\n    ..."  # no check(1, ...) at the end
    exercises[2].why = " "
    assert missing_answers(exercises) == [1, 2]

    guide = "# Guide\n\n## Lesson 00 · Start here\n\n## Lesson 01 · Coroutines\n"
    assert missing_sections(guide, ["00_start_here", "01_coroutines"]) == []
    assert missing_sections(guide, ["00_start_here", "02_greenlet"]) == ["02_greenlet"]

    text = "See the [guide](docs/instructors.md#lesson-05) and docs/glossary.md."
    assert missing_links(text, ["docs/instructors.md"]) == []
    assert missing_links(text, ["docs/glossary.md"]) == ["docs/glossary.md"]

    source = next(s for s in minutes.sources() if s.stem.startswith("05"))
    parts = minutes.measure(source, minutes.load_seconds())
    good = source.read_text(encoding="utf-8")
    wrong_time = re.sub(r"(\*\*Time:\*\* about )(\d+)", lambda m: f"{m[1]}{int(m[2]) + 5}", good)
    assert disagreements(wrong_time, parts)
    wrong_sitting = re.sub(r"(## Sitting 2 of 2 \(about )(\d+)", r"\g<1>999", good)
    assert wrong_sitting != good and disagreements(wrong_sitting, parts)

    guide = GUIDE.read_text(encoding="utf-8")
    stale = re.sub(r"(\*\*Minutes:\*\* )\d+", r"\g<1>999", guide, count=1)
    assert stale != guide and minutes.with_minutes(stale) != stale
    stale_table = guide.replace("| 00_start_here | whole |", "| 00_start_here | half |", 1)
    assert stale_table != guide and minutes.with_minutes(stale_table) != stale_table

    one_piece = [minutes.Part("99_long", "", words=150 * 60)]  # an hour of reading
    assert too_long(one_piece) and not too_long([minutes.Part("99_short", "", words=150)])
    sittings = [minutes.Part("99_x", "1 of 2", words=150 * 50), minutes.Part("99_x", "2 of 2")]
    assert too_long(sittings) == ["99_x 1 of 2: 50 min"]
