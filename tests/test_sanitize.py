"""tests/nbval-sanitize.cfg can never turn a failed claim into a passing one.

nbval applies the sanitize patterns to the stored and the fresh output before comparing them. If
a pattern removed or rewrote a ``✔``/``✘`` mark, or removed a whole claim line, a fresh
``✘ sentence`` could compare equal to the stored ``✔ sentence`` and a broken lesson would pass.
So: no pattern mentions either mark, and on every claim line the lessons print (and on random
ones) sanitizing keeps each marked line, in order, with its mark.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from hypothesis import given, settings
from hypothesis import strategies as st
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
SANITIZE = ROOT / "tests" / "nbval-sanitize.cfg"
MARKS = ("✔", "✘")
PATTERNS = dict(get_sanitize_patterns(SANITIZE.read_text()))  # as nbval keeps them


def sanitize(text: str, patterns: dict[str, str] = PATTERNS) -> str:
    """What nbval does to each output (nbval/plugin.py, IPyNbCell.sanitize)."""
    for regex, replace in patterns.items():
        text = re.sub(regex, replace, text)
    return text


def marks(text: str) -> list[str]:
    """The mark of each claim line, in order."""
    return [line.lstrip()[0] for line in text.splitlines() if line.lstrip()[:1] in MARKS]


def stored_claim_lines() -> list[str]:
    lines = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                text = output.get("text", "") or output.get("data", {}).get("text/plain", "")
                lines += [ln for ln in text.splitlines() if ln.lstrip()[:1] in MARKS]
    return lines


def flipped(line: str) -> str:
    """The same claim with the other outcome (a failure also carries its numbers)."""
    if line.lstrip().startswith("✔"):
        return line.replace("✔", "✘", 1) + " (measured: 12.5 ms, needed < 10 ms; 0.84 s in all)"
    return line.replace("✘", "✔", 1)


def test_the_patterns_exist_and_none_mentions_a_mark():
    assert PATTERNS, "no patterns read: the file's format changed?"
    for regex, replace in PATTERNS.items():
        for mark in MARKS:
            escapes = (mark, f"\\u{ord(mark):04x}", f"\\x{{{ord(mark):x}}}")
            assert not any(e.lower() in (regex + replace).lower() for e in escapes), (regex, mark)


def test_every_stored_claim_line_keeps_its_mark_either_way():
    lines = stored_claim_lines()
    assert len(lines) > 20, "too few claim lines found in the stored notebooks"
    for line in lines:
        for version in (line, flipped(line)):
            text = f"Scaled down for this machine: 100 clients\n{version}\nnext line 12 ms\n"
            assert marks(sanitize(text)) == marks(text), (version, sanitize(text))
        assert sanitize(line) != sanitize(flipped(line)), line


def test_a_pattern_that_ate_claim_lines_would_be_caught():
    eating = {**PATTERNS, r"(?m)^.*took.*\n": ""}
    text = "✘ the server took under 5 ms (measured: 9 ms)\n"
    assert marks(sanitize(text, eating)) != marks(text)


claim_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=0, max_size=60
).filter(lambda t: "\n" not in t and "\r" not in t)
other_line = st.one_of(
    claim_text.filter(lambda t: t.lstrip()[:1] not in MARKS),
    st.sampled_from(
        [
            "Scaled down for this machine: 500 clients, not 10,000",
            "uvloop is not installed here, so its servers are left out",
            "served on 127.0.0.1:41234 by pid 4242 in 0.3 s",
        ]
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(MARKS), claim_text), min_size=1, max_size=5),
    st.lists(other_line, max_size=4),
)
def test_random_claim_lines_keep_their_marks(claims, others):
    lines = [f"{mark} {text}" for mark, text in claims]
    text = "\n".join(others[:2] + lines + others[2:]) + "\n"
    assert marks(sanitize(text)) == marks(text)
    failed = text.replace("✔", "✘")
    if "✔" in text:
        assert sanitize(failed) != sanitize(text)
