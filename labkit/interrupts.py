"""Kernel > Interrupt during a labkit call: one line that says what stopped, not 40 of library.

Interrupting a run of 1,000 clients raises KeyboardInterrupt deep inside threads, sockets and
selectors; the full traceback is long and says nothing a student can use. Inside Jupyter, labkit
replaces it, for interrupts that pass through labkit only, with one line: where the cell was,
which labkit function was running, and which background servers are still running (a server
started in a ``with`` block has already been stopped by it). Other errors are shown as usual.

``labkit.setup()`` installs it in the kernel and ``labkit.teardown()`` takes it out; importing
labkit does neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

__all__ = ["install", "describe"]


def _frames(tb: TracebackType | None) -> Iterator[tuple[FrameType, int]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _is_cell(filename: str) -> bool:
    return filename.startswith("<ipython-input") or "/ipykernel_" in filename


def describe(tb: TracebackType | None) -> str | None:
    """The one-line story of an interrupt, or None if it did not happen inside labkit."""
    cell_line, inside = None, None
    for frame, lineno in _frames(tb):
        filename = frame.f_code.co_filename
        module = frame.f_globals.get("__name__", "")
        if _is_cell(filename):
            cell_line = lineno
        elif inside is None and module.startswith("labkit.") and module != __name__:
            inside = f"{module}.{frame.f_code.co_name}"
    if inside is None:
        return None
    from labkit.background import running

    servers = [f"{s.name} (pid {s.pid})" for s in running()]
    left = (
        f"still running: {', '.join(servers)}; labkit.stop_all() stops them"
        if servers
        else "no background server is left running"
    )
    where = f" at line {cell_line} of the cell" if cell_line else ""
    return f"Interrupted{where}, inside {inside}(); {left}."


class _Story(KeyboardInterrupt):
    """The interrupt, told in one line: IPython shows what ``_render_traceback_`` returns in
    place of the traceback (its hook for exceptions that format themselves)."""

    def _render_traceback_(self) -> list[str]:
        return [f"KeyboardInterrupt: {self}"]


def install(shell: Any) -> Callable[[], None]:
    """Tell an interrupt inside labkit in one line, in this IPython shell; return the function
    that puts the shell's previous handler back (``labkit.teardown()`` calls it).

    IPython keeps one custom handler for a tuple of exception types. A handler that was there
    before keeps its types: ours passes them on to it, and takes only KeyboardInterrupt.
    """
    previous, previous_types = shell.CustomTB, shell.custom_exceptions

    def handler(
        shell: Any,
        etype: type[BaseException],
        value: BaseException,
        tb: TracebackType | None,
        tb_offset: int | None = None,
    ) -> None:
        # IPython ignores what this returns (run_code), so it shows the error itself
        story = describe(tb) if issubclass(etype, KeyboardInterrupt) else None
        if story is not None:
            shell.showtraceback((etype, _Story(story), tb), running_compiled_code=True)
        elif issubclass(etype, previous_types):
            previous(etype, value, tb, tb_offset)
        else:  # not ours: the usual traceback
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)

    shell.set_custom_exc((KeyboardInterrupt, *previous_types), handler)
    ours = shell.CustomTB

    def uninstall() -> None:
        if shell.CustomTB is ours:  # a handler set after ours stays
            shell.CustomTB, shell.custom_exceptions = previous, previous_types

    return uninstall
