"""labkit.run_script: results back as JSON, failures explained, never a process left behind."""
import signal
import subprocess
import sys
import textwrap

import pytest

import labkit
from labkit.timeline import max_concurrent, spans_from_json
from test_background import pid_alive, wait_dead


def test_gevent_sleepers_patched_overlap_unpatched_do_not():
    plain = labkit.run_script("gevent_sleepers", "--tasks", 4, "--seconds", 0.05)
    patched = labkit.run_script("gevent_sleepers", "--patch", "--tasks", 4, "--seconds", 0.05)
    assert plain.data["time_sleep_is"] == "time.sleep"
    assert patched.data["time_sleep_is"] == "gevent.hub.sleep"
    assert max_concurrent(spans_from_json(plain.data["spans"])) == 1
    assert max_concurrent(spans_from_json(patched.data["spans"])) == 4
    assert plain.data["elapsed"] >= 0.19 and patched.data["elapsed"] < 0.15


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
    pidfile = tmp_path / "pid"
    parent_code = textwrap.dedent(f"""
        import subprocess, sys, threading, time, labkit
        from pathlib import Path
        # run_script blocks; a thread lets us learn the child's pid meanwhile
        threading.Thread(target=labkit.run_script, args=(Path({str(child)!r}),), daemon=True).start()
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
