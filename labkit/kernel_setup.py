"""What labkit changes in a Jupyter kernel: done by ``labkit.setup()``, undone by ``teardown()``.

Importing labkit changes nothing in the process (``tests/test_import_side_effects.py`` checks
it). A lesson's first cell calls ``labkit.setup()`` (``%load_ext labkit`` does the same), which:

* shows a matplotlib Figure that a cell returns as a picture (``labkit.figures.figure_png``).
  labkit draws without pyplot, and IPython shows a Figure as text unless a printer is
  registered for it;
* tells Kernel > Interrupt inside a labkit call in one line (``labkit.interrupts``);
* raises the open-file soft limit to the hard limit: containers start kernels at 1,024, and
  every client socket takes a descriptor.

``setup()`` prints nothing, and a second call does nothing. ``teardown()`` (or
``%unload_ext labkit``) puts back what setup found, except where something else changed it
since: a printer that replaced ours, say, stays.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from typing import Any

from labkit import interrupts, limits
from labkit.figures import FIGURE_TYPE, figure_png

__all__ = ["setup", "teardown"]

#: what teardown() runs, last step first; None while labkit is not set up
_undo: list[Callable[[], None]] | None = None


def setup(shell: Any = None) -> None:
    """Set up this kernel for the lessons (``shell``: the IPython shell; by default the one
    running, if any). Outside IPython only the open-file limit is raised."""
    global _undo
    if _undo is not None:
        return
    shell = _running_shell() if shell is None else shell
    steps = [_raise_open_file_limit]
    if shell is not None:
        steps += [lambda: _show_figures(shell), lambda: interrupts.install(shell)]
    _undo = [step() for step in steps]


def teardown() -> None:
    """Undo ``setup()``: the previous printer for Figure, the previous custom exception
    handler, and the soft open-file limit setup found. Lowering a soft limit is always allowed
    (getrlimit(2)); it only stops new descriptors from being numbered at or above it, so the
    ones already open stay usable. labkit's client runs raise it again when they need the room
    (``labkit.limits.max_clients``)."""
    global _undo
    undo, _undo = _undo or [], None
    for step in reversed(undo):
        step()


def _running_shell() -> Any:
    ipython = sys.modules.get("IPython")  # a kernel has it loaded; a script need not load it
    return ipython.get_ipython() if ipython is not None else None


def _raise_open_file_limit() -> Callable[[], None]:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    after = limits.raise_open_file_limit()

    def undo() -> None:
        if after != before and resource.getrlimit(resource.RLIMIT_NOFILE) == after:
            resource.setrlimit(resource.RLIMIT_NOFILE, before)

    return undo


def _show_figures(shell: Any) -> Callable[[], None]:
    """Register ``figure_png`` for Figure, by name (matplotlib need not be imported yet)."""
    png = shell.display_formatter.formatters["image/png"]
    previous = _take_printers(png)
    png.for_type_by_name(*FIGURE_TYPE.rsplit(".", 1), figure_png)

    def undo() -> None:
        if _printer(png) is not figure_png:  # another printer replaced ours since: it stays
            return
        _take_printers(png)
        for table, key, printer in previous:
            table[key] = printer

    return undo


def _is_figure(key: Any) -> bool:
    """A formatter's key for Figure: the class itself, or its (module, name) when deferred."""
    name = key if isinstance(key, tuple) else (key.__module__, key.__name__)
    return ".".join(name) == FIGURE_TYPE


def _printer(formatter: Any) -> Any:
    try:
        return formatter.lookup_by_type(FIGURE_TYPE)
    except KeyError:
        return None


def _take_printers(formatter: Any) -> list[tuple[dict, Any, Any]]:
    """Remove the formatter's printers for Figure; return each as (its table, its key, the
    printer), so that it can be put back exactly where it was."""
    return [
        (table, key, table.pop(key))
        for table in (formatter.type_printers, formatter.deferred_printers)
        for key in list(table)
        if _is_figure(key)
    ]
