"""Every exercise accepts its reference answer and rejects wrong ones with advice."""
import pytest

from labkit import exercises
from labkit.exercises import lesson

ALL = [(n, k) for n in exercises.LESSONS for k in exercises.exercises_of(n)]


@pytest.mark.parametrize("number,k", ALL)
def test_reference_answer_passes(number, k, capsys):
    chosen = exercises.Lesson(number, exercises.exercises_of(number))
    assert chosen.passed(k, chosen.exercises[k].solution())
    assert f"Exercise {k}: correct!" in capsys.readouterr().out


@pytest.mark.parametrize("number,k", ALL)
def test_other_correct_answers_pass(number, k, capsys):
    """A checker that accepts only the reference's way of writing it is a wrong checker."""
    chosen = exercises.Lesson(number, exercises.exercises_of(number))
    others = chosen.exercises[k].also_correct
    assert len(others) >= 2, f"lesson {number} exercise {k}: give two other correct answers"
    for make in others:
        assert chosen.passed(k, make()), capsys.readouterr().out
    capsys.readouterr()


@pytest.mark.parametrize("number,k", ALL)
def test_listed_wrong_answers_fail(number, k, capsys):
    chosen = exercises.Lesson(number, exercises.exercises_of(number))
    for make in chosen.exercises[k].wrong:
        assert not chosen.passed(k, make())
        out = capsys.readouterr().out
        assert out.startswith(f"Exercise {k}: not yet.") and len(out) > 40, out


@pytest.mark.parametrize("number,k", ALL)
def test_placeholder_is_not_an_answer(number, k, capsys):
    chosen = exercises.Lesson(number, exercises.exercises_of(number))
    assert not chosen.passed(k, ...)
    assert "no answer yet" in capsys.readouterr().out


def test_every_exercise_lists_wrong_answers():
    missing = [(n, k) for n, k in ALL if not exercises.exercises_of(n)[k].wrong]
    assert not missing, f"exercises with no wrong answers to reject: {missing}"


def test_a_class_template_is_not_an_answer(capsys):
    class Replies:
        def feed(self, chunk):
            ...   # your code here
    chosen = exercises.Lesson(8, exercises.exercises_of(8))
    assert not chosen.passed(5, Replies)
    assert "no answer yet" in capsys.readouterr().out


def test_wrong_coroutine_logic_is_explained(capsys):
    def running_min():
        best = None
        while True:
            value = yield best
            best = value if best is None else min(best, value)
    hint, check = lesson(1)
    check(1, running_min)
    assert "expected" in capsys.readouterr().out


def test_answer_that_raises_is_reported_not_raised(capsys):
    def broken():
        yield 1 / 0
    _, check = lesson(1)
    check(1, broken)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_hints_come_one_at_a_time(capsys):
    hint, _ = lesson(1)
    hint(1)
    hint(1)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Hint 1/") and out[1].startswith("Hint 2/")


def test_unknown_exercise_or_lesson():
    hint, _ = lesson(1)
    with pytest.raises(ValueError, match="has exercises"):
        hint(9)
    with pytest.raises(ValueError, match="no exercises for lesson"):
        lesson(99)
