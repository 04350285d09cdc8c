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

from labkit import limits

__all__ = ["doctor", "DoctorReport", "Check"]

PACKAGES = ["gevent", "greenlet", "jupyterlab", "ipykernel", "ipywidgets", "matplotlib"]


@dataclass
class Check:
    name: str
    value: str
    ok: bool
    advice: str = ""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        failed = [c.name for c in self.checks if not c.ok]
        if not failed:
            return f"all {len(self.checks)} checks passed: this machine is ready for the course"
        return f"{len(failed)} of {len(self.checks)} checks failed: {', '.join(failed)}"

    def __str__(self) -> str:
        rows = [f"  {'ok ' if c.ok else 'BAD'}  {c.name:<12} {c.value}"
                + (f"\n       -> {c.advice}" if c.advice else "") for c in self.checks]
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


def _open_files() -> Check:
    soft, hard = limits.raise_open_file_limit()
    clients = limits.max_clients()
    ok = clients >= 1000
    advice = "" if ok else "raise it: `ulimit -n 20000` before starting Jupyter"
    return Check("open files", f"{soft:,} (hard {hard:,}): up to ~{clients:,} clients per process",
                 ok, advice)


def _live_echo() -> Check:
    from labkit.background import serve
    from labkit.clients.echo import echo_roundtrip
    payload = bytes(range(256)) * 256                   # 64 KiB
    try:
        with serve("selectors_echo") as srv:
            back = echo_roundtrip(srv.address, payload, timeout=10)
        ok = back == payload
        return Check("echo server", f"started, echoed {len(back):,} bytes "
                     f"{'intact' if ok else 'CORRUPTED'}, stopped", ok)
    except Exception as exc:                            # report, don't crash the doctor
        return Check("echo server", f"failed: {exc}".splitlines()[0], False, str(exc))


def doctor() -> DoctorReport:
    """Run every check and return the report (``print`` it for a table)."""
    report = DoctorReport([_python(), *map(_package, PACKAGES), _selector(), _open_files()])
    report.checks.append(_live_echo())
    return report
