#!/usr/bin/env python3
"""Run a command the way a crowded classroom machine would run it.

    python3 .ci/classroom.py quota     -- .venv/bin/python -m pytest notebooks/
    python3 .ci/classroom.py crowded   -- .venv/bin/python -m pytest notebooks/
    python3 .ci/classroom.py neighbour -- .venv/bin/python -m pytest -m browser tests/

Modes (each prints one line saying what it set):

quota
    One CPU of CFS quota, as a JupyterHub with ``singleuser.cpu.limit: 1`` gives a kernel, and a
    soft open-file limit of 1,024 (Docker's default). The command runs in a new cgroup that its
    children inherit; the affinity mask still shows every core, so only code that reads the
    quota knows it has one CPU. Needs root and a writable cgroup (v1 ``cpu`` or v2); without
    one, the runner says so and pins the command to core 0 instead (``taskset -c 0``).
crowded
    A hard open-file limit of 1,024 (some hubs set it), beside a neighbour.
neighbour
    Beside a neighbour only: the limits are left as they are.

A neighbour is a second student's kernel on the same cores: a loop of ``pytest notebooks/``
in reverse lesson order, started before the command and stopped (its whole process group and
everything it started) when the command ends. Its output goes to a log file and is not judged.

The exit status is the command's. A command that leaves a process behind fails (status 1),
and the runner stops that process: nothing outlives a run, and no cgroup is left either.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEIGHBOUR_LOG = ROOT / "artifacts" / "classroom"
OPEN_FILES = 1024
PERIOD_US = 100_000  # the kernel's default CFS period; a quota of one period is one CPU
MARK = "ASYNCLAB_CLASSROOM"  # every process a run starts carries it, so none can hide
GRACE = 5.0  # seconds a finished command's children get to exit by themselves


# -- finding and making a one-CPU cgroup ---------------------------------------------------------
@dataclass
class CpuHierarchy:
    version: int  # 1 or 2
    directory: Path  # our own cgroup in the hierarchy that has the cpu controller


def find_cpu_hierarchy(mountinfo: str, proc_cgroup: str) -> CpuHierarchy | None:
    """Where this process's cgroup is, in a hierarchy with the cpu controller (v1 first).

    ``mountinfo`` is /proc/self/mountinfo and ``proc_cgroup`` is /proc/self/cgroup, as text.
    """
    ours: dict[str, str] = {}  # controller ("" for v2) -> our path in that hierarchy
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            ours[controller] = path
    v2 = None
    for line in mountinfo.splitlines():
        fields = line.split()
        dash = fields.index("-")
        root, mount_point, fstype, options = fields[3], fields[4], fields[dash + 1], fields[-1]
        if fstype == "cgroup" and "cpu" in options.split(",") and "cpu" in ours:
            return CpuHierarchy(1, _inside(Path(mount_point), root, ours["cpu"]))
        if fstype == "cgroup2" and "" in ours:
            here = _inside(Path(mount_point), root, ours[""])
            controllers = here / "cgroup.controllers"
            if controllers.exists() and "cpu" in controllers.read_text().split():
                v2 = CpuHierarchy(2, here)
    return v2


def _inside(mount_point: Path, mount_root: str, path: str) -> Path:
    """Our cgroup's folder: ``path`` is seen from the hierarchy's root, the mount from its own."""
    relative = os.path.relpath(path, mount_root) if path.startswith(mount_root) else "."
    return (mount_point / relative).resolve() if relative != "." else mount_point


def make_one_cpu_group(hierarchy: CpuHierarchy, name: str) -> Path:
    """Create ``name`` under our cgroup with a quota of one CPU; return its folder."""
    parent = hierarchy.directory
    if hierarchy.version == 2:
        subtree = parent / "cgroup.subtree_control"
        if "cpu" not in subtree.read_text().split():
            subtree.write_text("+cpu")  # fails (EBUSY) if the parent itself holds processes
    group = parent / name
    group.mkdir()
    try:
        if hierarchy.version == 1:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(PERIOD_US))
        else:
            (group / "cpu.max").write_text(f"{PERIOD_US} {PERIOD_US}")
    except OSError:
        group.rmdir()
        raise
    return group


def quota_text(group: Path) -> str:
    """The quota as the kernel reports it back from the group's own files."""
    if (group / "cpu.max").exists():
        return f"cpu.max {(group / 'cpu.max').read_text().strip()!r}"
    quota = (group / "cpu.cfs_quota_us").read_text().strip()
    period = (group / "cpu.cfs_period_us").read_text().strip()
    return f"cpu.cfs_quota_us {quota} / cpu.cfs_period_us {period}"


def remove_group(group: Path) -> list[str]:
    """Stop whatever is still in ``group``, then remove it; name what was there."""
    procs = group / "cgroup.procs"
    pids = [int(pid) for pid in procs.read_text().split()]
    stragglers = [describe(pid) for pid in pids]
    stop_pids(pids)
    deadline = time.monotonic() + 10
    while True:
        try:
            group.rmdir()
            return stragglers
        except OSError:
            if time.monotonic() > deadline:
                raise
            stop_pids([int(pid) for pid in procs.read_text().split()])
            time.sleep(0.1)


def remove_stale_groups(hierarchy: CpuHierarchy) -> None:
    """Groups left by a runner that was killed (its pid is gone) and are empty now."""
    for group in hierarchy.directory.glob("asynclab-classroom-*"):
        pid = group.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                group.rmdir()
            except OSError:
                pass


# -- processes that carry a mark -----------------------------------------------------------------
def marked(value: str) -> list[int]:
    """Live processes whose environment carries ``MARK=value`` (zombies excluded)."""
    needle, found = f"{MARK}={value}".encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def stop_pids(pids: list[int]) -> None:
    """SIGTERM, a moment, then SIGKILL for any still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmd = "?"
    return f"pid {pid}: {cmd.strip()[:160]}"


def sweep(value: str) -> list[str]:
    """Wait up to GRACE seconds for marked processes to exit, then stop the rest; name them."""
    deadline = time.monotonic() + GRACE
    while (left := marked(value)) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = [describe(pid) for pid in left]
    stop_pids(left)
    return names


# -- the neighbour -------------------------------------------------------------------------------
class Neighbour:
    """A loop of ``pytest notebooks/`` (reverse lesson order) in its own process group."""

    LOOP = "trap 'exit 0' INT TERM; while :; do \"$@\"; done"

    def __init__(self, limits: tuple[int, int] | None, log: Path) -> None:
        self.mark = f"neighbour-{uuid.uuid4().hex}"
        notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"), reverse=True)
        python = ROOT / ".venv" / "bin" / "python"
        cmd = [str(python if python.exists() else sys.executable), "-m", "pytest", "-q"]
        env = {**os.environ, MARK: self.mark}
        env.pop("LABKIT_CLAIM_LOG", None)  # its claims are not the run's
        # Stopped mid-notebook, its pytest waits this long for its kernel before killing it
        # (conftest.py); the kernel is not judged, so a short wait is enough.
        env["ASYNCLAB_LEFTOVER_GRACE"] = "2"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", self.LOOP, "neighbour", *cmd, *map(str, notebooks)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=(lambda: set_open_files(*limits)) if limits else None,
            )

    def stop(self) -> list[str]:
        """SIGINT first (pytest then stops its kernels, in about 4 s), then SIGKILL; then
        anything marked (a kernel runs in its own session, so the group's signals miss it)."""
        for sig, wait in ((signal.SIGINT, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                print(f"classroom: the neighbour did not stop within {wait} s of "
                      f"{sig.name}", file=sys.stderr, flush=True)  # fmt: skip
        return sweep(self.mark)


# -- running the command -------------------------------------------------------------------------
def set_open_files(soft: int, hard: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def cores() -> str:
    return ",".join(map(str, sorted(os.sched_getaffinity(0))))


@dataclass
class Conditions:
    """What one mode sets: open-file limits, a cgroup or a pinned core, a neighbour."""

    mode: str
    limits: tuple[int, int] | None = None
    group: Path | None = None
    cpu: str = "CPU: no quota"
    pin: set[int] | None = None
    neighbour: Neighbour | None = None

    def line(self) -> str:
        soft, hard = self.limits or resource.getrlimit(resource.RLIMIT_NOFILE)
        affinity = ",".join(map(str, sorted(self.pin))) if self.pin else cores()
        n = self.neighbour
        nearby = f"pid {n.process.pid}, log {n.log}" if n else "none"
        return (
            f"classroom {self.mode}: {self.cpu}; affinity: cores {affinity}; "
            f"open files: soft {soft}, hard {hard}; neighbour: {nearby}"
        )

    def enter(self) -> None:
        """In the command's process, before it starts: its children inherit all of this."""
        if self.group is not None:
            (self.group / "cgroup.procs").write_text(str(os.getpid()))
        if self.pin:
            os.sched_setaffinity(0, self.pin)
        if self.limits:
            set_open_files(*self.limits)


def set_up(mode: str) -> Conditions:
    conditions = Conditions(mode)
    if mode == "quota":
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        conditions.limits = (OPEN_FILES, hard)
        conditions.group, conditions.cpu, conditions.pin = one_cpu()
    if mode == "crowded":
        conditions.limits = (OPEN_FILES, OPEN_FILES)
    if mode in ("crowded", "neighbour"):
        conditions.neighbour = Neighbour(conditions.limits, NEIGHBOUR_LOG / "neighbour.log")
    return conditions


def run(mode: str, command: list[str]) -> int:
    """Set the mode's conditions, run ``command`` in them, clean up; return its status."""
    conditions = set_up(mode)
    print(conditions.line(), flush=True)
    mark, started, status = uuid.uuid4().hex, time.monotonic(), 1
    try:
        child = subprocess.Popen(
            command, env={**os.environ, MARK: mark}, preexec_fn=conditions.enter
        )
        status = wait_through_signals(child)
    finally:
        took = time.monotonic() - started
        left = sweep(mark) + (remove_group(conditions.group) if conditions.group else [])
        left_by_neighbour = conditions.neighbour.stop() if conditions.neighbour else []
    for who, names in (("command", left), ("neighbour", left_by_neighbour)):
        if names:
            print(f"classroom: the {who} left these running (stopped now):", file=sys.stderr)
            print("\n".join(f"  {name}" for name in names), file=sys.stderr)
    if left and status == 0:
        status = 1  # a command that leaves a process behind has failed
    print(
        f"classroom {mode}: the command took {took:.0f} s, cleaning up "
        f"{time.monotonic() - started - took:.0f} s; exit status {status}",
        flush=True,
    )
    return status


def one_cpu() -> tuple[Path | None, str, set[int] | None]:
    """A one-CPU cgroup if we can make one, else core 0 alone: (group, what, pinned cores)."""
    try:
        hierarchy = find_cpu_hierarchy(
            Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text()
        )
        if hierarchy is None:
            raise OSError("no cgroup hierarchy with the cpu controller is mounted")
        remove_stale_groups(hierarchy)
        group = make_one_cpu_group(hierarchy, f"asynclab-classroom-{os.getpid()}")
    except OSError as error:
        first = min(os.sched_getaffinity(0))
        print(
            f"classroom quota: no cgroup could be made ({error}); pinning to core {first} "
            f"instead (taskset -c {first})",
            flush=True,
        )
        return None, f"CPU: core {first} only, no quota", {first}
    return (
        group,
        f"CPU quota: 1 CPU ({quota_text(group)}, cgroup v{hierarchy.version} {group})",
        None,
    )


def wait_through_signals(child: subprocess.Popen) -> int:
    """Wait for the child; Ctrl-C reaches it directly (same process group), so keep waiting.
    SIGTERM to the runner is passed on, so the cleanup still runs."""
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Modes:\n  quota      one CPU of CFS quota, ulimit -Sn 1024\n"
        "  crowded    hard open-file limit 1,024, beside a neighbour\n"
        "  neighbour  beside a neighbour",
    )
    parser.add_argument("mode", choices=["quota", "crowded", "neighbour"])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run, after --")
    return run(args.mode, command)


if __name__ == "__main__":
    sys.exit(main())
