"""labkit.widgets.panel: runs its function with the controls' values, shows result or error."""

from ipywidgets import FloatSlider, IntSlider, Label

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


def test_panel_runs_with_control_values_and_progress(capsys):
    """Moving a control and pressing Run calls the plain function with the controls' values,
    moves the bar to the end, and shows what ``draw`` and ``summary`` make of the result."""
    from ipywidgets import Button, IntProgress

    calls = []

    def run(n, delay, progress):
        calls.append((n, delay))
        for i in range(n):
            progress(i + 1, n)
        return [Span(f"Task {i}", "waiting", 0, delay) for i in range(n)]

    def draw(spans):
        return f"drawn: {len(spans)} spans of {spans[0].end} s"

    n, delay = IntSlider(3, min=1, max=10), FloatSlider(0.25, min=0.25, max=1, step=0.25)
    box = panel(
        run,
        draw=draw,
        controls={"n": n, "delay": delay},
        title="demo",
        summary=lambda spans: f"summary: {spans[-1].task}",
    )
    assert calls == [(3, 0.25)]  # runs once when shown
    assert printed_lines(capsys) == ["drawn: 3 spans of 0.25 s", "summary: Task 2"]
    n.value, delay.value = 5, 0.5
    find(box, Button)[0].click()
    assert calls == [(3, 0.25), (5, 0.5)]
    assert printed_lines(capsys) == ["drawn: 5 spans of 0.5 s", "summary: Task 4"]
    bar = find(box, IntProgress)[0]
    assert (bar.value, bar.max) == (5, 5)
    assert find(box, Label)[0].value.startswith("done in ")


def test_panel_draws_a_timeline_figure():
    """The lessons' usual ``draw``: the panel runs it on the result without an error."""
    box = panel(
        lambda n: [Span(f"Task {i}", "waiting", 0, 0.01) for i in range(n)],
        draw=plot_timeline,
        controls={"n": IntSlider(2)},
    )
    assert find(box, Label)[0].value.startswith("done in ")


def test_panel_shows_errors_as_messages(capsys):
    """An exception in the run is one line in the output, not a traceback; the next run works."""
    from ipywidgets import Button

    def run(n):
        if n > 5:
            raise ValueError(f"{n} is too many")
        return n

    slider = IntSlider(7)
    box = panel(run, draw=lambda n: f"ran with {n}", controls={"n": slider})  # must not raise
    assert find(box, Label)[0].value == "failed (see below)"
    assert printed_lines(capsys) == ["ValueError: 7 is too many"]
    button = find(box, Button)[0]
    assert not button.disabled  # the student can try again
    slider.value = 2
    button.click()
    assert printed_lines(capsys) == ["ran with 2"]
    assert find(box, Label)[0].value.startswith("done in ")


def printed_lines(capsys):
    """What the panel printed (outside a kernel, its Output widget lets prints through)."""
    return [
        line.replace("\x1b[2K", "")
        for line in capsys.readouterr().out.splitlines()
        if line.replace("\x1b[2K", "")
    ]


def test_interrupt_shows_one_line_and_stops_the_servers_left_running(capsys):
    """Kernel > Interrupt during a run: no traceback, one line, no server left behind."""
    import labkit

    started = []

    def run_load(n):
        started.append(labkit.serve("select_echo"))  # a run interrupted before its clean-up
        raise KeyboardInterrupt

    box = panel(run_load, draw=plot_timeline, controls={"n": IntSlider(7)})  # must not raise
    assert find(box, Label)[0].value == "interrupted"
    assert printed_lines(capsys) == [
        "Interrupted: run_load(n=7); stopped the servers it left running: select_echo."
    ]
    assert not started[0].alive


def test_interrupt_inside_a_with_block_says_no_server_is_running(capsys):
    import labkit

    def run_load(n):
        with labkit.serve("select_echo"):
            raise KeyboardInterrupt

    before = set(labkit.running())
    panel(run_load, draw=plot_timeline, controls={"n": IntSlider(3)})
    assert printed_lines(capsys) == [
        "Interrupted: run_load(n=3); no server it started is still running."
    ]
    assert set(labkit.running()) == before


def test_file_clients_progress_counts_connects_and_transfers(tmp_path):
    """The bar moves from the first connect: three steps per client, reported in order."""
    import hashlib
    from pathlib import Path

    import labkit
    from labkit.clients.files import run_file_clients

    data = Path(__file__).resolve().parent.parent / "data"
    sha = hashlib.sha256((data / "lyrics.txt").read_bytes()).hexdigest()
    with labkit.serve("selectors_files", root=data, upload_dir=tmp_path) as srv:
        for mode in ("threads", "selectors"):
            seen = []
            result = run_file_clients(
                srv.address,
                200,
                expected_sha256=sha,
                mode=mode,
                progress=lambda done, total, seen=seen: seen.append((done, total)),
            )
            assert result.served == 200 and not result.errors
            assert {total for _, total in seen} == {600}, mode
            steps = [done for done, _ in seen]
            assert steps == sorted(set(steps)) and steps[-1] == 600 and len(steps) >= 20, mode
