"""The conftest guards really fail a run: after a cell timeout, and on a leftover process."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def run_pytest(path, *args):
    """pytest on a file outside the repo, with the repo's conftest loaded as a plugin."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "conftest",
        "-o",
        "addopts=",
        "-p",
        "no:cacheprovider",
        "-rA",
        *args,
        str(path),
    ]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ASYNCLAB_LEFTOVER_GRACE": "1"},
    )


def test_cells_after_a_timeout_fail_instead_of_xfail(tmp_path):
    nb = nbformat.v4.new_notebook()
    slow = nbformat.v4.new_code_cell("import time\ntime.sleep(60)", execution_count=1)
    after = nbformat.v4.new_code_cell(
        "print('after')",
        execution_count=2,
        outputs=[nbformat.v4.new_output("stream", name="stdout", text="after\n")],
    )
    nb.cells = [slow, after]
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    out = run_pytest(path, "--nbval", "--nbval-current-env", "--nbval-cell-timeout=3")
    assert out.returncode == 1, out.stdout
    assert "2 failed" in out.stdout and "XFAIL" not in out.stdout
    assert "an earlier cell of this notebook timed out" in out.stdout


def test_a_leftover_process_fails_the_run(tmp_path):
    path = tmp_path / "test_leaky.py"
    path.write_text(
        textwrap.dedent("""
        import subprocess
        def test_leaks():
            subprocess.Popen(["sleep", "60"], start_new_session=True)
    """)
    )
    out = run_pytest(path)
    assert out.returncode == 1, out.stdout
    assert "1 passed" in out.stdout
    assert "LEFTOVER PROCESSES" in out.stdout and "sleep 60" in out.stdout
