"""Every lesson says where its facts come from: the guide's "Sources" list per lesson.

An instructor asked "how do you know?" finds the answer in ``docs/instructors.md``: each lesson's
section ends with ``### Sources``, one bullet per fact, each naming what backs it: a file of the
pinned version (``gevent/hub.py``), an official documentation or manual page
(``docs.python.org/3.11/...``, ``epoll(7)``), an RFC, or a measurement in the lesson itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8")
LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# What a reference looks like: a source file, a manual page, a documentation page, an RFC or a
# kernel document, or a claim measured in the lesson.
REFERENCE = re.compile(
    r"[\w.*-]+/[\w./*-]*\.(py|pyx|c|h|cpp|so|rst|md|txt|toml|json|cfg|pxd|html)\b"  # a file
    r"|\b[\w.-]+\.(py|c|h)\b"  # a module or C file named alone
    r"|\b[a-z_0-9.]+\([1-8]\)"  # a manual page: epoll(7)
    r"|https?://|\b[\w.-]+\.(org|io|com|net)/|\bRFC \d+"  # documentation on the web
    r"|\bdocs?\b|documentation|docstring|README|METADATA|CHANGES"  # a package's own docs
    r"|\bmeasured\b|\bclaim\b|\bcell\b",  # the lesson measures it
    re.IGNORECASE,
)


def sources_of(lesson: str) -> list[str]:
    number = lesson[:2]
    match = re.search(rf"(?ms)^## Lesson {number} .*?(?=^## |\Z)", GUIDE)
    assert match, f"docs/instructors.md has no section '## Lesson {number}'"
    section = match.group(0)
    assert "### Sources" in section, f"lesson {number}'s section has no '### Sources' list"
    listed = section.split("### Sources", 1)[1]
    return [" ".join(b.split()) for b in re.findall(r"(?m)^[*-] (.+(?:\n +.+)*)", listed)]


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_lists_its_sources(lesson):
    bullets = sources_of(lesson)
    assert len(bullets) >= 5, f"{lesson}: only {len(bullets)} sources listed"
    unnamed = [b for b in bullets if not REFERENCE.search(b)]
    assert not unnamed, f"{lesson}: sources that name no file, page or measurement: {unnamed}"


def test_a_section_without_sources_fails():
    with pytest.raises(AssertionError):
        sources_of("99_nothing")


def test_a_bullet_that_names_nothing_is_caught():
    assert not REFERENCE.search("gevent is fast → everyone knows it")
    assert REFERENCE.search("recv waits → recv(2)") and REFERENCE.search("→ `gevent/hub.py`")
