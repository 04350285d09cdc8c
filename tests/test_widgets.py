"""labkit.widgets.panel: runs its function with the controls' values, shows result or error."""
from ipywidgets import IntSlider

from labkit.timeline import Span, plot_timeline
from labkit.widgets import panel


def find(box, kind):
    found = []
    for child in box.children:
        if isinstance(child, kind):
            found.append(child)
        if hasattr(child, "children"):
            found += find(child, kind)
    return found


def test_panel_runs_with_control_values_and_progress():
    from ipywidgets import Button, IntProgress
    calls = []

    def run(n, progress):
        calls.append(n)
        for i in range(n):
            progress(i + 1, n)
        return [Span(f"Task {i}", "waiting", 0, 0.01) for i in range(n)]

    slider = IntSlider(3, min=1, max=10)
    box = panel(run, draw=plot_timeline, controls={"n": slider}, title="demo")
    assert calls == [3]                              # runs once when shown
    slider.value = 5
    find(box, Button)[0].click()
    assert calls == [3, 5]
    bar = find(box, IntProgress)[0]
    assert (bar.value, bar.max) == (5, 5)


def test_panel_shows_errors_as_messages():
    from ipywidgets import Label

    def run(n):
        raise ValueError(f"{n} is too many")

    box = panel(run, draw=plot_timeline, controls={"n": IntSlider(7)})
    assert find(box, Label)[0].value == "failed (see below)"
