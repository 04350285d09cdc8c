"""Show the exact code that runs, in a notebook: ``labkit.show("select_echo")``."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

__all__ = ["show", "source_of"]


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


def show(target: Any) -> Any:
    """Display the source with syntax highlighting (plain text outside Jupyter)."""
    from IPython.display import Code

    return Code(source_of(target), language="python")
