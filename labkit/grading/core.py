"""What every battery of the grader shares: the server under test, the checks, the load trace.

A battery is one named check (``Check``) run against a ``Subject``, the server in its child
process. Clients report to one ``LoadTrace`` (connections opened and closed, bytes received,
each battery's start), which ``Grade.timeline()`` draws. Nothing here knows a protocol: the
echo and file batteries (``labkit.grading.echo``, ``labkit.grading.files``) do.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labkit import proc
from labkit.background import ServerHandle

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Check", "Grade", "LoadTrace", "Subject", "shorten", "NotAnswering", "local_paths"]

FD_SLACK = 8  # descriptors a server may hold beyond its baseline (selectors, caches)
RSS_SLACK_KIB = 16 * 1024  # memory it may keep beyond its baseline
IDLE_BUSY_SHARE = 0.3  # of looks with a thread running, no client at all: more never rests


def shorten(data: bytes, keep: int = 40) -> str:
    """``data`` as a short repr: the first ``keep`` bytes, and how many there were."""
    if len(data) <= keep:
        return repr(data)
    return f"{data[:keep]!r}… ({len(data):,} bytes)"


@dataclass
class Check:
    """One battery's outcome: ``passed`` is True, False, or None (not run)."""

    name: str
    passed: bool | None
    detail: str
    failing_input: str = ""  # shortened, as printed
    hint: str = ""
    log: str = ""  # a dead server's last log lines: printed apart, as they vary from run to run

    def lines(self) -> list[str]:
        mark = {True: "✔", False: "✘", None: "·"}[self.passed]
        out = [f"{mark} {self.name}: {self.detail}"]
        if self.passed is False:
            if self.failing_input:
                out.append(f"    failing input: {self.failing_input}")
            if self.hint:
                out.append(f"    hint: {self.hint}")
        return out


class NotAnswering(Exception):
    """The server is gone, or answers no one: the remaining batteries cannot run."""


# -- the load, over time -----------------------------------------------------------------------
class LoadTrace:
    """Connections open and bytes received over time, and when each battery started."""

    def __init__(self) -> None:
        self.zero = time.perf_counter()
        self.events: list[tuple[float, int, int]] = []  # (t, connections +/-, bytes)
        self.marks: list[tuple[float, str]] = []
        self.end = 0.0
        self.died_at: float | None = None  # when the server's process ended, if it did
        self._lock = threading.Lock()

    def _add(self, conns: int, nbytes: int) -> None:
        with self._lock:
            self.events.append((time.perf_counter() - self.zero, conns, nbytes))

    def got(self, nbytes: int) -> None:
        if nbytes:
            self._add(0, nbytes)

    def mark(self, battery: str) -> None:
        """``battery`` starts now (the previous one ends)."""
        self.marks.append((time.perf_counter() - self.zero, battery))
        self.end = self.marks[-1][0]

    def finish(self) -> None:
        """The last battery ends now."""
        self.end = time.perf_counter() - self.zero

    def died(self) -> None:
        """The server's process has ended (the first call counts)."""
        if self.died_at is None:
            self.died_at = time.perf_counter() - self.zero

    def battery_at(self, t: float) -> str:
        """The battery that was running at ``t`` (seconds from zero): the last one started."""
        started = [name for when, name in self.marks if when <= t]
        return started[-1] if started else "warm-up"

    @contextlib.contextmanager
    def connect(
        self, address: tuple[str, int], timeout: float, rcvbuf: int = 0
    ) -> Iterator[socket.socket]:
        """A client connection, counted while it is open; every call on it times out.
        ``rcvbuf`` (bytes) shrinks its receive buffer: the kernel holds little for a slow
        reader, so the server soon finds the socket full, as across a real network."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        self._add(1, 0)
        try:
            yield sock
        finally:
            sock.close()
            self._add(-1, 0)

    def curves(self) -> tuple[list[float], list[int], list[float]]:
        """Times, connections open and MiB received so far, one point per event."""
        times, conns, mib = [0.0], [0], [0.0]
        with self._lock:
            events = sorted(self.events)
        for t, dc, nb in events:
            times.append(t)
            conns.append(conns[-1] + dc)
            mib.append(mib[-1] + nb / (1 << 20))
        return times, conns, mib


# -- the server under test -------------------------------------------------------------------
class Subject:
    """The server being graded: its handle, and what /proc says about it."""

    def __init__(self, handle: ServerHandle, load: LoadTrace) -> None:
        self.handle, self.load = handle, load
        self.address = handle.address
        self.pid = handle.pid
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="grade-watch")
        self._watcher.start()

    def _watch(self) -> None:
        """Note in the load trace the moment the server's process ends. A pidfd becomes
        readable then (pidfd_open(2)); without one, look every 20 ms."""
        try:
            fd: int | None = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            fd = None
        try:
            while not self._done.is_set():
                if fd is not None:
                    gone = bool(select.select([fd], [], [], 0.2)[0])
                else:
                    gone = not self.handle.alive
                    self._done.wait(0 if gone else 0.02)
                if gone:
                    self.load.died()
                    return
        finally:
            if fd is not None:
                os.close(fd)

    def close(self) -> None:
        """Stop watching (before the grader stops the server itself)."""
        self._done.set()
        self._watcher.join(1.0)

    @property
    def alive(self) -> bool:
        return self.handle.alive

    def health(self) -> tuple[int, int]:
        """(descriptors open, resident KiB); (0, 0) once it is gone."""
        try:
            return proc.open_files(self.pid), proc.status_kib(self.pid)
        except (OSError, StopIteration):  # gone, or a zombie (no memory lines)
            return 0, 0

    def busy_share(self, seconds: float, looks: int = 25) -> float:
        """In what share of ``looks`` over ``seconds`` one of its threads was running or ready
        to run (state R), not waiting. A loop that never waits is always R, however busy the
        machine is; a server that waits for its clients almost never is. (Its CPU time would
        say the same on an idle machine, and far less on a crowded one.)"""
        busy = 0
        for _ in range(looks):
            busy += "R" in proc.thread_states(self.pid)
            time.sleep(seconds / looks)
        return busy / looks

    def rss_kib(self) -> int:
        return self.health()[1]

    def death(self) -> str:
        """How it died, in words that are the same on every run: its exit code (or signal) and
        the kind of error its log ends with. The log itself is ``last_log()``."""
        self.handle.child.wait(2)
        self.handle.child.finish_reading(1)
        return died_of(self.handle.child.returncode, self.handle.log(last=12))

    def last_log(self) -> str:
        """Its last log lines, indented, with this machine's folders left out of the paths."""
        tail = local_paths(self.handle.log(last=12) or "(no output)", self.handle.argv)
        return "\n".join("      " + line for line in tail.splitlines())


RESETS = {"ConnectionResetError", "BrokenPipeError", "ConnectionAbortedError"}
EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))\b")


def died_of(code: int | None, log: str) -> str:
    """How a server died, in words that are the same on every run ("it exited with code 1, of
    an uncaught KeyError"): the exception's kind, never its line (a reset can surface at
    ``recv`` on one run and at ``send`` on the next)."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"it was killed by {name}"
    how = f"it exited with code {code}"
    lines = [line for line in log.splitlines() if line.strip()]
    kind = EXCEPTION_LINE.match(lines[-1]) if lines else None
    if not kind:
        return how
    name = kind.group(1).rsplit(".", 1)[-1]
    if name in RESETS:
        return (
            f"{how}, of an OSError it did not catch: a client's reset "
            "(ConnectionResetError or BrokenPipeError)"
        )
    return f"{how}, of an uncaught {name}"


def local_paths(text: str, argv: list[str] | None = None) -> str:
    """``text`` with this machine's folders left out of file paths: the course's files as
    ``labkit/...``, a program's own as its name, the standard library's and installed
    packages' from their own folder down. A report then reads the same on every machine."""
    roots = [str(Path(__file__).resolve().parents[2])]  # the course: labkit/... stays
    if argv and len(argv) > 1 and argv[1].endswith(".py"):
        roots.append(str(Path(argv[1]).resolve().parent))  # the program's folder
    paths = sysconfig.get_paths()
    roots += [paths["purelib"], paths["platlib"], paths["stdlib"], sys.prefix]
    for root in sorted(set(roots), key=len, reverse=True):
        text = text.replace(root.rstrip("/") + "/", "")
    return re.sub(r'File "/[^"]*/([^"/]+)"', r'File "\1"', text)  # any other folder


# -- the result ------------------------------------------------------------------------------
@dataclass
class Grade:
    """What ``labkit.grade`` found: ``passed``, ``checks`` (by name: ``grade["concurrency"]``),
    ``report()`` (stable text: no times, ports, pids or paths; numbers that vary from run to
    run are said as a bound), ``log()`` (a dead server's last log lines) and ``timeline()``."""

    server: str
    protocol: str
    seed: int
    checks: list[Check] = field(default_factory=list)
    load: LoadTrace = field(default_factory=LoadTrace)
    pid: int = 0  # the server's process, stopped when grade() returns (never printed)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r}: {[c.name for c in self.checks]}")

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    def report(self) -> str:
        lines = [f"Grading {self.server} on the {self.protocol} protocol (seed {self.seed})"]
        for check in self.checks:
            lines += check.lines()
        ran = [c for c in self.checks if c.passed is not None]
        if self.passed:
            lines.append(f"All {len(self.checks)} checks passed.")
        else:
            lines.append(
                f"{len(self.failed)} of {len(self.checks)} checks failed"
                + (
                    f", {len(self.checks) - len(ran)} not run."
                    if len(ran) < len(self.checks)
                    else "."
                )
            )
        return "\n".join(lines)

    __str__ = report

    def log(self) -> str:
        """A dead server's last log lines (its traceback), or "". Kept out of ``report()``:
        where it broke can differ from run to run (a reset can surface at ``recv`` or at
        ``send``)."""
        logs = [c.log for c in self.checks if c.log]
        if not logs:
            return ""
        return (
            "The server's last log lines (where it broke on this run; "
            "the line can differ from run to run):\n" + logs[-1]
        )

    def __repr__(self) -> str:
        good = sum(bool(c.passed) for c in self.checks)
        return f"<Grade of {self.server}: {good} of {len(self.checks)} checks passed>"

    def timeline(self, width: float = 9.0) -> Figure:
        """Connections open and MiB received over the whole grading, one shaded band per
        battery (time from the warm-up client, in ms)."""
        from matplotlib.figure import Figure

        times, conns, mib = self.load.curves()
        zero = self.load.marks[0][0] if self.load.marks else 0.0
        end = max(self.load.end, times[-1], self.load.died_at or 0.0)
        times, conns, mib = [*times, end], [*conns, conns[-1]], [*mib, mib[-1]]  # to the end
        ms = [max(t - zero, 0.0) * 1000 for t in times]
        fig = Figure(figsize=(width, 4.4), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.step(ms, conns, where="post", color="#1f77b4")
        top.set_ylabel("connections open")
        bottom.plot(ms, mib, color="#2ca02c")
        bottom.set_ylabel("MiB received")
        bottom.set_xlabel("time (ms)")
        ends = [t for t, _ in self.load.marks[1:]] + [end]
        for i, ((t, name), end) in enumerate(zip(self.load.marks, ends)):
            left, right = (t - zero) * 1000, (end - zero) * 1000
            for ax in (top, bottom):
                ax.axvspan(left, right, color="#f2f2f2" if i % 2 else "#e4e4e4", linewidth=0)
            if i == 0:  # the warm-up client: shaded, not named
                continue
            top.annotate(
                name,
                (left, 1.02 + 0.11 * ((i - 1) % 3)),  # three rows: short batteries sit close
                xycoords=("data", "axes fraction"),
                fontsize=8,
                va="bottom",
            )
        if self.load.died_at is not None:  # the moment its process ended
            died = (self.load.died_at - zero) * 1000
            for ax in (top, bottom):
                ax.axvline(died, color="#d62728", linewidth=2)
            top.annotate("✘ the server died", (died, 0.5), xycoords=("data", "axes fraction"),
                         color="#d62728", fontsize=9, ha="right", xytext=(-4, 0),
                         textcoords="offset points")  # fmt: skip
        top.set_xlim(0, max(ms[-1], 1.0))
        top.set_title(f"{self.server}: the load of each battery", loc="left", fontsize=10, pad=40)
        return fig
