"""Check that this machine can run the course: versions, limits, and a live echo server.

python -m labkit doctor          # from a shell
print(labkit.doctor())           # from a notebook
"""

from __future__ import annotations

import importlib.metadata
import platform
import selectors
import sys
from dataclasses import dataclass, field

from labkit import cpus, limits

__all__ = ["doctor", "DoctorReport", "Check"]

PACKAGES = ["gevent", "greenlet", "jupyterlab", "ipykernel", "ipywidgets", "matplotlib"]


@dataclass
class Check:
    name: str
    value: str
    ok: bool
    advice: str = ""
    note: str = ""  # true and worth knowing, but nothing is broken


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        """One line (two when lessons must run fewer clients here: the first says so)."""
        failed = [c.name for c in self.checks if not c.ok]
        scaled = [c.note for c in self.checks if c.note.startswith(limits.SCALED_DOWN)]
        if not failed:
            return "\n".join(
                [
                    *scaled,
                    f"all {len(self.checks)} checks passed: this machine is ready for the course",
                ]
            )
        return f"{len(failed)} of {len(self.checks)} checks failed: {', '.join(failed)}"

    def __str__(self) -> str:
        rows = [
            f"  {'ok ' if c.ok else 'BAD'}  {c.name:<12} {c.value}"
            + (f"\n       -> {c.advice}" if c.advice else "")
            + (f"\n       note: {c.note}" if c.note else "")
            for c in self.checks
        ]
        return "\n".join(["asynclab doctor", *rows, self.verdict])


def _package(name: str) -> Check:
    try:
        return Check(name, importlib.metadata.version(name), True)
    except importlib.metadata.PackageNotFoundError:
        return Check(name, "not installed", False, "pip install -r requirements.txt")


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", platform.python_version(), ok, "" if ok else "the course needs 3.11+")


def _selector() -> Check:
    name = selectors.DefaultSelector.__name__
    return Check("selector", f"{name} (selectors.DefaultSelector)", True)


# The most sockets one lesson holds at once in one process (lesson 08's biggest panel run).
LARGEST_RUN = 10_000


def _open_files() -> Check:
    """What the kernel was given, not what labkit made of it: a container's 1,024 shows here."""
    soft0, hard0 = limits.STARTED_WITH
    soft, hard = limits.raise_open_file_limit()
    given = f"started with {soft0:,} (hard {hard0:,})"
    if soft < 1024:
        return Check(
            "open files",
            given,
            False,
            "the course needs at least 1,024: `ulimit -n 4096` before starting Jupyter",
        )
    note = ""
    if soft0 < soft:
        note = (
            f"labkit raised this process's soft limit to {soft:,}, and every server and "
            f"script it starts raises its own: nothing to do. A program of your own must do "
            f"the same (resource.setrlimit) or run after `ulimit -n {soft}`."
        )
    if hard < LARGEST_RUN + 2 * limits.RESERVED_FDS:
        note = (
            f"{limits.SCALED_DOWN} the hard limit is {hard:,} open files, so the lessons "
            f"that hold thousands of sockets run with fewer clients and say so. For the "
            f"full runs, raise it (Docker: --ulimit nofile=65536:65536; on a JupyterHub, "
            f"the container runtime's limit: see docs/classroom.md)."
        )
    return Check(
        "open files",
        f"{given}; now {soft:,}: up to ~{limits.max_clients():,} clients per process",
        True,
        note=note,
    )


LINUX_ONLY = "lesson 07 (epoll) and the /proc measurements of lessons 06-08"


def _platform() -> Check:
    system = platform.system()
    value = f"{system} {platform.release()} ({platform.machine()})"
    if system == "Linux":
        return Check("platform", value, True)
    advice = (
        f"{LINUX_ONLY} need Linux. On Windows, run the course in WSL2 (Ubuntu); on macOS, "
        f"in a Linux container (Docker) or a Linux VM; everything else runs as is."
    )
    return Check(
        "platform",
        value,
        system == "Darwin",
        advice if system != "Darwin" else "",
        note=advice if system == "Darwin" else "",
    )


def _cpus() -> Check:
    """The CPUs the lessons' timing claims really get: a hub's quota hides behind the affinity."""
    got = cpus.cpu_limits()
    quota = "none" if got.quota is None else f"{got.quota:g} CPU"
    value = (
        f"{got.cores} cores, affinity {got.affinity}, quota {quota}: "
        f"{got.usable:g} usable; load average {got.load1:.1f} now"
    )
    notes = []
    if got.quota is not None and got.quota < got.affinity:
        notes.append(
            f"a CPU quota of {got.quota:g} CPU (a hub's or container's CPU limit) caps this "
            f"kernel although it sees {got.affinity} cores; the lessons count {got.usable:g}."
        )
    if got.usable < 2:
        notes.append(
            "with under two usable CPUs, lessons 10 and 11 show what one CPU does instead of a "
            "parallel speed-up, and every timed lesson runs slower."
        )
    if got.load1 > 0.5 * got.usable:
        notes.append(
            "the machine is busy right now: timing claims take more rounds, and one may fail "
            "(✘ says so); re-run that cell when the machine is quieter."
        )
    return Check("cpus", value, True, note=" ".join(notes))


def _live_echo() -> Check:
    from labkit.background import serve
    from labkit.clients.echo import echo_roundtrip

    payload = bytes(range(256)) * 256  # 64 KiB
    try:
        with serve("selectors_echo") as srv:
            back = echo_roundtrip(srv.address, payload, timeout=10)
        ok = back == payload
        return Check(
            "echo server",
            f"started, echoed {len(back):,} bytes {'intact' if ok else 'CORRUPTED'}, stopped",
            ok,
        )
    except Exception as exc:  # report, don't crash the doctor
        return Check("echo server", f"failed: {exc}".splitlines()[0], False, str(exc))


def doctor() -> DoctorReport:
    """Run every check and return the report (``print`` it for a table)."""
    report = DoctorReport(
        [_python(), _platform(), *map(_package, PACKAGES), _selector(), _cpus(), _open_files()]
    )
    report.checks.append(_live_echo())
    return report
