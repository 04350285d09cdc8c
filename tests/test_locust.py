"""labkit.locust_lab: Locust headless in child processes, its own stats read back, and nothing
left behind, not even the workers it forks, when the process that started it is killed."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from processes import wait_dead

import labkit
from labkit import locust_lab
from labkit.claims import DATA

LYRICS_SHA = hashlib.sha256((DATA / "lyrics.txt").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pages():
    with labkit.serve("latency_http", delay=0.02) as srv:
        yield srv


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    uploads = tmp_path_factory.mktemp("uploads")
    with labkit.serve("selectors_files", root=DATA, upload_dir=uploads) as srv:
        yield srv


def test_injected_errors_are_locusts_failures(pages, monkeypatch):
    monkeypatch.setenv("LOCUST_LOGLEVEL", "DEBUG")  # ours are the only settings it reads
    steps = []
    run = locust_lab.run_locust(
        "pages",
        pages,
        users=5,
        seconds=2,
        options={"error_rate": 0.3},
        progress=lambda *s: steps.append(s),
    )
    assert run.requests > 20 and 0.1 < run.failure_ratio < 0.6, run.summary()
    assert run.errors and "503" in run.errors[0]["Error"]
    assert int(run.errors[0]["Occurrences"]) == run.failures
    assert run.p50 >= 20  # the server's delay, in ms
    assert run.per_second and sum(r for _, r, _ in run.per_second) == run.requests
    assert run.history and run.history[-1]["users"] == 5
    assert steps and steps[-1][0] > 0  # progress while it ran
    assert "Starting Locust" in run.log and "/DEBUG/" not in run.log
    assert "locust" not in sys.modules and "gevent.monkey" not in sys.modules


def test_file_user_verifies_every_byte(files):
    good = locust_lab.run_locust(
        "files", files, users=4, seconds=2, options={"expected_sha256": LYRICS_SHA}
    )
    assert good.requests > 20 and good.failures == 0, good.summary()
    assert set(good.by_name) == {"GET lyrics.txt", "PUT lyrics.txt"}
    bad = locust_lab.run_locust(
        "files", files, users=4, seconds=2, options={"expected_sha256": "0" * 64}
    )
    assert bad.requests > 20 and bad.failures == bad.requests, bad.summary()  # no PUT after
    assert "SHA-256 mismatch" in bad.errors[0]["Error"]


@pytest.mark.parametrize("mode", ["processes", "workers"])
def test_two_workers_share_the_users(pages, mode):
    run = locust_lab.run_locust("pages", pages, users=6, seconds=2, **{mode: 2})
    assert run.processes == 2 and len(run.workers) == 2, run.workers
    assert all(w["requests"] > 0 for w in run.workers)
    assert sum(w["requests"] for w in run.workers) == run.requests
    assert sorted(run.worker_peak_users.values()) == [3, 3]
    assert "--master-bind-host" in run.command and "127.0.0.1" in run.command


def test_compare_with_greenlets(files):
    both = locust_lab.compare_with_greenlets(files, users=4, seconds=2)
    assert both.ours["requests"] > 20 and both.ours["mismatches"] == 0 and not both.ours["errors"]
    assert both.locust.requests > 20 and both.locust.failures == 0
    assert both.ours_cpu_us > 0 and both.locust_cpu_us > 0
    assert "Locust" in both.table()


def locust_processes(parent: int) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(parent).children(recursive=True):
        try:
            if any("locust_run.py" in part for part in p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.mark.parametrize("mode", ["processes", "workers"])
def test_kernel_killed_leaves_no_locust(mode):
    """A kernel-like parent starts a long run with two workers and is SIGKILLed in the middle:
    within seconds no Locust process is left, forked workers included."""
    code = textwrap.dedent(f"""
        import threading, time, labkit
        from labkit import locust_lab
        srv = labkit.serve("latency_http", delay=0.05)
        threading.Thread(target=locust_lab.run_locust, daemon=True,
                         args=("pages", srv), kwargs=dict(users=4, seconds=60, {mode}=2)).start()
        print(srv.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    found: list[psutil.Process] = []
    try:
        server = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while len(found := locust_processes(parent.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(found) == 3, "expected a master and two workers"
        time.sleep(2)  # the workers have joined and run users
        listening = {
            c.laddr for p in found for c in p.net_connections("inet") if c.status == "LISTEN"
        }
        assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening  # no web UI
        cmdline = found[0].cmdline()
        workdir = cmdline[cmdline.index("--workdir") + 1]
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        left = [p.pid for p in found if not wait_dead(p.pid, 5)]
        assert not left, f"Locust processes outlived their parent: {left}"
        assert not Path(workdir).exists(), "the run's folder was left behind"
        assert wait_dead(server, 5)
    finally:
        parent.kill()
        parent.wait(5)
        for p in found:  # a failed test must not leave them running either
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def test_commands_for_several_machines():
    master, worker = locust_lab.distributed_commands("pages", "http://server:8000", 100, 2)
    assert "--master --expect-workers 2" in master and "--headless" in master
    assert "--worker --master-host 10.0.0.1" in worker


def test_a_run_that_outlives_its_time_is_stopped(pages, monkeypatch):
    monkeypatch.setattr(locust_lab, "START_GRACE", -1.0)  # 2 s run, stopped after 1 s
    with pytest.raises(locust_lab.LocustError, match="ran over 1 s and was stopped"):
        locust_lab.run_locust("pages", pages, users=2, seconds=2, processes=2)
    assert not locust_processes(os.getpid())
