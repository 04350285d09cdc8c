"""Every exercise accepts right answers in every style (its worked solution, the other styles
of tests/exercise_answers/, the answers of tests/independent_answers.py written from the
question alone) and rejects wrong ones with advice; its worked answer shows code that passes
its own check; the exercise modules hold questions, hints, checkers and worked answers only."""

import ast
import importlib
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from independent_answers import ANSWERS

from labkit import exercises
from labkit.exercises import lesson

ALL = [(n, k) for n in exercises.LESSONS for k in exercises.exercises_of(n)]


@pytest.mark.parametrize("number,k", ALL)
def test_worked_solution_passes(number, k, capsys):
    chosen = exercises.Lesson(number, exercises.exercises_of(number))
    assert chosen.passed(k, chosen.exercises[k].solution())
    assert f"Exercise {k}: correct!" in capsys.readouterr().out


def answers_of(number: int) -> ModuleType:
    """tests/exercise_answers/lessonNN.py: CORRECT and WRONG answers, kept apart from the
    checkers they test."""
    return importlib.import_module(f"exercise_answers.lesson{number:02d}")


def right_answers(number: int, k: int) -> dict[str, Callable[[], object]]:
    """Every right answer the tests hold for exercise ``k``, by style: the worked
    solution, the lesson's list of other styles, and the answers written from the question
    alone (tests/independent_answers.py)."""
    return {
        "the worked solution": exercises.exercises_of(number)[k].solution,
        **answers_of(number).CORRECT.get(k, {}),
        **{f"{style} (independent)": make for style, make in ANSWERS.get((number, k), {}).items()},
    }


@pytest.mark.parametrize("number,k", ALL)
def test_right_answers_in_every_style_pass(number, k, capsys):
    """A checker that accepts only the reference's way of writing it is a wrong checker."""
    chosen = exercises.Lesson(number, exercises.exercises_of(number))
    refused = []
    for style, make in right_answers(number, k).items():
        if not chosen.passed(k, make()):
            refused.append(f"{style}: {capsys.readouterr().out.strip()}")
    capsys.readouterr()
    assert not refused, f"lesson {number} exercise {k} refused right answers:\n" + "\n".join(
        refused
    )


@pytest.mark.parametrize("number,k", ALL)
def test_every_exercise_has_three_styles_and_an_independent_answer(number, k):
    styles = right_answers(number, k)
    assert len(styles) >= 3 + 1, f"lesson {number} exercise {k}: {sorted(styles)}"
    assert len(answers_of(number).CORRECT.get(k, {})) >= 2, "two other styles in the lesson's list"
    assert ANSWERS.get((number, k)), "an answer written from the question alone"


@pytest.mark.parametrize("number,k", ALL)
def test_listed_wrong_answers_fail(number, k, capsys):
    chosen = exercises.Lesson(number, exercises.exercises_of(number))
    for mistake, make in answers_of(number).WRONG[k].items():
        assert not chosen.passed(k, make()), f"{mistake} passed"
        out = capsys.readouterr().out
        assert out.startswith(f"Exercise {k}: not yet.") and len(out) > 40, (mistake, out)


def test_answers_are_listed_only_for_exercises_that_exist():
    for number in exercises.LESSONS:
        held = set(exercises.exercises_of(number))
        module = answers_of(number)
        assert set(module.CORRECT) <= held and set(module.WRONG) <= held, number
    assert {n for n, _ in ANSWERS} <= set(exercises.LESSONS)
    assert set(ANSWERS) <= set(ALL)


@pytest.mark.parametrize("number,k", ALL)
def test_placeholder_is_not_an_answer(number, k, capsys):
    chosen = exercises.Lesson(number, exercises.exercises_of(number))
    assert not chosen.passed(k, ...)
    assert "no answer yet" in capsys.readouterr().out


def test_every_exercise_lists_wrong_answers():
    missing = [(n, k) for n, k in ALL if not answers_of(n).WRONG.get(k)]
    assert not missing, f"exercises with no wrong answers to reject: {missing}"


def test_a_class_template_is_not_an_answer(capsys):
    class Replies:
        def feed(self, chunk): ...  # your code here

    chosen = exercises.Lesson(8, exercises.exercises_of(8))
    assert not chosen.passed(5, Replies)
    assert "no answer yet" in capsys.readouterr().out


def test_placeholders_in_any_layout_are_not_answers(capsys):
    """The notebook's templates, as written and as ``ruff format`` rewrites them."""

    def on_its_own_line():
        pass  # your code here

    def with_a_docstring():
        """Your code here."""
        ...  # noqa: PIE790 (the placeholder under test)

    def on_the_def_line(): ...  # your code here

    async def a_coroutine(): ...

    def a_real_answer():
        return ...

    _, check, _ = lesson(1)
    for placeholder in (on_its_own_line, with_a_docstring, on_the_def_line, a_coroutine):
        check(1, placeholder)
        assert "no answer yet" in capsys.readouterr().out, placeholder.__name__
    check(1, a_real_answer)
    assert "not yet" in capsys.readouterr().out


def test_wrong_coroutine_logic_is_explained(capsys):
    def running_min():
        best = None
        while True:
            value = yield best
            best = value if best is None else min(best, value)

    hint, check, answer = lesson(1)
    check(1, running_min)
    assert "expected" in capsys.readouterr().out


def test_answer_that_raises_is_reported_not_raised(capsys):
    def broken():
        yield 1 / 0

    _, check, _ = lesson(1)
    check(1, broken)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_hints_come_one_at_a_time(capsys):
    hint, _, _ = lesson(1)
    hint(1)
    hint(1)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Hint 1/") and out[1].startswith("Hint 2/")


def test_unknown_exercise_or_lesson():
    hint, _, _ = lesson(1)
    with pytest.raises(ValueError, match="has exercises"):
        hint(9)
    with pytest.raises(ValueError, match="no exercises for lesson"):
        lesson(99)


# -- every exercise is complete, and answer(n) shows a solution that passes its own check --------
@pytest.mark.parametrize("number,k", ALL)
def test_every_exercise_has_question_hints_checker_solution_and_answer(number, k):
    ex = exercises.exercises_of(number)[k]
    assert ex.question.strip(), "no question"
    assert ex.hints and all(h.strip() for h in ex.hints), "no hint"
    assert callable(ex.checker), "no checker"
    assert f"check({k}, " in ex.answer, "the worked solution must end by checking its answer"
    assert len(ex.why.split()) >= 12 and ex.why.rstrip().endswith("."), "say why, in a sentence"
    assert ex.solution() is not None


def shown_code(out: str, k: int) -> str:
    """The code that answer(k) printed: between its heading and "Why it is right"."""
    head = f"Exercise {k}, a worked solution:\n\n"
    assert out.startswith(head), out
    code, sep, _ = out[len(head) :].partition("\n\nWhy it is right: ")
    assert sep, out
    return code


@pytest.mark.parametrize("number,k", ALL)
def test_answer_shows_code_and_why(number, k, capsys):
    _, _, answer = chosen = lesson(number)
    assert capsys.readouterr().out == "", "lesson(n) must not print (no spoilers on the page)"
    answer(k)
    out = capsys.readouterr().out
    ex = chosen.exercises[k]
    assert shown_code(out, k) == ex.answer
    why = out.partition("Why it is right: ")[2]
    assert " ".join(why.split()) == ex.why
    assert all(len(line) <= 100 for line in out.splitlines()), "keep it readable in a notebook"


@pytest.mark.parametrize("number,k", ALL)
def test_the_shown_solution_passes_its_check(number, k, capsys):
    """Run exactly the code answer(k) printed, with the real check: the shown solution cannot
    drift from the checker."""
    chosen = lesson(number)
    chosen.answer(k)
    code = shown_code(capsys.readouterr().out, k)
    verdicts = []
    namespace = {
        **chosen.exercises[k].lesson_names,
        "check": lambda n, answer: verdicts.append((n, chosen.passed(n, answer))),
    }
    exec(compile(code, f"<answer({k}) of lesson {number}>", "exec"), namespace)
    assert verdicts == [(k, True)], capsys.readouterr().out
    assert f"Exercise {k}: correct!" in capsys.readouterr().out


@pytest.mark.parametrize("number,k", ALL)
def test_written_solutions_are_the_modules_own_code(number, k):
    """When the exercise asks for a function or class, the worked solution shows the module's
    reference (its source, by inspect): the very object the checker's own tests run."""
    ex = exercises.exercises_of(number)[k]
    if not re.search(r"\bWrite (a class )?`", ex.question):
        return
    module = importlib.import_module(f"labkit.exercises.lesson{number:02d}")
    checked = re.search(rf"^check\({k}, (\w+)\)$", ex.answer, re.MULTILINE)
    assert checked, ex.answer
    assert inspect.getsource(getattr(module, checked[1])).strip() in ex.answer


def test_answer_to_an_unknown_exercise_lists_the_valid_ones():
    _, _, answer = lesson(8)
    with pytest.raises(ValueError, match=r"lesson 08 has exercises 1, 2, 3, 4, 5, not 99"):
        answer(99)


def test_question_prints_the_question(capsys):
    chosen = lesson(2)
    chosen.question(2)
    out = capsys.readouterr().out
    assert out.startswith("Exercise 2. What are `a` and `b`?")
    assert "b = g.switch(a)" in out


def test_a_solution_must_check_exactly_once():
    ex = exercises.exercises_of(4)[1]
    ex.answer = "x = 3.0"
    with pytest.raises(RuntimeError, match="calls check once, not 0 times"):
        ex.solution()


# -- the exercise modules hold the course, not its test data --------------------------------
EXERCISE_MODULES = sorted((Path(exercises.__file__).parent).glob("*.py"))


@pytest.mark.parametrize("path", EXERCISE_MODULES, ids=lambda p: p.name)
def test_no_function_over_60_lines_but_the_tables(path):
    """exercises() is the table of questions; every other function stays short."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name != "exercises"
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, long


@pytest.mark.parametrize("path", EXERCISE_MODULES, ids=lambda p: p.name)
def test_no_test_answers_in_the_package(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\b(also_correct|wrong)\s*=", text), "test answers go in tests/"
    assert not re.search(r'"""(Also right|Wrong)\b|# wrong:', text), "test answers go in tests/"
