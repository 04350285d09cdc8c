"""pytest configuration shared by the unit tests and the notebooks (nbval).

Two guards make a green run mean something, and the lessons' claims are strict here:

* nbval marks every cell after a timed-out cell as "xfail", and the run can then exit 0 with a
  broken notebook. We turn those into failures.
* Every process started during the run (servers, kernels, scripts, JupyterLab) carries a marker
  in its environment. If any of them is still alive when the run ends, the run fails.
* The unit tests listed in ``.ci/slow-tests.txt`` (each took a second or more) are marked
  ``slow``, so the README's test command stays short; CI runs them with ``-m slow``.
* ``LABKIT_STRICT_CLAIMS=1`` is set for the whole run (nbval's kernels inherit it): a claim
  that does not hold raises ``ClaimFailed`` and fails its cell instead of only printing ``✘``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SANITIZE = ROOT / "tests" / "nbval-sanitize.cfg"
MARKER = "ASYNCLAB_TEST_RUN"
SLOW_TESTS = ROOT / ".ci" / "slow-tests.txt"  # measured: each took a second or more


def pytest_configure(config):
    # Children (kernels, servers, scripts) inherit this, so we can find them at the end.
    os.environ[MARKER] = uuid.uuid4().hex
    # A lesson's claim that does not hold raises under test (labkit.claims), so nbval fails on
    # its cell; a student in JupyterLab, without this variable, sees the ✘ line and goes on.
    os.environ["LABKIT_STRICT_CLAIMS"] = "1"
    # Lessons that copy files into the student's my-work/ (11's locustfile, 12's skeletons) get a
    # fresh folder: the instructors' check never runs, nor overwrites, a student's own copy.
    work = tempfile.mkdtemp(prefix="asynclab-test-work-")
    os.environ["ASYNCLAB_WORK_DIR"] = work
    config.add_cleanup(lambda: shutil.rmtree(work, ignore_errors=True))
    # nbval's kernels talk over Unix sockets, not five TCP ports each (labkit/ipc_kernels.py)
    import nbval.kernel

    from labkit.ipc_kernels import IPCKernelManager

    nbval.kernel.KernelManager = IPCKernelManager
    # The sanitize file applies however pytest was called (`pytest`, `pytest --nbval notebooks/`).
    if hasattr(config.option, "nbval_sanitize_with") and not config.option.nbval_sanitize_with:
        config.option.nbval_sanitize_with = str(SANITIZE)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    """Mark the unit tests listed in .ci/slow-tests.txt ``slow``: plain ``pytest`` leaves them
    out (pyproject.toml), ``pytest -m slow tests/`` runs them, CI always does."""
    lines = SLOW_TESTS.read_text().splitlines() if SLOW_TESTS.exists() else []
    slow = {line for line in lines if line and not line.startswith("#")}
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    notebook = getattr(item, "parent", None)
    if (
        call.when == "call"
        and getattr(notebook, "timed_out", False)
        and (hasattr(report, "wasxfail") or report.passed)
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid}: an earlier cell of this notebook timed out, so this "
            "cell's result means nothing (nbval alone would not count it as failed)."
        )
        if hasattr(report, "wasxfail"):
            del report.wasxfail


def _our_processes(run_id: str) -> list[tuple[int, str]]:
    """Live processes whose environment carries this run's marker (except this one)."""
    found, needle = [], f"{MARKER}={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z":
            found.append((int(entry.name), cmd.strip()[:160]))
    return found


def pytest_sessionfinish(session, exitstatus):
    run_id = os.environ.get(MARKER)
    if not run_id or not Path("/proc/self/environ").exists():
        return
    from labkit import stop_all
    from labkit.ipc_kernels import remove_leftover_sockets

    stop_all()  # ours, in this process: stopped by design
    grace = float(os.environ.get("ASYNCLAB_LEFTOVER_GRACE", "10"))
    deadline = time.monotonic() + grace  # kernels and servers get a moment to exit
    while (left := _our_processes(run_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    remove_leftover_sockets(run_id)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = "\n".join(f"  pid {pid}: {cmd}" for pid, cmd in left)
        message = f"processes started by this test run are still running:\n{lines}"
        if reporter:
            reporter.write_sep("=", "LEFTOVER PROCESSES", red=True)
            reporter.write_line(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        for pid, _ in left:  # don't leave them for the next run either
            try:
                os.kill(pid, 9)
            except OSError:
                pass
