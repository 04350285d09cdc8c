"""Spans (labkit.spans), recorders and tracers (labkit.timeline), and the figures drawn from
them (labkit.figures)."""

import json
import time

import pytest
from greenlet import greenlet

from labkit.figures import figure_png
from labkit.timeline import (
    STATE_COLORS,
    STATES,
    GreenletTrace,
    Recorder,
    Span,
    busy_time,
    compare_timelines,
    duration,
    max_concurrent,
    plot_timeline,
    spans_from_json,
    spans_to_json,
)


def test_span_rejects_nameless_states_and_negative_lengths():
    with pytest.raises(ValueError, match="state"):
        Span("Task 1", "", 0, 1)
    with pytest.raises(ValueError, match="ends before"):
        Span("Task 1", "running", 2, 1)


def test_the_course_states_are_shared_and_a_lesson_declares_its_own():
    """STATES is the course's vocabulary; lesson 08's download/upload are not part of it: the
    lesson declares them, with their colours, where it draws them."""
    assert STATES == ("running", "waiting", "queued", "idle") and set(STATE_COLORS) == set(STATES)
    spans = [
        Span("Client 1", "download", 0, 0.1),
        Span("Client 1", "upload", 0.1, 0.2),
        Span("Client 2", "waiting", 0, 0.05),
    ]
    with pytest.raises(ValueError, match="declare"):
        plot_timeline(spans)  # a typo or an undeclared state
    with pytest.raises(ValueError, match="upload"):
        compare_timelines({"a": spans}, states={"download": "#2ca02c"})
    lesson = {"download": "#2ca02c", "upload": "#9467bd"}
    from matplotlib.colors import to_rgb

    for fig in (
        plot_timeline(spans, states=lesson),
        compare_timelines({"a": spans}, states=lesson),
    ):
        colors = {tuple(c.get_facecolor()[0][:3]) for c in fig.axes[0].collections}
        assert colors == {to_rgb(c) for c in ("#2ca02c", "#9467bd", STATE_COLORS["waiting"])}
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend == ["waiting", "download", "upload"]
    assert "download" not in STATE_COLORS  # declaring changed nothing shared
    assert max_concurrent(spans) == 2  # a lesson's states count as busy
    assert max_concurrent(spans + [Span("Client 3", "queued", 0, 1)]) == 2


def test_json_round_trip_both_ways():
    spans = [Span("Task 1", "running", 0.0, 0.5), Span("Task 2", "waiting", 0.25, 1.0)]
    text = spans_to_json(spans)
    assert spans_from_json(text) == spans
    assert spans_from_json(json.loads(text)) == spans


def test_recorder_span_and_switch():
    rec = Recorder()
    with rec.span("Task 1", "waiting"):
        time.sleep(0.02)
    rec.switch("Task 2", "running")
    rec.switch("Task 2", "waiting")
    rec.switch("Task 3", "running")
    spans = rec.close()
    assert [(s.task, s.state) for s in spans] == [
        ("Task 1", "waiting"),
        ("Task 2", "running"),
        ("Task 2", "waiting"),
        ("Task 3", "running"),
    ]
    assert spans[0].length >= 0.02
    assert spans[1].end == spans[2].start  # a switch closes one span and opens the next


def test_greenlet_trace_records_who_runs_when():
    def busy(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    def left():
        busy(0.01)
        rg.switch()
        busy(0.01)

    def right():
        busy(0.02)
        lg.switch()

    lg, rg = greenlet(left), greenlet(right)
    with GreenletTrace({lg: "L", rg: "R"}) as trace:
        lg.switch()
    pairs = [(a, b) for a, b in trace.switches if a and b]
    assert pairs == [("L", "R"), ("R", "L")]
    runs = [(s.task, s.state) for s in trace.spans]
    assert ("L", "waiting") in runs and ("R", "running") in runs
    assert busy_time(trace.spans, "L") == pytest.approx(0.02, abs=0.01)
    assert busy_time(trace.spans, "R") == pytest.approx(0.02, abs=0.01)
    assert max_concurrent(trace.spans, states=("running",)) == 1  # one thread: one at a time


def test_measurements():
    spans = [
        Span("a", "waiting", 0, 1),
        Span("b", "waiting", 0.5, 1.5),
        Span("c", "waiting", 1, 2),
        Span("a", "running", 1, 1.2),
    ]
    assert duration(spans) == 2
    assert max_concurrent(spans, ("waiting",)) == 2  # touching ends do not overlap
    assert busy_time(spans) == pytest.approx(0.2)
    assert duration([]) == 0


def test_plot_timeline_draws_one_row_per_task_in_order():
    spans = [
        Span("Task 1", "running", 0, 0.01),
        Span("Task 1", "waiting", 0.01, 0.1),
        Span("Task 2", "running", 0.01, 0.02),
        Span("Task 2", "idle", 0.02, 0.05),
    ]
    fig = plot_timeline(spans, title="demo")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Task 1", "Task 2"]
    assert ax.get_xlabel() == "time (ms)"
    assert ax.get_title(loc="left") == "demo"
    colors = {tuple(c.get_facecolor()[0][:3]) for c in ax.collections}
    from matplotlib.colors import to_rgb

    assert colors == {to_rgb(STATE_COLORS[s]) for s in ("running", "waiting", "idle")}
    assert len(ax.collections) == 4  # one bar group per (task, state)
    assert max(ax.get_xlim()) >= 100  # milliseconds, not seconds
    assert figure_png(fig)[0].startswith(b"\x89PNG")


def test_compare_timelines_shares_one_time_axis():
    a = [Span("Task 1", "waiting", 0, 0.3)]
    b = [Span("Task 1", "waiting", 0, 0.1), Span("Task 2", "waiting", 0, 0.1)]
    fig = compare_timelines({"sync": a, "async": b})
    top, bottom = fig.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert top.get_title(loc="left") == "sync: 300 ms"
    assert bottom.get_title(loc="left") == "async: 100 ms"


def test_many_tasks_are_sampled_not_crammed():
    spans = [Span(f"client {i}", "waiting", i / 1000, i / 1000 + 0.01) for i in range(500)]
    ax = plot_timeline(spans).axes[0]
    assert len(ax.get_yticks()) == 60


def test_tasks_that_start_together_are_in_natural_order():
    spans = [Span(f"Task {i}", "waiting", 0, 1) for i in (10, 2, 1)]
    labels = [t.get_text() for t in plot_timeline(spans).axes[0].get_yticklabels()]
    assert labels == ["Task 1", "Task 2", "Task 10"]


def test_queued_is_a_state_of_its_own_with_its_colour_and_legend_entry():
    """Lesson 06 draws clients waiting un-accepted in the listen backlog: that must not look
    like waiting for an answer."""
    spans = [
        Span("Client 1", "queued", 0, 0.1),
        Span("Client 1", "waiting", 0.1, 0.2),
        Span("Client 2", "waiting", 0, 0.05),
    ]
    assert len(set(STATE_COLORS.values())) == len(STATE_COLORS)  # no two states look alike
    from matplotlib.colors import to_rgb

    for fig in (plot_timeline(spans), compare_timelines({"capped": spans, "other": spans[2:]})):
        ax = fig.axes[0]
        colors = {tuple(c.get_facecolor()[0][:3]) for c in ax.collections}
        assert to_rgb(STATE_COLORS["queued"]) in colors
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert labels == ["waiting", "queued"]  # the same order everywhere


def _declared_states() -> dict[str, str]:
    """Every state colour a lesson declares (states={...}), from the lesson sources and labkit."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found: dict[str, str] = {}
    for path in [*root.glob("notebooks/src/*.py"), *root.glob("labkit/**/*.py")]:
        for block in re.findall(r"[A-Z_]+(?:STATES|COLORS) = \{([^}]*)\}", path.read_text()):
            found |= dict(re.findall(r'"(\w+)": "(#[0-9a-fA-F]{6})"', block))
    return found


def test_every_state_colour_stands_out_against_the_background_or_is_outlined():
    from labkit.figures import BACKGROUND, OUTLINE, _style, contrast

    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast(BACKGROUND) == pytest.approx(1)
    colors = {**STATE_COLORS, **_declared_states()}
    assert len(colors) > len(STATE_COLORS)  # the lessons' own states are checked too
    for state, color in colors.items():
        style = _style(state, color)
        if contrast(color) < 3:
            assert style["edgecolor"] == OUTLINE and style["linewidth"] > 0, state
            assert contrast(OUTLINE) >= 4.5
    pale = [s for s, c in STATE_COLORS.items() if contrast(c) < 3]
    assert pale == ["idle"]  # running, waiting and queued stand at 3:1 or more on their own


def test_states_are_told_apart_without_colour():
    from labkit.figures import STATE_HATCHES, _style

    looks = {(STATE_HATCHES[s], _style(s, STATE_COLORS[s]).get("linewidth")) for s in STATES}
    assert len(looks) == len(STATES)  # pattern or outline differs for every state


def test_figures_are_sharp_on_a_hidpi_screen_and_small():
    import io

    from PIL import Image

    fig = plot_timeline([Span("Task 1", "running", 0, 0.1), Span("Task 1", "waiting", 0.1, 0.2)])
    data, shown = figure_png(fig)
    image = Image.open(io.BytesIO(data))
    assert image.width == pytest.approx(2 * shown["width"], abs=2)  # two pixels per pixel shown
    assert len(data) < 40_000


def test_every_name_imported_from_timeline_is_there():
    """Lessons and labkit import spans, recorders and drawing alike from labkit.timeline, which
    records and re-exports the rest from labkit.spans and labkit.figures: each name they
    import is there, and is the very object its own module defines."""
    import ast
    from pathlib import Path

    import labkit.figures
    import labkit.spans
    import labkit.timeline

    root = Path(__file__).resolve().parent.parent
    files = [*root.glob("notebooks/src/*.py"), *root.glob("labkit/**/*.py"), *root.glob("*/*.py")]
    wanted = {
        alias.name
        for path in files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module == "labkit.timeline"
        for alias in node.names
    }
    assert {"Recorder", "Span", "plot_timeline", "STATE_COLORS"} <= wanted
    missing = sorted(name for name in wanted if not hasattr(labkit.timeline, name))
    assert not missing, f"labkit.timeline lacks {missing}"
    for module in (labkit.spans, labkit.figures):
        for name in set(module.__all__) & set(labkit.timeline.__all__):
            assert getattr(labkit.timeline, name) is getattr(module, name)
