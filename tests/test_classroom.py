"""The classroom runner (.ci/classroom.py) sets the conditions it says, and leaves nothing behind.

Each mode runs a small Python probe as its command; the probe reports what it sees (its cgroup,
the quota read by a grandchild, its affinity, its open-file limits, a neighbour's kernel), and
the test checks that afterwards no cgroup and no process of the run is left.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / ".ci" / "classroom.py"

_spec = importlib.util.spec_from_file_location("classroom", RUNNER)
assert _spec and _spec.loader
classroom = importlib.util.module_from_spec(_spec)
sys.modules["classroom"] = classroom  # dataclasses look their module up there
_spec.loader.exec_module(classroom)


def run_runner(mode: str, probe: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUNNER), mode, "--", sys.executable, "-c", textwrap.dedent(probe)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def probe_report(result: subprocess.CompletedProcess) -> dict:
    lines = [line for line in result.stdout.splitlines() if line.startswith("PROBE ")]
    assert lines, f"the probe printed nothing:\n{result.stdout}\n{result.stderr}"
    return json.loads(lines[-1].removeprefix("PROBE "))


def conditions_line(result: subprocess.CompletedProcess, mode: str) -> str:
    lines = [line for line in result.stdout.splitlines() if line.startswith(f"classroom {mode}:")]
    assert lines, result.stdout
    return lines[0]  # the first says what was set; the last, how it went


def processes_marked(value: str) -> list[int]:
    return classroom.marked(value)


# -- finding the hierarchy (texts as the kernel writes them) ----------------------------------
MOUNT_V1 = (
    "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu\n"
    "31 25 0:27 / /sys/fs/cgroup/memory rw,relatime shared:6 - cgroup cgroup rw,memory\n"
)
MOUNT_V1_JOINED = "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
MOUNT_CPUSET_ONLY = "30 25 0:26 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"


def test_v1_cpu_hierarchy_is_found_under_our_own_group():
    found = classroom.find_cpu_hierarchy(MOUNT_V1, "2:memory:/a\n1:cpu:/user/42\n0::/\n")
    assert (found.version, found.directory) == (1, Path("/sys/fs/cgroup/cpu/user/42"))
    joined = classroom.find_cpu_hierarchy(MOUNT_V1_JOINED, "1:cpu,cpuacct:/\n")
    assert (joined.version, joined.directory) == (1, Path("/sys/fs/cgroup/cpu,cpuacct"))


def test_cpuset_is_not_the_cpu_controller():
    assert classroom.find_cpu_hierarchy(MOUNT_CPUSET_ONLY, "1:cpuset:/\n") is None


def test_a_container_sees_its_group_as_the_mount_root():
    mount = "30 25 0:26 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
    found = classroom.find_cpu_hierarchy(mount, "1:cpu:/docker/abc\n")
    assert found.directory == Path("/sys/fs/cgroup/cpu")


def test_v2_is_used_only_where_its_cpu_controller_is_available(tmp_path):
    (tmp_path / "user.slice").mkdir()
    mount = f"40 25 0:30 / {tmp_path} rw - cgroup2 cgroup2 rw,nsdelegate\n"
    (tmp_path / "user.slice" / "cgroup.controllers").write_text("memory pids\n")
    assert classroom.find_cpu_hierarchy(mount, "0::/user.slice\n") is None
    (tmp_path / "user.slice" / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    found = classroom.find_cpu_hierarchy(mount, "0::/user.slice\n")
    assert (found.version, found.directory) == (2, tmp_path / "user.slice")
    # hybrid: a v1 cpu hierarchy wins (there the v2 tree cannot have the controller)
    assert classroom.find_cpu_hierarchy(MOUNT_V1 + mount, "1:cpu:/\n0::/user.slice\n").version == 1


def test_a_v2_group_gets_the_cpu_controller_and_one_cpu(tmp_path):
    (tmp_path / "cgroup.subtree_control").write_text("memory\n")
    group = classroom.make_one_cpu_group(classroom.CpuHierarchy(2, tmp_path), "g")
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu"
    assert (group / "cpu.max").read_text() == "100000 100000"
    assert classroom.quota_text(group) == "cpu.max '100000 100000'"


def test_a_v1_group_gets_a_quota_of_one_period(tmp_path):
    group = classroom.make_one_cpu_group(classroom.CpuHierarchy(1, tmp_path), "g")
    assert classroom.quota_text(group) == "cpu.cfs_quota_us 100000 / cpu.cfs_period_us 100000"


# -- the modes, for real ----------------------------------------------------------------------
QUOTA_PROBE = """
    import json, os, resource, subprocess
    groups = open("/proc/self/cgroup").read().splitlines()
    cpu = [line.split(":", 2)[2] for line in groups if "cpu" in line.split(":")[1].split(",")]
    found = {"cgroup": cpu[0] if cpu else None, "quota": None,
             "affinity": sorted(os.sched_getaffinity(0)),
             "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)}
    for mount in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):
        quota = f"{mount}{found['cgroup']}/cpu.cfs_quota_us"
        if cpu and os.path.exists(quota):  # read by a grandchild: children inherit the group
            found["quota"] = subprocess.run(["cat", quota], capture_output=True, text=True).stdout
    print("PROBE " + json.dumps(found))
"""


def test_quota_mode_gives_one_cpu_and_keeps_the_affinity():
    result = run_runner("quota", QUOTA_PROBE)
    assert result.returncode == 0, result.stderr
    line, seen = conditions_line(result, "quota"), probe_report(result)
    assert seen["nofile"][0] == 1024
    if "no cgroup could be made" in result.stdout:  # no root or no cgroup: core 0 alone
        assert len(seen["affinity"]) == 1 and "affinity: cores " in line
        return
    group = re.search(r"cgroup v\d (\S+)\)", line)[1]
    assert seen["cgroup"].endswith("/" + Path(group).name), (seen, line)
    if "cgroup v1" in line:
        assert seen["quota"].strip() == "100000", seen
    assert seen["affinity"] == sorted(os.sched_getaffinity(0))  # every core still shows
    assert not Path(group).exists(), "the runner left its cgroup behind"


NEIGHBOUR_PROBE = """
    import json, os, resource, time
    from pathlib import Path
    others = os.environ.get("PROBE_OTHER_NEIGHBOURS", "").encode().split()
    def neighbour_kernel():
        for entry in Path("/proc").iterdir():
            try:
                env = (entry / "environ").read_bytes().split(b"\\0")
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            marks = [e for e in env if e.startswith(b"ASYNCLAB_CLASSROOM=neighbour-")
                     and e.split(b"=", 1)[1] not in others]
            if marks and b"ipykernel" in cmd:
                return marks[0].decode().split("=", 1)[1]
    deadline = time.monotonic() + 90
    while not (mark := neighbour_kernel()) and time.monotonic() < deadline:
        time.sleep(0.3)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    print("PROBE " + json.dumps({"mark": mark, "nofile": nofile}))
"""


def neighbour_marks() -> list[str]:
    """The marks of the neighbours running now."""
    marks = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            env = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        marks.update(e.decode().split("=", 1)[1] for e in env
                     if e.startswith(f"{classroom.MARK}=neighbour-".encode()))  # fmt: skip
    return sorted(marks)


def test_crowded_mode_sets_a_hard_limit_and_stops_its_neighbour(monkeypatch):
    # a neighbour already running (these tests run beside one, .ci/classroom.py) is not ours
    monkeypatch.setenv("PROBE_OTHER_NEIGHBOURS", " ".join(neighbour_marks()))
    result = run_runner("crowded", NEIGHBOUR_PROBE, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    line, seen = conditions_line(result, "crowded"), probe_report(result)
    assert "soft 1024, hard 1024" in line and "neighbour: pid " in line, line
    assert seen["nofile"] == [1024, 1024]
    assert seen["mark"], "no neighbour kernel ran beside the command"
    assert processes_marked(seen["mark"]) == [], "the neighbour left processes running"
    assert "left these running" not in result.stderr, result.stderr


def test_a_command_that_leaves_a_process_behind_fails_and_the_process_is_stopped():
    leave = "import subprocess; subprocess.Popen(['sleep', '313.5'], start_new_session=True)"
    result = run_runner("quota", leave, timeout=60)
    assert result.returncode == 1
    assert "the command left these running" in result.stderr and "sleep 313.5" in result.stderr
    sleepers = subprocess.run(["pgrep", "-f", "^sleep 313.5$"], capture_output=True, text=True)
    assert not [pid for pid in sleepers.stdout.split() if classroom._alive(int(pid))]


def test_the_command_exit_status_is_the_runner_exit_status():
    assert run_runner("quota", "raise SystemExit(7)").returncode == 7
