"""How a checker reads a written answer: every way a student may write the right one.

A numeric answer may be a number, a string with a unit, or a sentence that works it out::

    readings("0.6 s", "s")                      # [0.6]
    readings("600 ms", "s")                     # [0.6]: a unit written is a unit meant
    readings("3 rounds × 0.2 = 0.6", "s")       # [3.0, 0.2, 0.6]: 0.6 is among them
    readings("25 each (100 / 4)")               # [25.0, 100.0, 4.0, 25.0]
    readings(42.0)                              # [42.0]

A checker accepts the answer when any reading is right, and rejects it only when none is:
it cannot know which number of a sentence is the result. A number without a unit is taken
in the unit the question asks for; a unit of time written beside a number (``ms``, ``s``,
``µs``, ``min``) converts it. Other words after a number (bytes, users, requests/s) are
left alone.

Ordered answers (``labels_in``), pairs (``parts_of``) and multiple choice (``chosen_option``,
``choice_advice``) are read here too. Nothing here raises: the checker decides what to say.
"""

from __future__ import annotations

import ast
import datetime
import numbers
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "readings",
    "first_reading",
    "parts_of",
    "labels_in",
    "chosen_option",
    "choice_advice",
    "close_to",
]

#: seconds per unit of time, by every name a student may write it with
SECONDS = {
    **dict.fromkeys(["s", "sec", "secs", "second", "seconds"], 1.0),
    **dict.fromkeys(["ms", "msec", "msecs", "millisecond", "milliseconds"], 1e-3),
    **dict.fromkeys(["µs", "μs", "us", "microsecond", "microseconds"], 1e-6),
    **dict.fromkeys(["min", "mins", "minute", "minutes"], 60.0),
}
_UNIT = re.compile(
    r"\s*(" + "|".join(sorted(map(re.escape, SECONDS), key=len, reverse=True)) + r")(?![^\W\d_])",
    re.IGNORECASE,
)
# 42, -3, 0.6, .5, 1e3, and 10,000 or 10_000 (groups of three digits after a separator)
_NUMBER = re.compile(
    r"(?<![\w.])[-−]?(?:(?:\d{1,3}(?:[,_]\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
)
# a run of numbers, operators and brackets that may be arithmetic: 100 / 4, (1,024 - 75)
_ARITHMETIC = re.compile(r"[\d.,_()+\-−*/×÷·xX ]*\d[\d.,_()+\-−*/×÷·xX ]*")
_OPERATORS = str.maketrans({"×": "*", "·": "*", "x": "*", "X": "*", "÷": "/", "−": "-"})


def readings(answer: Any, unit: str | None = None) -> list[float]:
    """Every value ``answer`` can be read as, in ``unit`` (a key of SECONDS, or None for a
    count), in the order written. Empty when it holds no number at all."""
    return [value * _scale(written, unit) for value, written in _quantities(answer)]


def first_reading(answer: Any, right: Any, unit: str | None = None) -> float | None:
    """The first reading of ``answer`` for which ``right(value)`` is true, or None."""
    return next((value for value in readings(answer, unit) if right(value)), None)


def _scale(written: str | None, unit: str | None) -> float:
    if written is None or unit is None:
        return 1.0
    return SECONDS[written.lower()] / SECONDS[unit]


def _quantities(answer: Any) -> Iterator[tuple[float, str | None]]:
    """(value, unit written or None) for each number in ``answer``."""
    if isinstance(answer, bool) or answer is None:
        return  # True is not a number of seconds
    if isinstance(answer, datetime.timedelta):
        yield answer.total_seconds(), "s"
    elif isinstance(answer, numbers.Real):
        yield float(answer), None
    elif isinstance(answer, str):
        yield from _in_text(answer)
    elif isinstance(answer, bytes | bytearray):
        yield from _in_text(answer.decode(errors="replace"))
    elif isinstance(answer, Sequence | set | frozenset):
        for item in answer:
            yield from _quantities(item)
    else:
        try:
            yield float(answer), None  # numpy numbers, Decimal
        except (TypeError, ValueError):
            yield from _in_text(str(answer))


def _in_text(text: str) -> Iterator[tuple[float, str | None]]:
    """Each number written in ``text``, then the value of each arithmetic in it."""
    for match in _NUMBER.finditer(text):
        yield _number(match[0]), _unit_at(text, match.end())
    for match in _ARITHMETIC.finditer(text):
        value = _evaluated(match[0])
        if value is not None:
            yield value, _unit_at(text, match.end())


def _number(written: str) -> float:
    return float(written.replace("−", "-").replace(",", "").replace("_", ""))


def _unit_at(text: str, at: int) -> str | None:
    found = _UNIT.match(text, at)
    return found[1] if found else None


def _evaluated(span: str) -> float | None:
    """The value of ``span`` if it is arithmetic with at least one operator, else None."""
    source = re.sub(r"(?<=\d)[,_](?=\d{3}(?!\d))", "", span).translate(_OPERATORS).strip()
    source = source.strip(",").strip()
    while source.count("(") > source.count(")") and source.startswith("("):
        source = source[1:]  # "(100 / 4" of "25 each (100 / 4": an opening left outside
    while source.count(")") > source.count("(") and source.endswith(")"):
        source = source[:-1]
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return None
    if not isinstance(tree.body, ast.BinOp | ast.UnaryOp):
        return None  # a lone number is read already
    try:
        return _arithmetic(tree.body)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _arithmetic(node: ast.expr) -> float:
    """+ - * / // of numbers only (no powers: 9**9**9 would never end)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _arithmetic(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _arithmetic(node.left), _arithmetic(node.right)
        operations = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}
        if type(node.op) in operations:
            return operations[type(node.op)]
        if isinstance(node.op, ast.Div):
            return left / right
        if isinstance(node.op, ast.FloorDiv):
            return float(left // right)
    raise ValueError("not arithmetic")


def parts_of(answer: Any, count: int = 2) -> list[Any] | None:
    """An answer of ``count`` values as its ``count`` parts, each to be read on its own:
    (0.9, 0.3), ["0.9 s", "300 ms"], {"a": 20, "b": 40}, "(0.9, 0.3)", "a = 20; b = 2 * 20 = 40",
    "0.9 and 0.3", "20 40". None when it does not come in ``count`` parts."""
    if isinstance(answer, str):
        text = answer.strip().strip("()[]{}").strip()
        pieces = [p for p in re.split(r"\s*(?:[;\n]|,(?!\d{3})|\band\b|\bthen\b)\s*", text) if p]
        if len(pieces) == count:
            return pieces
        found = [m[0] for m in _NUMBER.finditer(text)]
        return found if len(found) == count else None
    if isinstance(answer, Mapping):  # {"a": 20, "b": 40}: its values, in order
        answer = list(answer.values())
    if isinstance(answer, Sequence) and len(answer) == count:
        return list(answer)
    return None


def labels_in(answer: Any, pattern: str) -> list[str]:
    """The labels an ordered answer names, in order: every match of ``pattern`` (ignoring
    case) in "A0 B0 C0", "A0, B0, C0", "A0 → B0 → C0" or a sentence; or each item of a list."""
    if isinstance(answer, str):
        return re.findall(pattern, answer, re.IGNORECASE)
    try:
        return [str(item) for item in answer]
    except TypeError:
        return re.findall(pattern, str(answer), re.IGNORECASE)


def close_to(answer: float, expected: float, tolerance: float) -> bool:
    """Within ``tolerance`` (a fraction, 0.1 is 10 %) of ``expected``."""
    return abs(float(answer) - expected) <= tolerance * expected


def chosen_option(answer: Any, options: dict[str, str]) -> str | None:
    """The letter of a multiple-choice answer, or None when it names none or several.

    A letter counts where it is plainly a letter: "b", "(B)", "b) because ...", "b: ...",
    "(b)" anywhere, "answer b", "option (b)". Without one, a sentence may name exactly one
    option by its own words (``options`` maps each letter to words of it, in lower case)."""
    text = str(answer).strip().lower()
    letters = set(options)
    said = {
        m[1]
        for pattern in (
            r"^\(?([a-z])\s*(?:[):.,;]|$)",  # "b", "b)", "(b)", "b: ..." (not "a process")
            r"\(([a-z])\)",  # "(b)" anywhere
            r"\b(?:answer|option|choice)(?:\s+is)?\s*:?\s*\(?([a-z])(?:\)|(?=[.,:;]|\s*$))",
        )
        for m in re.finditer(pattern, text)
    }
    if said:
        return said.pop() if len(said) == 1 and said <= letters else None
    named = [letter for letter, words in options.items() if words in text]
    return named[0] if len(named) == 1 else None


def choice_advice(
    answer: Any, options: dict[str, str], right: str, advice: str | Mapping[str | None, str]
) -> str | None:
    """What to tell a multiple-choice answer: None when it chooses ``right``, else ``advice``.

    ``advice`` is one text for every other answer, or a text for each wrong letter, with key
    None for an answer that names none or several (``chosen_option`` reads it)."""
    letter = chosen_option(answer, options)
    if letter == right:
        return None
    return advice if isinstance(advice, str) else advice[letter]
