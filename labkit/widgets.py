"""The lessons' widget panels: controls, a Run button, a progress bar, and the redrawn figure.

Every panel wraps one plain function that a lesson also calls with fixed values in a checked
cell, so what the widget does is tested too::

    panel(run_pool, draw=lambda r: plot_timeline(r.spans),
          controls={"pool_size": IntSlider(3, 1, 10), "n_tasks": IntSlider(9, 1, 30)})

If ``run`` accepts a ``progress`` argument it is called as ``progress(done, total)`` and moves
the progress bar. An error (say, more clients than the open-file limit allows) is shown in the
panel as a message, not a traceback; so is an interrupt (Kernel > Interrupt during a run), after
which every server the run started and left running is stopped.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w
from IPython.display import display

from labkit import background

__all__ = ["panel"]


def panel(
    run: Callable[..., Any],
    draw: Callable[[Any], Any],
    controls: dict[str, w.Widget],
    title: str = "",
    summary: Callable[[Any], str] | None = None,
    run_now: bool = True,
) -> w.VBox:
    """A panel that calls ``run(**control values)`` on Run and shows ``draw(result)``."""
    button = w.Button(description="Run", button_style="primary", icon="play")
    bar = w.IntProgress(value=0, min=0, max=1, description="", layout=w.Layout(width="50%"))
    status = w.Label("")
    out = w.Output()
    takes_progress = "progress" in inspect.signature(run).parameters

    def progress(done: int, total: int) -> None:
        bar.max, bar.value = max(total, 1), done

    def on_click(_=None) -> None:
        button.disabled = True
        status.value = "running..."
        bar.value = 0
        started = time.perf_counter()
        servers_before = set(background.running())
        values = {name: c.value for name, c in controls.items()}
        try:
            result = run(**values, progress=progress) if takes_progress else run(**values)
            out.clear_output(wait=True)
            with out:
                display(draw(result))
                if summary:
                    print(summary(result))
            bar.value = bar.max
            status.value = f"done in {time.perf_counter() - started:.1f} s"
        except Exception as exc:  # show it where the student is looking
            out.clear_output(wait=True)
            with out:
                print(f"{type(exc).__name__}: {exc}")
            status.value = "failed (see below)"
        except KeyboardInterrupt:  # Kernel > Interrupt: one line, no traceback
            out.clear_output(wait=True)
            with out:
                print(interrupted(run, values, servers_before))
            status.value = "interrupted"
        finally:
            button.disabled = False

    button.on_click(on_click)
    header = [w.HTML(f"<b>{title}</b>")] if title else []
    box = w.VBox([*header, *controls.values(), w.HBox([button, bar, status]), out])
    if run_now:
        on_click()
    return box


def interrupted(run: Callable[..., Any], values: dict[str, Any], servers_before: set) -> str:
    """Stop the servers a run started and left running; say in one line what was stopped."""
    left = [h for h in background.running() if h not in servers_before]
    for handle in left:
        handle.stop()
    args = ", ".join(f"{name}={value!r}" for name, value in values.items())
    call = f"{getattr(run, '__name__', 'the run')}({args})"
    if not left:
        return f"Interrupted: {call}; no server it started is still running."
    still = [h.name for h in left if h.alive]
    if still:
        return f"Interrupted: {call}; could not stop {', '.join(still)} (labkit.stop_all())."
    return (
        f"Interrupted: {call}; stopped the servers it left running: "
        f"{', '.join(h.name for h in left)}."
    )
