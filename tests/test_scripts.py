"""labkit.run_script: results back as JSON, failures explained, never a process left behind."""

import signal
import subprocess
import sys
import textwrap

import pytest
from processes import pid_alive, wait_dead

import labkit
from labkit.timeline import max_concurrent, spans_from_json


def test_gevent_sleepers_patched_overlap_unpatched_do_not():
    plain = labkit.run_script("gevent_sleepers", "--tasks", 4, "--seconds", 0.05)
    patched = labkit.run_script("gevent_sleepers", "--patch", "--tasks", 4, "--seconds", 0.05)
    assert plain.data["time_sleep_is"] == "time.sleep"
    assert patched.data["time_sleep_is"] == "gevent.hub.sleep"
    assert max_concurrent(spans_from_json(plain.data["spans"])) == 1
    assert max_concurrent(spans_from_json(patched.data["spans"])) == 4
    assert plain.data["elapsed"] >= 0.19 and patched.data["elapsed"] < 0.15


def test_gevent_sleepers_in_c_stay_blocking_when_patched():
    in_c = labkit.run_script(
        "gevent_sleepers", "--patch", "--in-c", "--tasks", 3, "--seconds", 0.05
    )
    assert in_c.data["time_sleep_is"] == "gevent.hub.sleep"  # patched ...
    assert max_concurrent(spans_from_json(in_c.data["spans"])) == 1  # ... yet one at a time


def test_lock_made_before_patching_hangs_two_greenlets():
    first = labkit.run_script("lock_too_late", "--watch", 30)
    late = labkit.run_script("lock_too_late", "--late", "--watch", 0.5)
    assert first.data == {
        "late": False,
        "lock_class": "gevent.thread.LockType",
        "finished": ["Task 1", "Task 2"],
        "hung": False,
        "main_thread_at": "",
    }
    assert late.data["lock_class"] == "_thread.lock" and late.data["hung"]
    assert late.data["finished"] == [] and late.data["main_thread_at"] == "with lock:"
    assert first.stderr == late.stderr == ""


def test_failing_script_raises_with_its_output(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("print('about to fail')\nraise RuntimeError('boom in the script')\n")
    with pytest.raises(labkit.ScriptError, match="boom in the script") as err:
        labkit.run_script(script)
    assert "exited with code 1" in str(err.value)
    result = labkit.run_script(script, check=False)
    assert result.returncode == 1 and result.stdout == "about to fail"


def test_script_that_runs_too_long_is_killed(tmp_path):
    script = tmp_path / "forever.py"
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    with pytest.raises(labkit.ScriptError, match="killed after 1 s"):
        labkit.run_script(script, timeout=1)


def test_unknown_script_name_lists_the_real_ones():
    with pytest.raises(ValueError, match="gevent_sleepers"):
        labkit.run_script("no_such_script")


def test_script_dies_with_its_parent(tmp_path):
    child = tmp_path / "child.py"
    child.write_text("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n")
    parent_code = textwrap.dedent(f"""
        import subprocess, sys, threading, time, labkit
        from pathlib import Path
        # run_script blocks; a thread lets us learn the child's pid meanwhile
        threading.Thread(target=labkit.run_script, args=(Path({str(child)!r}),),
                         daemon=True).start()
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        script_pid = None
        for _ in range(100):
            out = subprocess.run(["pgrep", "-f", str(child)], capture_output=True, text=True)
            pids = [int(p) for p in out.stdout.split()]
            if pids:
                script_pid = pids[0]
                break
            __import__("time").sleep(0.05)
        assert script_pid and pid_alive(script_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        assert wait_dead(script_pid, 2.0), "a lesson script outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()


def test_watch_cost_measures_every_kind_and_select_only_below_fd_1024():
    run = labkit.run_script("watch_cost", 10, 100, 1100)
    costs = {int(n): c for n, c in run.data["costs"].items()}
    assert set(costs) == {10, 100, 1100}
    assert set(costs[10]) == set(costs[100]) == {"select", "poll", "epoll"}
    assert set(costs[1100]) == {"poll", "epoll"}  # descriptors past 1023: no select
    assert all(0 < seconds < 0.01 for c in costs.values() for seconds in c.values())


def test_gevent_file_clients_report_progress_from_the_first_connect(tmp_path):
    import hashlib
    from pathlib import Path

    from labkit.runs import run_file_clients

    data = Path(__file__).resolve().parent.parent / "data"
    sha = hashlib.sha256((data / "lyrics.txt").read_bytes()).hexdigest()
    seen = []
    with labkit.serve("selectors_files", root=data, upload_dir=tmp_path) as srv:
        result = run_file_clients(
            srv.address,
            100,
            expected_sha256=sha,
            mode="gevent",
            progress=lambda done, total: seen.append((done, total)),
        )
    assert result.served == 100 and not result.errors
    assert {total for _, total in seen} == {300} and seen[-1] == (300, 300)


PATCHES_FIRST = textwrap.dedent("""
    import sys
    # what the runner loaded before this line: labkit's protocol and limits, from their files
    loaded = sorted(m for m in sys.modules
                    if m.split(".")[0] in ("labkit", "gevent", "socket", "ssl", "matplotlib"))
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from gevent import monkey
        monkey.patch_all()
    import socket, time
    import labkit.child
    from labkit.scripts import report
    report(loaded_before_the_script=loaded, warnings=[str(w.message) for w in caught],
           socket=socket.socket.__module__, sleep=time.sleep.__module__,
           threading_patched=monkey.is_module_patched("threading"),
           one_protocol_module=report is labkit.child.report is sys.modules["labkit.child"].report)
""")


def test_a_gevent_script_still_patches_before_anything_else_is_imported(tmp_path):
    script = tmp_path / "patches_first.py"
    script.write_text(PATCHES_FIRST)
    run = labkit.run_script(script)
    assert run.data["loaded_before_the_script"] == ["labkit.child", "labkit.limits"]
    assert run.data["warnings"] == [] and run.stderr == ""
    assert run.data["socket"].startswith("gevent") and run.data["sleep"].startswith("gevent")
    assert run.data["threading_patched"] and run.data["one_protocol_module"]


def test_patched_too_late_keeps_its_blocking_socket_and_patched_first_does_not():
    with labkit.serve("latency_http", delay=0.1) as srv:
        url = f"http://{srv.host}:{srv.port}/pages/page-48k.html?x=1"
        early = labkit.run_script("patch_too_late", url, 5)
        late = labkit.run_script("patch_too_late", url, 5, "--late")
    assert early.data["socket_class"] == "gevent._socket3.socket" and early.data["ok"] == 5
    assert late.data["socket_class"] == "socket.socket" and late.data["ok"] == 5
    assert late.data["elapsed"] >= 0.5  # five waits of 0.1 s, one by one
    assert early.data["elapsed"] < 0.6 * late.data["elapsed"]  # the same five waits, overlapping
    assert early.stderr == late.stderr == ""
