"""Show the exact code that runs, in a notebook: ``labkit.show("select_echo")``."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from typing import Any

__all__ = ["show", "source_of", "Source"]


def source_of(target: Any) -> str:
    """Source of a teaching server (``"select_echo"``), a lesson script (``"scripts/NAME"``),
    a module, a function or a class."""
    if isinstance(target, str) and target.startswith("scripts/"):
        from labkit import scripts

        return scripts.path(target.split("/", 1)[1]).read_text(encoding="utf-8")
    if isinstance(target, str):
        from labkit.servers import NAMES

        module = f"labkit.servers.{target}" if target in NAMES else target
        # Read the file, never import it: importing a gevent server would monkey-patch the
        # Jupyter kernel itself, which breaks it.
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:
            raise ValueError(f"no module named {module!r}")
        return Path(spec.origin).read_text(encoding="utf-8")
    return inspect.getsource(target)


class Source:
    """Code shown as a notebook shows code: a Python block in the notebook's own colours.

    JupyterLab renders the Markdown code block with its editor theme (light or dark, like the
    lesson's own cells); anywhere else the plain text is the source itself.
    """

    def __init__(self, data: str) -> None:
        self.data = data

    def _repr_markdown_(self) -> str:
        fence = "`" * max(3, 1 + _longest_backtick_run(self.data))
        return f"{fence}python\n{self.data.rstrip()}\n{fence}"

    def __repr__(self) -> str:
        return self.data


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def show(target: Any) -> Source:
    """Display the source as a Python code block (plain text outside Jupyter)."""
    return Source(source_of(target))
