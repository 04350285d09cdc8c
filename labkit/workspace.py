"""Students work on copies; the course in ``notebooks/`` stays exactly as shipped.

JupyterLab autosaves an open notebook every couple of minutes, half-run or failed state
included. If that landed in ``notebooks/``, the instructors' ``pytest`` (which re-runs every
lesson and compares it with its stored outputs) would fail on the student's edits. So:

* ``python -m labkit lab`` copies each lesson into ``my-work/`` (beside ``notebooks/``, so the
  lessons' ``../data`` paths still hold) unless a copy is already there, and opens JupyterLab
  on ``my-work/``. A copy is never overwritten: a student's work is never lost.
  ``python -m labkit lab --fresh 04`` puts a fresh copy of lesson 04 there and keeps the old one
  as ``04_... (saved YYYY-MM-DD HHMMSS).ipynb``. ``python -m labkit lab --lang zh`` does the
  same with the Chinese lessons (``notebooks/zh/`` into ``my-work/zh/``).
* If a lesson in ``notebooks/`` is opened directly anyway, saving it (by hand or autosave) writes
  the student's version to ``my-work/`` and tells them so, and the original is left unchanged.
  JupyterLab calls ``keep_course_pristine`` before every save (the course's Jupyter config,
  ``labkit/jupyter/jupyter_server_config.json``, installs it).

The tests collect only ``tests/`` and ``notebooks/``: nothing in ``my-work/`` can fail them.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["COURSE", "WORK", "prepare", "trust", "fresh_copy", "keep_course_pristine", "lab"]

REPO = Path(__file__).resolve().parent.parent
COURSE = REPO / "notebooks"
WORK = Path(os.environ.get("ASYNCLAB_WORK_DIR") or REPO / "my-work")
LESSON = re.compile(r"^\d\d_[\w-]+\.ipynb$")


LANGUAGES = {"en": "", "zh": "zh"}  # a language's folder under notebooks/ and my-work/


def lessons(lang: str = "en") -> list[Path]:
    return sorted(p for p in (COURSE / LANGUAGES[lang]).glob("*.ipynb") if LESSON.match(p.name))


def prepare(work: Path = WORK, lang: str = "en") -> list[str]:
    """Copy every lesson that ``work`` does not have yet, and trust the lessons (``trust``);
    return the names copied."""
    work.mkdir(parents=True, exist_ok=True)
    copied = []
    for lesson in lessons(lang):
        if not (work / lesson.name).exists():
            shutil.copy2(lesson, work / lesson.name)
            copied.append(lesson.name)
    trust(lessons(lang))
    return copied


def trust(notebooks: list[Path]) -> None:
    """Sign each notebook for this user, as ``jupyter trust`` does.

    JupyterLab draws a stored widget panel only in a trusted notebook; in an untrusted one it
    shows the panel's plain-text stand-in, ``VBox(children=...)``. A signature is a hash of the
    notebook's content with the user's secret, kept in the user's Jupyter data folder: signing
    a shipped lesson trusts every unchanged copy of it, and Jupyter signs a student's copy
    again each time it saves it."""
    import nbformat
    from nbformat.sign import NotebookNotary

    with NotebookNotary() as notary:
        for path in notebooks:
            notary.sign(nbformat.read(path, as_version=4))


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H%M%S")


def fresh_copy(number: str, work: Path = WORK, lang: str = "en") -> Path:
    """A fresh copy of lesson ``number`` in ``work``; an existing one is kept under a new name."""
    matches = [p for p in lessons(lang) if p.name.startswith(f"{int(number):02d}_")]
    if not matches:
        raise SystemExit(
            f"no lesson {number!r}; lessons: {', '.join(p.name[:2] for p in lessons(lang))}"
        )
    source = matches[0]
    target = work / source.name
    work.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.rename(work / f"{source.stem} (saved {_stamp()}).ipynb")
    shutil.copy2(source, target)
    return target


def _is_course_original(path: Path) -> bool:
    try:
        folders = {(COURSE / sub).resolve() for sub in LANGUAGES.values()}
        return path.resolve().parent in folders and bool(LESSON.match(path.name))
    except OSError:
        return False


_redirected: dict[Path, Path] = {}  # course original -> where this server saves it


def keep_course_pristine(model: dict, path: str, contents_manager: Any, **_: Any) -> None:
    """JupyterLab's pre-save hook: a save of a course original goes to ``my-work/`` instead.

    The hook may only refuse a save (with an HTTP error JupyterLab shows in a dialog), so it
    first writes the student's version to ``my-work/``, then refuses, saying where it went.
    Later saves of the same notebook (autosave) go to the same copy."""
    if model.get("type") != "notebook":
        return
    original = Path(contents_manager.root_dir) / path.lstrip("/")
    if not _is_course_original(original):
        return
    import nbformat
    from tornado.web import HTTPError

    work = WORK / original.resolve().parent.relative_to(COURSE.resolve())  # my-work/ or my-work/zh/
    work.mkdir(parents=True, exist_ok=True)
    copy = _redirected.get(original, work / original.name)
    if original not in _redirected and copy.exists():  # earlier work: never overwrite it
        copy = work / f"{original.stem} (saved {_stamp()}).ipynb"
    _redirected[original] = copy
    copy.write_text(nbformat.writes(nbformat.from_dict(model["content"])), encoding="utf-8")
    raise HTTPError(
        403,
        f"This is the course's original notebook, kept as shipped so the "
        f"instructors' tests pass. Your version was saved to "
        f"{copy.relative_to(WORK.parent)}: open that one to go on (`python -m labkit lab` opens "
        f"my-work/ for you).",
    )


def lab(argv: list[str]) -> int:
    """``python -m labkit lab [--lang zh] [--fresh NN] [JupyterLab options]``: copy, then open."""
    lang = "en"
    if argv[:1] == ["--lang"] and len(argv) >= 2:
        lang, argv = argv[1], argv[2:]
        if lang not in LANGUAGES:
            raise SystemExit(f"no lessons in {lang!r}; languages: {', '.join(LANGUAGES)}")
    work = WORK / LANGUAGES[lang]
    if argv[:1] == ["--fresh"] and len(argv) >= 2:
        print(f"fresh copy: {fresh_copy(argv[1], work, lang).relative_to(REPO)}")
        argv = argv[2:]
    origin = (COURSE / LANGUAGES[lang]).relative_to(REPO)
    for name in prepare(work, lang):
        print(f"copied {origin / name} -> {work.relative_to(WORK.parent) / name}")
    start = work / "00_start_here.ipynb"
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={WORK}", *argv]
    if start.exists() and not any(not a.startswith("-") for a in argv):
        command.append(str(start))
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process
