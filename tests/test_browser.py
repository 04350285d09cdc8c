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
make this pass. Chromium comes from Debian (`apt-get install chromium`); Playwright is pointed at
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


def run_notebook_in_browser(browser, lab, relpath: str, screenshot: Path) -> list[str]:
    """Open, run all, check widgets; return the errors seen (empty when all is well)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_notebook(page, lab, relpath)
        run_all(page)
        errors = error_outputs(page, relpath)
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
