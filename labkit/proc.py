"""What Linux tells about a running process in ``/proc``: the lessons' measurements of a server.

    from labkit import proc
    proc.open_files(srv.pid)          # descriptors it holds (every socket is one)
    proc.status_kib(srv.pid)          # resident memory (VmRSS), or any other kB line of status
    proc.file_offset(srv.pid, "big.bin")   # how far it has read a file it has open
    proc.settled(lambda: proc.open_files(srv.pid))   # a reading once it stops changing
    proc.waiting(srv.pid)             # True if none of its threads is running or ready to run

Linux only (the doctor says which lessons need it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "open_files",
    "threads",
    "status_kib",
    "file_offset",
    "cpu_seconds",
    "thread_states",
    "waiting",
    "settled",
    "wait_until",
]

T = TypeVar("T")


def open_files(pid: int) -> int:
    """How many files (sockets included) the process has open: one entry each in /proc/PID/fd."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{key}:"))


def threads(pid: int) -> int:
    """The process's OS threads (the Threads: line of /proc/PID/status)."""
    return _status(pid, "Threads")


def status_kib(pid: int, key: str = "VmRSS") -> int:
    """A memory line of /proc/PID/status, in KiB: VmRSS (resident now), VmHWM (its peak)..."""
    return _status(pid, key)


def file_offset(pid: int, name: str) -> int | None:
    """How far the process has read its open file ``name``: the pos: line of its fdinfo."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        if os.readlink(f"/proc/{pid}/fd/{fd}").endswith("/" + name):
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                return next(int(line.split()[1]) for line in info if line.startswith("pos:"))
    return None


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_states(pid: int) -> list[str]:
    """The state letter of each of its threads: R running or ready to run, S waiting, ..."""
    states = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except OSError:  # that thread has just ended
            pass
    return states


def waiting(pid: int, looks: int = 3, gap: float = 0.02) -> bool:
    """True if none of its threads was running or ready to run (R) in ``looks`` looks ``gap``
    seconds apart: it has done all it had to do and waits (also True once it has gone). A
    server that still has work is R even on a crowded machine, where its CPU time would stall."""
    for i in range(looks):
        if i:
            time.sleep(gap)
        try:
            if "R" in thread_states(pid):
                return False
        except OSError:
            return True
    return True


def settled(read: Callable[[], T], pause: float = 0.2, timeout: float = 10.0) -> T:
    """``read()`` once it gives the same answer twice in a row, ``pause`` seconds apart (a
    server closes sockets and sends bytes in its own time), or its last answer at ``timeout``."""
    deadline, last = time.monotonic() + timeout, object()
    while (now := read()) != last and time.monotonic() < deadline:
        last = now
        time.sleep(pause)
    return now


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition()`` until it is true (then True), or until ``timeout`` (then False)."""
    deadline = time.monotonic() + timeout
    while not (met := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return met
