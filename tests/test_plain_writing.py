"""Every lesson is written plainly: short sentences on average, and no markdown cell too long
to take in at once.

One definition, the one ``shared/hooks/before-stop`` applies to the built notebooks, here read
from the lessons' sources (``notebooks/src/NN_*.py``, whose markdown cells are the notebooks'):

* a lesson's prose is its markdown cells joined with spaces, with every fenced code block
  (```...```) taken out;
* a sentence is what lies between one ``.``, ``!`` or ``?`` followed by white space and the
  next; a piece of two words or fewer (a heading, a label, "e.g.") is not counted;
* the **mean sentence length** is the words (split on white space) of the counted sentences over
  their number: at most MAX_MEAN_WORDS;
* a markdown cell's **size** is all its words, code blocks included: at most MAX_CELL_WORDS.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))
import build  # noqa: E402

SOURCES = sorted((NOTEBOOKS / "src").glob("[0-9][0-9]_*.py"))
MAX_MEAN_WORDS = 22
MAX_CELL_WORDS = 200


def markdown_cells(source: Path) -> list[str]:
    cells = build.parse(source.read_text(encoding="utf-8"))
    return [body for kind, body in cells if kind == "markdown"]


def sentences(cells: list[str]) -> list[str]:
    """The counted sentences of a lesson's prose (see the module's docstring)."""
    text = re.sub(r"```.*?```", " ", " ".join(cells), flags=re.DOTALL)
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 2]


def mean_sentence_words(cells: list[str]) -> float:
    counted = sentences(cells)
    return sum(len(s.split()) for s in counted) / max(1, len(counted))


def cell_words(cell: str) -> int:
    return len(cell.split())


def test_the_measure_is_the_hooks():
    cells = [
        "# Title\n\nOne two three four. Five six seven eight nine!",
        "```python\nnot. counted. at. all.\n```\nTen eleven twelve? e.g. yes",
    ]
    assert [" ".join(s.split()) for s in sentences(cells)] == [
        "# Title One two three four.",
        "Five six seven eight nine!",
        "Ten eleven twelve?",
    ]
    assert mean_sentence_words(cells) == (6 + 5 + 3) / 3
    assert [cell_words(c) for c in cells] == [11, 11]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_sentences_are_short_on_average(source):
    mean = mean_sentence_words(markdown_cells(source))
    longest = sorted(sentences(markdown_cells(source)), key=lambda s: len(s.split()))[-3:]
    assert mean <= MAX_MEAN_WORDS, (
        f"{source.stem}: {mean:.1f} words a sentence (at most {MAX_MEAN_WORDS}); "
        "its longest:\n" + "\n".join(f"  ({len(s.split())}) {s}" for s in reversed(longest))
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_markdown_cell_is_too_long(source):
    big = [
        f"{cell_words(c)} words: {c.splitlines()[0][:70]!r}"
        for c in markdown_cells(source)
        if cell_words(c) > MAX_CELL_WORDS
    ]
    assert not big, f"{source.stem}: cells over {MAX_CELL_WORDS} words: {big}"
