"""The lessons' widget panels: controls, a Run button, a progress bar, and the redrawn figure.

Every panel wraps one plain function that a lesson also calls with fixed values in a checked
cell, so what the widget does is tested too::

    panel(run_pool, draw=lambda r: plot_timeline(r.spans),
          controls={"pool_size": IntSlider(3, 1, 10), "n_tasks": IntSlider(9, 1, 30)})

If ``run`` accepts a ``progress`` argument it is called as ``progress(done, total)`` and moves
the progress bar. An error (say, more clients than the open-file limit allows) is shown in the
panel as a message, not a traceback.
"""
from __future__ import annotations

import inspect
import time
from typing import Any, Callable

import ipywidgets as w
from IPython.display import display

__all__ = ["panel"]


def panel(run: Callable[..., Any], draw: Callable[[Any], Any], controls: dict[str, w.Widget],
          title: str = "", summary: Callable[[Any], str] | None = None,
          run_now: bool = True) -> w.VBox:
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
        try:
            values = {name: c.value for name, c in controls.items()}
            result = run(**values, progress=progress) if takes_progress else run(**values)
            out.clear_output(wait=True)
            with out:
                display(draw(result))
                if summary:
                    print(summary(result))
            bar.value = bar.max
            status.value = f"done in {time.perf_counter() - started:.1f} s"
        except Exception as exc:                 # show it where the student is looking
            out.clear_output(wait=True)
            with out:
                print(f"{type(exc).__name__}: {exc}")
            status.value = "failed (see below)"
        finally:
            button.disabled = False

    button.on_click(on_click)
    header = [w.HTML(f"<b>{title}</b>")] if title else []
    box = w.VBox([*header, *controls.values(), w.HBox([button, bar, status]), out])
    if run_now:
        on_click()
    return box
