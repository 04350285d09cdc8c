"""Lesson scripts that must run in a process of their own (for example, monkey-patched by gevent,
which is unsafe inside a Jupyter kernel). ``labkit.run_script(NAME, *args)`` runs one and returns
what it reported; ``labkit.show("scripts/NAME")`` shows its source.

A script ends by calling ``report(...)``: one line ``RESULT {json}`` on stdout for the parent.
On long runs it calls ``progress(done, total)``, which moves the lesson's progress bar. Both are
``labkit.child``'s, the protocol every child process of labkit speaks. ``_run.py``, which starts
a script, is plumbing, not a script: its name starts with ``_``.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

from labkit.child import progress, report

__all__ = ["NAMES", "path", "report", "progress"]

HERE = Path(__file__).resolve().parent
#: every script: every module here but the plumbing (a name that starts with ``_``)
NAMES = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def path(name: str) -> Path:
    if name not in NAMES:
        raise ValueError(f"no lesson script named {name!r}; choose one of: {', '.join(NAMES)}")
    return HERE / f"{name}.py"
