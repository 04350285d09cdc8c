"""The course in a real browser: JupyterLab in headless Chromium, driven by Playwright.

nbval proves the kernel side. This proves what a student sees: every notebook opens, runs all
its cells through the Run menu without an error, and every widget panel redraws its figure when
a control changes. A screenshot per notebook is saved under artifacts/browser/.

JupyterLab runs as a student's does: without ``LABKIT_STRICT_CLAIMS``, so a claim that does not
hold prints its ``✘`` line and the lesson goes on. The test fails on any such line, and on any
traceback, naming the cell. A ``✘`` line that the stored notebook shows in the same cell is
part of the lesson (lesson 12 grades a deliberately broken server) and is not a failure.

It runs every lesson a second time, so the default ``pytest`` leaves it out (marker
``browser``, deselected in pyproject.toml); run it with ``pytest -m browser tests/test_browser.py``.
CI always does.

The notebooks are served from a temporary copy with outputs stripped, so stored outputs can never
make this pass. The last tests check what a student meets on opening and closing a lesson (the
stored widget panels, the kernel shut down with its tab), in a JupyterLab of their own.

Chromium comes from Debian (`apt-get install chromium`); Playwright is pointed at
it and never downloads a browser. Without Chromium the test is skipped (on a laptop) or fails
(in CI, where ASYNCLAB_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
RUN_TIMEOUT_MS = 120_000


def _require_chromium():
    if CHROMIUM:
        return
    message = (
        "Chromium is not installed, so the browser test cannot run. Install it with "
        "`sudo apt-get install chromium` (Debian/Ubuntu); Playwright uses it as is."
    )
    if os.environ.get("ASYNCLAB_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message)


def _strip_outputs(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, dst)


class JupyterLab:
    """`jupyter lab` on 127.0.0.1, a free port and a random token, serving ``root``."""

    def __init__(self, root: Path, runtime: Path) -> None:
        self.token = uuid.uuid4().hex
        env = {
            **{k: v for k, v in os.environ.items() if k != "LABKIT_STRICT_CLAIMS"},
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "JUPYTER_CONFIG_DIR": str(runtime / "config"),
            # the course's settings overrides, even when not installed into the venv
            "JUPYTER_CONFIG_PATH": str(ROOT / "labkit" / "jupyter"),
        }
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            "--allow-root",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={runtime / 'user-settings'}",
            f"--LabApp.workspaces_dir={runtime / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        self.log = open(runtime / "jupyterlab.log", "wb")
        self.process = subprocess.Popen(
            cmd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.url = self._wait_for_url(runtime)

    def _wait_for_url(self, runtime: Path, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{self.log_tail()}")
            for info in runtime.glob("jpserver-*.json"):
                data = json.loads(info.read_text() or "{}")
                if data.get("pid") == self.process.pid and data.get("port"):
                    url = f"http://127.0.0.1:{data['port']}"
                    try:
                        urllib.request.urlopen(f"{url}/api/status?token={self.token}", timeout=2)
                        return url
                    except OSError:
                        pass
            time.sleep(0.2)
        raise RuntimeError(f"jupyter lab did not start in {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def api(self, method: str, path: str) -> object:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def stop(self) -> None:
        try:
            self.shutdown_kernels()
        except OSError:
            pass
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if self.process.poll() is None:
                try:
                    os.killpg(self.process.pid, sig)
                    self.process.wait(wait)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _require_chromium()
    root = tmp_path_factory.mktemp("course")
    (root / "notebooks").mkdir()
    for name in NOTEBOOKS:
        _strip_outputs(ROOT / "notebooks" / f"{name}.ipynb", root / "notebooks" / f"{name}.ipynb")
    if (ROOT / "data").exists():
        shutil.copytree(ROOT / "data", root / "data")
    server = JupyterLab(root, tmp_path_factory.mktemp("runtime"))
    server.root = root
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def open_notebook(page, lab, relpath: str) -> None:
    page.goto(f"{lab.url}/lab/tree/{relpath}?token={lab.token}&reset")
    # The status bar names the kernel and its state; "Idle" there means the kernel exists
    # (the toolbar's indicator says idle before it does).
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=60_000)


def run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # Done when no cell is queued or running ("[*]"), and either every code cell has run or
    # an error stopped the run.
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                .map(p => p.textContent);
            if (!prompts.length || prompts.some(t => t.includes('[*]'))) return false;
            const failed = [...document.querySelectorAll('.jp-OutputArea-output')]
                .some(e => e.textContent.includes('Traceback'));
            return failed || prompts.every(t => /\\[\\d+\\]/.test(t));
        }""",
        timeout=RUN_TIMEOUT_MS,
    )
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=RUN_TIMEOUT_MS)


# Every output of every cell, in notebook order: (cell index, MIME type, text). Widgets' own
# output areas are inside their cell, so what they print is found too.
OUTPUTS_JS = """cells => cells.flatMap((cell, i) =>
    [...cell.querySelectorAll('.jp-OutputArea-output')].map(out =>
        [i, out.getAttribute('data-mime-type') || '', out.textContent || '']))"""
TEXT_TYPES = ("application/vnd.jupyter.stdout", "application/vnd.jupyter.stderr", "text/plain")


def claim_failures(text: str) -> list[str]:
    """Each ``✘`` line of an output, with the indented lines that follow it (the numbers)."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.lstrip().startswith("✘"):
            current = [line.strip()]
            found.append(current)
        elif current is not None and line[:1].isspace() and line.strip():
            current.append(line.strip())
        else:
            current = None
    return [" / ".join(lines) for lines in found]


def shown_on_purpose(stored, index: int) -> set[str]:
    """The ``✘`` lines the stored notebook shows in cell ``index`` (nbval checks them)."""
    if stored is None or index >= len(stored.cells) or stored.cells[index].cell_type != "code":
        return set()
    text = "".join(o.get("text", "") for o in stored.cells[index].get("outputs", []))
    return {sanitize(line) for line in claim_failures(text)}


def sanitize(text: str) -> str:
    """Mask what varies (times, ports) as nbval does, with the course's sanitize file."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "tests" / "nbval-sanitize.cfg").read_text())
    for regex, replace in dict(patterns).items():
        text = re.sub(regex, replace, text)
    return text


def cell_name(stored, index: int) -> str:
    if stored is None or index >= len(stored.cells):
        return f"cell {index + 1}"
    first = next((ln for ln in stored.cells[index].source.splitlines() if ln.strip()), "")
    return f"cell {index + 1} ({first.strip()[:60]!r})"


def error_outputs(page, relpath: str) -> list[str]:
    """Every traceback and every ``✘`` line the page shows, each named by its cell."""
    stored_path = ROOT / relpath
    stored = nbformat.read(stored_path, as_version=4) if stored_path.exists() else None
    problems = []
    for index, mime, text in page.eval_on_selector_all(".jp-Notebook .jp-Cell", OUTPUTS_JS):
        if mime == "application/vnd.jupyter.stderr" and "Traceback" in text:
            problems.append(f"{cell_name(stored, index)} raised:\n{text.strip()}")
        if mime in TEXT_TYPES:
            expected = shown_on_purpose(stored, index)
            problems += [
                f"{cell_name(stored, index)} printed: {line}"
                for line in claim_failures(text)
                if sanitize(line) not in expected
            ]
    return problems


def widget_panels(page):
    """Widget panels with a Run button (the course's panels all have one)."""
    return page.locator(".jp-OutputArea-output .widget-vbox:has(button:has-text('Run'))")


def expected_panels(relpath: str) -> int:
    """How many widget panels the notebook's code creates (calls of labkit's ``panel``)."""
    nb = nbformat.read(ROOT / relpath, as_version=4) if (ROOT / relpath).exists() else None
    if nb is None:
        return 0
    return sum(c.source.count("panel(") for c in nb.cells if c.cell_type == "code")


def check_panel_redraws(page, panel) -> None:
    """Change the panel's first slider, press Run, and wait for its figure to change."""
    images = panel.locator("img")
    before = images.first.get_attribute("src") if images.count() else None
    slider = panel.locator(".widget-slider .noUi-handle, .widget-slider .ui-slider-handle")
    if slider.count():
        slider.first.focus()
        for _ in range(3):
            slider.first.press("ArrowLeft")
    panel.locator("button:has-text('Run')").first.click()
    page.wait_for_function(
        "([el, before]) => { const img = el.querySelector('img');"
        " return img && img.getAttribute('src') !== before; }",
        arg=[panel.element_handle(), before],
        timeout=RUN_TIMEOUT_MS,
    )


def run_notebook_in_browser(
    browser, lab, relpath: str, screenshot: Path, must_show: tuple[str, ...] = ()
) -> list[str]:
    """Open, run all, check widgets; return the errors seen (empty when all is well), and a
    line for each text of ``must_show`` that no output shows."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_notebook(page, lab, relpath)
        run_all(page)
        errors = error_outputs(page, relpath)
        shown = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        errors += [f"{relpath}: no output shows {t!r}" for t in must_show if t not in shown]
        if not errors:
            expected = expected_panels(relpath)
            rendered = widget_panels(page).count()
            assert rendered == expected, (
                f"{relpath}: {rendered} widget panels rendered, {expected} expected"
            )
            for i in range(expected):
                panel = widget_panels(page).nth(i)
                panel.scroll_into_view_if_needed()
                check_panel_redraws(page, panel)
        return errors
    finally:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        page.close()
        lab.shutdown_kernels()


@pytest.mark.browser
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(browser, lab, name):
    started = time.monotonic()
    errors = run_notebook_in_browser(
        browser, lab, f"notebooks/{name}.ipynb", ARTIFACTS / f"{name}.png"
    )
    assert not errors, f"{name} shows an error in JupyterLab:\n" + "\n".join(errors)
    print(f"{name}: ran in the browser in {time.monotonic() - started:.1f} s")


@pytest.mark.browser
def test_a_chinese_lesson_runs_and_its_exercises_speak_chinese(browser, lab):
    """The Chinese lesson's code is the English one; run in its folder (zh), as
    `python -m labkit lab --lang zh` places it, its exercises answer in Chinese."""
    name = "02_greenlet"
    _strip_outputs(ROOT / "notebooks" / "zh" / f"{name}.ipynb",
                   lab.root / "notebooks" / "zh" / f"{name}.ipynb")  # fmt: skip
    errors = run_notebook_in_browser(
        browser, lab, f"notebooks/zh/{name}.ipynb", ARTIFACTS / f"zh-{name}.png",
        must_show=("练习 1：还没有答案",),
    )  # fmt: skip
    assert not errors, f"zh/{name} in JupyterLab:\n" + "\n".join(errors)


@pytest.mark.browser
def test_a_failed_claim_and_a_broken_cell_fail_with_their_text(browser, lab):
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("print('fine')"),
        nbformat.v4.new_code_cell(
            "import labkit\n"
            "labkit.claim('a deliberately false claim', False, measured='2 s, not 1 s')"
        ),
        nbformat.v4.new_code_cell("raise RuntimeError('deliberately broken cell')"),
    ]
    nbformat.write(nb, lab.root / "notebooks" / "zz_broken.ipynb")
    try:
        errors = run_notebook_in_browser(
            browser, lab, "notebooks/zz_broken.ipynb", ARTIFACTS / "zz_broken.png"
        )
    finally:
        (lab.root / "notebooks" / "zz_broken.ipynb").unlink()
    # The claim printed its ✘ line and did not raise (a student's JupyterLab is not strict), so
    # Run All went on to the third cell, whose traceback is reported too.
    assert len(errors) == 2, errors
    assert errors[0].startswith("cell 2 printed: ✘ a deliberately false claim"), errors
    assert "2 s, not 1 s" in errors[0]
    assert errors[1].startswith("cell 3 raised:"), errors
    assert "RuntimeError: deliberately broken cell" in errors[1]


def test_a_claim_failure_keeps_its_numbers_and_ends_at_the_next_plain_line():
    text = "✔ fine [one run]\n✘ too slow [one run]\n   measured: 3 s\n   load 2.0\nafter\n"
    assert claim_failures(text) == ["✘ too slow [one run] / measured: 3 s / load 2.0"]
    assert claim_failures("✔ all good\n") == []


def test_the_stored_grading_report_is_shown_on_purpose_and_a_new_failure_is_not():
    name = "notebooks/12_capstone.ipynb"
    stored = nbformat.read(ROOT / name, as_version=4)
    with_failures = [
        i
        for i, cell in enumerate(stored.cells)
        if cell.cell_type == "code"
        and claim_failures("".join(o.get("text", "") for o in cell.get("outputs", [])))
    ]
    assert with_failures, f"{name} no longer shows a failing grading report"
    index = with_failures[0]
    text = "".join(o.get("text", "") for o in stored.cells[index].outputs)
    assert all(sanitize(f) in shown_on_purpose(stored, index) for f in claim_failures(text))
    assert sanitize("✘ a claim that failed in the browser") not in shown_on_purpose(stored, index)


# --- A student's JupyterLab: the course's settings, the lessons as prepare() copies them ------
#
# These tests check what the course's Jupyter settings and lesson copies do for a student, so
# they run against a JupyterLab of their own: the lessons copied into my-work/ by
# labkit.workspace.prepare() (stored outputs and widget state kept, as a student gets them) and
# a fresh Jupyter data folder, so that no signature left by an earlier run (the notebook trust
# database lives there) can make a lesson look trusted.

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def stored_widget_views(name: str) -> int:
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    return sum(
        WIDGET_VIEW in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def stored_panel_figures(name: str) -> int:
    """How many of the lesson's stored widget outputs (Output widgets) hold a figure."""
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return sum(
        any("image/png" in out.get("data", {}) for out in model["state"].get("outputs", []))
        for model in state.values()
        if model["model_name"] == "OutputModel"
    )


LESSONS_WITH_PANELS = [name for name in NOTEBOOKS if stored_widget_views(name)]


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    _require_chromium()
    from labkit import workspace

    root = tmp_path_factory.mktemp("student")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_DATA_DIR", str(tmp_path_factory.mktemp("jupyter-data")))
        workspace.prepare(root / "my-work")
        server = JupyterLab(root, tmp_path_factory.mktemp("student-runtime"))
    server.root = root
    yield server
    server.stop()


def close_tab(page, title: str) -> None:
    """Close a notebook's tab with its close icon, as a student does. A notebook with unsaved
    changes (one that has run) first asks "Save your work?": the student saves."""
    from playwright.sync_api import TimeoutError as NoDialog

    tab = page.locator(".lm-DockPanel .lm-TabBar-tab", has_text=title)
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(timeout=3_000)
    except NoDialog:  # nothing to save, no question asked
        pass
    else:
        assert "Save" in dialog.inner_text(), dialog.inner_text()
        dialog.locator("button", has_text="Save").last.click()
    tab.wait_for(state="detached", timeout=10_000)


def running(process) -> bool:
    """Whether a process still runs (an exited one its parent has not reaped yet does not)."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def notebook_with_one_cell(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)


@pytest.mark.browser
def test_closing_a_lessons_tab_shuts_down_its_kernel_and_its_servers(browser, student_lab):
    import psutil

    lab = student_lab
    tracker = lab.api("GET", "/lab/api/settings/@jupyterlab/notebook-extension:tracker")
    assert tracker["schema"]["properties"]["kernelShutdown"]["default"] is True, (
        "JupyterLab does not have the course's kernelShutdown default (labkit/jupyter/labconfig)"
    )
    name = "zz_close_me.ipynb"
    notebook_with_one_cell(
        lab.root / "my-work" / name,
        'import labkit\nlabkit.setup()\nsrv = labkit.serve("selectors_echo")\n'
        'print(f"teaching server pid {srv.pid}")',
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    server = None
    try:
        open_notebook(page, lab, f"my-work/{name}")
        run_all(page)
        printed = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        match = re.search(r"teaching server pid (\d+)", printed)
        assert match, f"the cell printed no server pid: {printed!r}"
        server = psutil.Process(int(match.group(1)))
        assert "labkit.servers.selectors_echo" in " ".join(server.cmdline())
        sessions = lab.api("GET", "/api/sessions")
        (kernel,) = [s["kernel"]["id"] for s in sessions if s["path"] == f"my-work/{name}"]

        close_tab(page, name)

        closed = time.monotonic()
        while time.monotonic() < closed + 30:
            kernels = [k["id"] for k in lab.api("GET", "/api/kernels")]
            if kernel not in kernels and not running(server):
                print(f"kernel and server gone {time.monotonic() - closed:.1f} s after the tab")
                break
            time.sleep(0.2)
        assert kernel not in [k["id"] for k in lab.api("GET", "/api/kernels")], (
            "the kernel still runs 30 s after its tab was closed"
        )
        assert not running(server), "the teaching server outlived its kernel by 30 s"
    finally:
        page.close()
        lab.shutdown_kernels()
        if server is not None and running(server):  # only when the test failed
            server.kill()
        (lab.root / "my-work" / name).unlink(missing_ok=True)


@pytest.mark.browser
@pytest.mark.parametrize("name", LESSONS_WITH_PANELS)
def test_a_freshly_opened_lesson_shows_its_widget_panels(browser, student_lab, name):
    lab = student_lab
    relpath = f"my-work/{name}.ipynb"
    model = lab.api("GET", f"/api/contents/{relpath}")
    untrusted = [
        i
        for i, cell in enumerate(model["content"]["cells"])
        if cell["cell_type"] == "code" and not cell["metadata"].get("trusted")
    ]
    assert not untrusted, (
        f"{relpath} opens untrusted (labkit.workspace.prepare() did not sign it): JupyterLab "
        "shows each widget panel as its plain-text stand-in, VBox(children=...)"
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_notebook(page, lab, relpath)
        panels = widget_panels(page)
        expected = stored_widget_views(name)
        deadline = time.monotonic() + 60  # the assertions below say what was shown instead
        while panels.count() < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        errors = page.get_by_text("Error displaying widget").all_text_contents()
        assert not errors, f"{name}: {errors}"
        shown = [
            text[:80]
            for _, mime, text in page.eval_on_selector_all(".jp-Notebook .jp-Cell", OUTPUTS_JS)
            if text.startswith("VBox(")
        ]
        assert panels.count() == expected, (
            f"{name}: {panels.count()} of its {expected} stored widget panels drawn; "
            f"shown instead: {shown}"
        )
        controls = panels.locator(".widget-slider, .widget-dropdown")
        assert controls.count() >= expected, f"{name}: the panels have no sliders or menus"
        figures = stored_panel_figures(name)
        assert panels.locator("img").count() >= figures, (
            f"{name}: the panels do not show the {figures} figure(s) stored in their state"
        )
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if widget_panels(page).count():
            widget_panels(page).first.scroll_into_view_if_needed()
            page.wait_for_timeout(1_000)  # cells scrolled into view are painted a moment later
        page.screenshot(path=str(ARTIFACTS / f"fresh_{name}.png"))
        page.close()
        lab.shutdown_kernels()


@pytest.mark.browser
def test_a_notebook_run_and_saved_reopens_with_its_widgets(browser, student_lab):
    """A student runs a panel, JupyterLab saves the notebook (by hand or autosave), and they
    open it again later: the panel must be drawn from the state saved with it, not read
    "Error displaying widget: model not found" (the widget views in the outputs are the new
    run's; only saveState writes their models into the notebook)."""
    lab = student_lab
    name = "zz_saved_panel.ipynb"
    notebook_with_one_cell(
        lab.root / "my-work" / name,
        "from ipywidgets import Button, IntSlider, VBox\n"
        "VBox([IntSlider(7, description='clients'), Button(description='Run')])",
    )
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, lab, f"my-work/{name}")
            run_all(page)
            assert page.locator(".widget-slider").count() == 1
            close_tab(page, name)
        finally:
            page.close()
            lab.shutdown_kernels()
        saved = nbformat.read(lab.root / "my-work" / name, as_version=4)
        views = [o.data[WIDGET_VIEW]["model_id"] for o in saved.cells[0].outputs if "data" in o]
        assert len(views) == 1, "closing the tab did not save the run (no Save your work?)"
        (view,) = views
        state = saved.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
        assert view in state, "JupyterLab saved the widget's view without its state (saveState)"

        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, lab, f"my-work/{name}")
            page.locator(".jp-OutputArea-output .widget-slider").wait_for(timeout=30_000)
            assert not page.get_by_text("Error displaying widget").count()
            assert page.locator(".widget-slider .widget-readout").inner_text().strip() == "7"
        finally:
            page.close()
            lab.shutdown_kernels()
    finally:
        (lab.root / "my-work" / name).unlink(missing_ok=True)
