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


def printed_lines(capsys):
    """What the panel printed (outside a kernel, its Output widget lets prints through)."""
    return [line.replace("\x1b[2K", "") for line in capsys.readouterr().out.splitlines()
            if line.replace("\x1b[2K", "")]


def test_interrupt_shows_one_line_and_stops_the_servers_left_running(capsys):
    """Kernel > Interrupt during a run: no traceback, one line, no server left behind."""
    import labkit
    from ipywidgets import Label
    started = []

    def run_load(n):
        started.append(labkit.serve("select_echo"))      # a run interrupted before its clean-up
        raise KeyboardInterrupt

    box = panel(run_load, draw=plot_timeline, controls={"n": IntSlider(7)})   # must not raise
    assert find(box, Label)[0].value == "interrupted"
    assert printed_lines(capsys) == [
        "Interrupted: run_load(n=7); stopped the servers it left running: select_echo."]
    assert not started[0].alive


def test_interrupt_inside_a_with_block_says_no_server_is_running(capsys):
    import labkit

    def run_load(n):
        with labkit.serve("select_echo"):
            raise KeyboardInterrupt

    before = set(labkit.running())
    panel(run_load, draw=plot_timeline, controls={"n": IntSlider(3)})
    assert printed_lines(capsys) == [
        "Interrupted: run_load(n=3); no server it started is still running."]
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
            result = run_file_clients(srv.address, 200, expected_sha256=sha, mode=mode,
                                      progress=lambda done, total: seen.append((done, total)))
            assert result.served == 200 and not result.errors
            assert {total for _, total in seen} == {600}, mode
            steps = [done for done, _ in seen]
            assert steps == sorted(set(steps)) and steps[-1] == 600 and len(steps) >= 20, mode
