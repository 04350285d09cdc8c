"""Process helpers shared by the tests: is a pid alive, wait until it is dead, read a line.

from processes import pid_alive, wait_dead
"""

from __future__ import annotations

import select
import subprocess
import time


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``pid`` to be gone; True if it is."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def read_line(process: subprocess.Popen, timeout: float = 10.0) -> str:
    """The next line ``process`` writes to its stdout (a text pipe); fails after ``timeout``.
    Meant for a line written after the previous read returned (nothing else buffered)."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no line from pid {process.pid} within {timeout} s"
    return process.stdout.readline()
