"""labkit.exercises.reading: a written answer is read every way a student may mean it."""

import datetime
from fractions import Fraction

import pytest

from labkit.exercises.reading import (
    chosen_option,
    first_reading,
    labels_in,
    parts_of,
    readings,
)


@pytest.mark.parametrize(
    "answer,unit,expected",
    [
        (0.6, "s", [0.6]),
        ("0.6 s", "s", [0.6]),
        ("0.6s", "s", [0.6]),
        ("600 ms", "s", [0.6]),
        ("0.15 s", "ms", [150.0]),
        ("about 150 milliseconds", "ms", [150.0]),
        ("500 µs", "ms", [0.5]),
        ("2 min", "s", [120.0]),
        ("25 each (100 / 4)", None, [25.0, 100.0, 4.0, 25.0]),
        ("1,024 - 75 = 949 bytes", None, [1024.0, 75.0, 949.0, 949.0]),
        ("10,000", None, [10000.0]),
        ("10_000", None, [10000.0]),
        (".5", None, [0.5]),
        ("1e3", None, [1000.0]),
        (Fraction(1, 2), None, [0.5]),
        (datetime.timedelta(milliseconds=600), "s", [0.6]),
        ([0.6], "s", [0.6]),
        (b"949", None, [949.0]),
    ],
)
def test_readings(answer, unit, expected):
    assert readings(answer, unit) == pytest.approx(expected)


def test_the_result_of_a_sentence_is_among_its_readings():
    """Lesson 09 read the first number and lesson 11 the last: both missed these."""
    assert 0.6 in readings("3 rounds × 0.2 = 0.6", "s")
    assert 25 in readings("25 each (100 / 4)")
    assert 0.6 == pytest.approx(readings("3 * 0.2", "s")[-1])  # worked out, unit kept


def test_words_after_a_number_are_not_units_unless_they_are_units_of_time():
    assert readings("3 sockets", "ms") == [3.0]  # not 3 s
    assert readings("42 requests/s", "ms") == [42.0]  # a rate, not seconds
    assert readings("50 users", "ms") == [50.0]  # "us" only as a word of its own


def test_what_is_not_a_number():
    assert readings(True) == [] and readings(None) == []
    assert readings("six") == [] and readings("A0 B0") == []
    assert readings("9**9**9") == [9.0, 9.0, 9.0]  # no powers: it would never end
    assert readings("1 / 0") == [1.0, 0.0]


def test_first_reading():
    assert first_reading("3 rounds x 0.2 = 0.6", lambda s: abs(s - 0.6) < 0.01, "s") == 0.6
    assert first_reading("0.2", lambda s: abs(s - 0.6) < 0.01, "s") is None


@pytest.mark.parametrize(
    "answer,parts",
    [
        ((0.9, 0.3), [0.9, 0.3]),
        ("(0.9, 0.3)", ["0.9", "0.3"]),
        ("a=20, b=40", ["a=20", "b=40"]),
        ("a = 20; b = 2 * 20 = 40", ["a = 20", "b = 2 * 20 = 40"]),
        ("0.9 s blocking and 0.3 s cooperative", ["0.9 s blocking", "0.3 s cooperative"]),
        ("20 40", ["20", "40"]),
        ({"a": 20, "b": 40}, [20, 40]),
        ("1,000, 2,000", ["1,000", "2,000"]),
        (40, None),
        ("20, 40, 60", None),
    ],
)
def test_parts_of_a_pair(answer, parts):
    assert parts_of(answer, 2) == parts


def test_labels_in_order():
    pattern = r"\b[a-z]\d+\b"
    assert labels_in("A0 → B0 → C0, a1", pattern) == ["A0", "B0", "C0", "a1"]
    assert labels_in("The order is A0, B0 and A1.", pattern) == ["A0", "B0", "A1"]
    assert labels_in(("A0", "B0"), pattern) == ["A0", "B0"]


OPTIONS = {"a": "nothing", "b": "threadpool", "c": "process pool"}


@pytest.mark.parametrize(
    "answer,letter",
    [
        ("c", "c"),
        ("(C)", "c"),
        ("c) a process pool", "c"),
        ("c, a process pool", "c"),
        ("C. a process pool", "c"),
        ("the answer is c", "c"),
        ("answer: b", "b"),
        ("I'd pick (c)", "c"),
        ("a process pool", "c"),  # the option's words, and "a" is an article here
        ("The answer is a process pool", "c"),
        ("gevent's threadpool", "b"),
        ("b or c", None),  # two of them
        ("(b) not (c)", None),
        ("d", None),
        ("", None),
    ],
)
def test_chosen_option(answer, letter):
    assert chosen_option(answer, OPTIONS) == letter
