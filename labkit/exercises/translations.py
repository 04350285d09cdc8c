"""The exercises in other languages: the same checkers, the texts read from data files.

A lesson's Chinese texts live beside its translation, in
``notebooks/src/zh/exercises/lessonNN.toml``, one table per exercise::

    [1]
    en = "3f2a9c1e0b7d"      # hash of the English question, hints and why it translates
    question = "..."
    hints = ["...", "..."]
    why = "..."

``lesson(n, lang="zh")`` uses them; the worked solutions are code, the same in every language.
When an English text changes, its hash no longer matches and the tests name the exercise.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

# An exercise is labkit.exercises.Exercise; named Any here so this module, which that package
# imports, imports nothing back (no cycle between floors' modules).
Exercise = Any

__all__ = ["LANGUAGES", "english_hash", "texts_file", "translate", "problems", "WORDS"]

LANGUAGES = ("en", "zh")
TRANSLATIONS = Path(__file__).resolve().parent.parent.parent / "notebooks" / "src"

#: the words around the texts (what hint(), check() and answer() print), per language
WORDS = {
    "en": {
        "exercise": "Exercise",
        "hint": "Hint {i}/{n} for exercise {k}: {text}",
        "worked": "Exercise {k}, a worked solution:",
        "why": "Why it is right: ",
        "no answer": "Exercise {k}: no answer yet. Replace the ... with yours; hint({k}) helps.",
        "not yet": "Exercise {k}: not yet. ",
        "raised": "Exercise {k}: not yet. Your answer raised {error}",
        "correct": "Exercise {k}: correct! ",
    },
    "zh": {
        "exercise": "练习",
        "hint": "练习 {k} 的提示 {i}/{n}：{text}",
        "worked": "练习 {k} 的一个参考解答：",
        "why": "为什么正确：",
        "no answer": "练习 {k}：还没有答案。把 ... 换成你的答案；hint({k}) 可以帮忙。",
        "not yet": "练习 {k}：还不对。",
        "raised": "练习 {k}：还不对。你的答案抛出了 {error}",
        "correct": "练习 {k}：正确！",
    },
}


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def english_hash(exercise: Exercise) -> str:
    """Ties a translation to the English texts it was made from."""
    text = "\n".join([exercise.question, *exercise.hints, exercise.why])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def texts_file(number: int, lang: str) -> Path:
    return TRANSLATIONS / lang / "exercises" / f"lesson{number:02d}.toml"


def _texts(number: int, lang: str) -> dict[str, dict]:
    path = texts_file(number, lang)
    if not path.exists():
        raise ValueError(f"lesson {number:02d} has no exercise texts in {lang!r} yet ({path.name})")
    with path.open("rb") as f:
        return tomllib.load(f)


def translate(number: int, exercises: dict[int, Exercise], lang: str) -> dict[int, Exercise]:
    """The exercises with their question, hints and why in ``lang`` (checkers unchanged)."""
    if lang == "en":
        return exercises
    if lang not in LANGUAGES:
        raise ValueError(f"no exercises in {lang!r}; languages: {', '.join(LANGUAGES)}")
    texts = _texts(number, lang)
    out = {}
    for k, ex in exercises.items():
        t = texts.get(str(k))
        if t is None:
            out[k] = ex  # untranslated: English, rather than nothing (the tests catch it)
            continue
        out[k] = replace(ex, question=t["question"], hints=list(t["hints"]), why=t["why"])
    return out


def problems(number: int, exercises: dict[int, Exercise], lang: str) -> list[str]:
    """What is missing or stale in a lesson's exercise texts in ``lang`` (empty: all current)."""
    try:
        texts = _texts(number, lang)
    except ValueError as missing:
        return [str(missing)]
    found = []
    for k, ex in exercises.items():
        t = texts.get(str(k))
        if t is None:
            found.append(f"exercise {k} has no {lang} texts")
        elif t.get("en") != english_hash(ex):
            found.append(f"exercise {k}: the English texts changed since they were translated")
        elif not all(_has_chinese(x) for x in [t["question"], *t["hints"], t["why"]]):
            found.append(f"exercise {k}: some of its texts are not translated yet")
        elif len(t["hints"]) != len(ex.hints):
            found.append(f"exercise {k}: {len(ex.hints)} hints in English, {len(t['hints'])} here")
    return found
