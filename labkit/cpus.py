"""How much CPU this kernel really has, and what the rest of the machine is doing with it.

A hub or a container often limits a kernel with a CPU *quota* (a CFS bandwidth limit: "one CPU's
worth of time per 100 ms") while ``os.cpu_count()`` and ``os.sched_getaffinity(0)`` still show
every core. A lesson that counted cores would then expect two processes to run at once, and
they cannot. ``usable_cpus()`` takes the smaller of the two limits::

    labkit.usable_cpus()      # 2.0 on an idle laptop; 1.0 under `singleuser.cpu.limit: 1`
    print(labkit.cpus.cpu_limits())   # cores, affinity, quota, usable, load average

``MachineWatch`` measures, over a stretch of time, how busy the rest of the machine was and how
much CPU this process and its children got: what a failed timing claim reports to the student.

Sources: the quota files are the kernel's CFS bandwidth control (Documentation/scheduler/
sched-bwc.rst: ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` in cgroup v1, ``cpu.max`` in v2);
``/proc/stat`` and ``/proc/loadavg`` are described in proc(5).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["CpuLimits", "MachineWatch", "busy_seconds", "cpu_limits", "usable_cpus", "cpu_quota"]

PROC = Path("/proc")


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(root, mount point, fs type, options) of every cgroup mount this process can see."""
    found = []
    try:
        lines = (PROC / "self" / "mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or not tail[0].startswith("cgroup"):
            continue
        found.append((fields[3], fields[4], tail[0], set(tail[2].split(","))))
    return found


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per hierarchy: {"cpu": "/a/b"} (v1) or {"": "/a/b"} (v2)."""
    paths = {}
    try:
        lines = (PROC / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _folders(mount_root: str, mount_point: str, path: str) -> list[Path]:
    """The folders from this process's cgroup up to the top of the mount, innermost first."""
    if not path.startswith(mount_root):
        return []
    inner = path[len(mount_root) :].strip("/")
    parts = inner.split("/") if inner else []
    return [Path(mount_point, *parts[:n]) for n in range(len(parts), -1, -1)]


def _quota_in(folder: Path, version: int) -> float | None:
    """The quota set in one cgroup folder, in CPUs, or None when it sets none."""
    try:
        if version == 2:
            quota, period = (folder / "cpu.max").read_text().split()
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((folder / "cpu.cfs_quota_us").read_text())
        period_us = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 else quota_us / period_us


def _cgroup_folders() -> tuple[list[Path], int]:
    """This process's cpu-controller folders (innermost first) and the cgroup version."""
    own = _own_cgroups()
    for root, point, fstype, options in _mounts():
        if fstype == "cgroup" and "cpu" in options and "cpu" in own:
            return _folders(root, point, own["cpu"]), 1
    for root, point, fstype, _ in _mounts():
        if fstype == "cgroup2" and "" in own:
            return _folders(root, point, own[""]), 2
    return [], 0


def cpu_quota() -> float | None:
    """The tightest CPU quota over this process's cgroup and its parents, in CPUs (or None)."""
    folders, version = _cgroup_folders()
    quotas = [q for f in folders if (q := _quota_in(f, version)) is not None]
    return min(quotas) if quotas else None


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def usable_cpus() -> float:
    """The CPUs this process may really use at once: its affinity, capped by a CPU quota.

    A quota of 1.5 CPUs gives 1.5. Lessons branch on this, never on ``os.cpu_count()``.
    """
    quota = cpu_quota()
    return float(_affinity()) if quota is None else min(float(_affinity()), quota)


def load_average() -> float:
    """The 1-minute load average (runnable and waiting tasks), or 0.0 where there is none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


@dataclass(frozen=True)
class CpuLimits:
    cores: int  # what the machine has (os.cpu_count)
    affinity: int  # the cores this process may be scheduled on
    quota: float | None  # a CFS bandwidth limit, in CPUs
    usable: float  # min(affinity, quota)
    load1: float  # 1-minute load average of the whole machine

    def __str__(self) -> str:
        quota = "no quota" if self.quota is None else f"a quota of {self.quota:g} CPU"
        return (
            f"{self.usable:g} usable CPU{'s' if self.usable != 1 else ''} "
            f"({self.cores} cores, affinity {self.affinity}, {quota}), "
            f"load average {self.load1:.1f}"
        )


def cpu_limits() -> CpuLimits:
    quota = cpu_quota()
    affinity = _affinity()
    usable = float(affinity) if quota is None else min(float(affinity), quota)
    return CpuLimits(os.cpu_count() or 1, affinity, quota, usable, load_average())


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (every core, every process).

    The difference over a stretch of time, less what this process used, is what the rest of the
    machine took: a neighbour's share of the CPUs."""
    return _machine_busy_seconds()[0]


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0, 0.0
    ticks = [int(x) for x in first[:8]]  # user nice system idle iowait irq softirq steal
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def _tree_cpu_seconds() -> dict[int, float]:
    """CPU seconds used so far by this process and each live descendant (by pid)."""
    me = psutil.Process()
    seconds = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            seconds[proc.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:  # gone meanwhile
            continue
    return seconds


def _throttled() -> int:
    """How many times the CPU quota has stopped this process's cgroup (0 with no quota)."""
    folders, version = _cgroup_folders()
    total = 0
    for folder in folders:
        try:
            for line in (folder / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "nr_throttled":
                    total += int(value)
        except OSError:
            continue
    return total


class MachineWatch:
    """What the machine did between ``MachineWatch()`` and ``report()``."""

    def __init__(self) -> None:
        self.limits = cpu_limits()
        self.start = time.perf_counter()
        self._machine = _machine_busy_seconds()
        self._ours = _tree_cpu_seconds()
        self._throttled = _throttled()

    def report(self) -> MachineReport:
        wall = max(time.perf_counter() - self.start, 1e-9)
        busy, _ = _machine_busy_seconds()
        ours_now = _tree_cpu_seconds()
        ours = sum(max(0.0, cpu - self._ours.get(pid, 0.0)) for pid, cpu in ours_now.items())
        machine = max(0.0, busy - self._machine[0])
        return MachineReport(
            limits=cpu_limits(),
            wall=wall,
            ours=ours / wall,
            others=max(0.0, machine - ours) / wall,
            throttled=_throttled() - self._throttled,
        )


@dataclass(frozen=True)
class MachineReport:
    limits: CpuLimits
    wall: float  # seconds watched
    ours: float  # CPUs' worth this process and its children got, on average
    others: float  # CPUs' worth the rest of the machine kept busy, on average
    throttled: int  # times the quota stopped us

    @property
    def busy(self) -> bool:
        """Was something else likely to have slowed the measurement down?"""
        return (
            self.others > 0.25 * self.limits.usable
            or self.throttled > 0
            or self.limits.load1 > self.limits.usable
        )

    def explain(self) -> str:
        """Two sentences for the student: what the machine was doing, and whether to re-run."""
        what = (
            f"This machine: {self.limits}. Over the {self.wall:.1f} s measured, the rest of the "
            f"machine kept {self.others:.1f} CPUs busy and this kernel with its children got "
            f"{self.ours:.1f} CPU"
        )
        if self.throttled:
            what += f"; the CPU quota paused this kernel's group {self.throttled} times"
        if self.busy:
            advice = "The machine was busy: re-running the cell is likely to help."
        else:
            advice = (
                "The machine was quiet, so re-running is unlikely to help: look at the code "
                "above (was it changed?)."
            )
        return f"{what}. {advice}"
