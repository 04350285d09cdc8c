"""Kernel > Interrupt during a labkit call: one line that says what stopped, not 40 of library.

Interrupting a run of 1,000 clients raises KeyboardInterrupt deep inside threads, sockets and
selectors; the full traceback is long and says nothing a student can use. Inside Jupyter, labkit
replaces it, for interrupts that pass through labkit only, with one line: where the cell was,
which labkit function was running, and which background servers are still running (a server
started in a ``with`` block has already been stopped by it). Other errors are shown as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
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


def _handler(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> None:
    """IPython's custom-exception hook: it must show the error itself."""
    story = describe(tb)
    if story is None:  # not ours: the usual traceback
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
    else:
        shell._showtraceback(etype, value, [f"KeyboardInterrupt: {story}"])


def install() -> None:
    """In IPython/Jupyter only; elsewhere (scripts, servers, tests) nothing changes."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((KeyboardInterrupt,), _handler)
