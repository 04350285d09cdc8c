"""Lesson scripts that must run in a process of their own (for example, monkey-patched by gevent,
which is unsafe inside a Jupyter kernel). ``labkit.run_script(NAME, *args)`` runs one and returns
what it reported; ``labkit.show("scripts/NAME")`` shows its source.

A script ends by calling ``report(...)``: one line ``RESULT {json}`` on stdout for the parent.
On long runs it calls ``progress(done, total)``, which moves the lesson's progress bar.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = sorted(p.stem for p in HERE.glob("[a-z]*.py"))


def path(name: str) -> Path:
    if name not in NAMES:
        raise ValueError(f"no lesson script named {name!r}; choose one of: {', '.join(NAMES)}")
    return HERE / f"{name}.py"


def report(**data) -> None:
    """Hand results to the parent. Spans (lists of labkit.timeline.Span) are converted."""
    from dataclasses import asdict, is_dataclass

    def plain(value):
        if is_dataclass(value):
            return asdict(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    sys.stdout.write("RESULT " + json.dumps(plain(data)) + "\n")
    sys.stdout.flush()


def progress(done: int, total: int) -> None:
    """Tell the parent how far along we are (a line ``PROGRESS done total``)."""
    sys.stdout.write(f"PROGRESS {done} {total}\n")
    sys.stdout.flush()
