"""labkit.child: the one protocol between labkit and its child processes, both sides."""

import json
import os
import signal
import sys
import textwrap
import time

import pytest
from processes import pid_alive, wait_dead

import labkit
from labkit import child
from labkit.child import Child
from labkit.progress import Throttled


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def run_to_end(c: Child) -> None:
    assert c.wait(10), "the child did not finish"
    c.stop()


def test_tagged_lines_go_to_their_handler_and_other_lines_to_the_log():
    seen = []
    c = Child(
        python("""
        print('READY {"port": 7}')
        print("hello")
        print('STATS {"connections": 2}')
        print("READY but not JSON")
        print("NOTAG {}")
    """),
        "talker",
        on={
            "READY": lambda p: seen.append(("READY", p)),
            "STATS": lambda p: seen.append(("STATS", p)),
        },
    )
    run_to_end(c)
    assert seen == [("READY", {"port": 7}), ("STATS", {"connections": 2})]
    assert c.log().splitlines() == ["hello", "READY but not JSON", "NOTAG {}"]


def test_the_log_keeps_only_the_last_lines():
    c = Child(python("for i in range(50): print(i)"), "counter", log_lines=10)
    run_to_end(c)
    assert c.log().splitlines() == [str(i) for i in range(40, 50)]
    assert c.log(last=3) == "47\n48\n49"


def test_stderr_joins_the_log_or_is_kept_apart():
    code = "import sys; print('out', flush=True); print('err', file=sys.stderr, flush=True)"
    together = Child(python(code), "together")
    apart = Child(python(code), "apart", stderr_apart=True)
    for c in (together, apart):
        run_to_end(c)
    assert together.log() == "out\nerr" and together.errors() == ""
    assert apart.log() == "out" and apart.errors() == "err"


def test_stop_sends_sigterm_then_sigkill_to_a_child_that_ignores_it():
    c = Child(
        python("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(60)
    """),
        "stubborn",
    )
    deadline = time.monotonic() + 10
    while "ignoring" not in c.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    c.stop(grace=0.5)
    assert c.returncode == -signal.SIGKILL and time.monotonic() - started >= 0.5
    assert not pid_alive(c.pid)
    c.stop()  # idempotent
    assert c.returncode == -signal.SIGKILL


def test_stop_ends_an_ordinary_child_with_sigterm():
    c = Child(python("import time; time.sleep(60)"), "sleeper")
    c.stop(grace=5)
    assert c.returncode == -signal.SIGTERM


def test_the_child_runs_in_its_own_session_with_our_pid_in_its_environment():
    info = {}
    c = Child(
        python("""
        import json, os
        print("INFO " + json.dumps({"sid": os.getsid(0), "pid": os.getpid(),
                                    "parent": os.environ["LABKIT_PARENT_PID"],
                                    "unbuffered": os.environ["PYTHONUNBUFFERED"]}))
    """),
        "env",
        on={"INFO": info.update},
    )
    run_to_end(c)
    assert info == {"sid": c.pid, "pid": c.pid, "parent": str(os.getpid()), "unbuffered": "1"}


def test_emit_report_and_progress_write_one_json_line_each(capsys):
    child.emit("STATS", {"connections": 1})
    child.progress(2, 5)
    child.report(spans=[labkit.timeline.Span("Task 1", "waiting", 0.0, 0.5)], n=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'STATS {"connections": 1}'
    assert lines[1] == 'PROGRESS {"done": 2, "total": 5}'
    tag, _, payload = lines[2].partition(" ")
    assert tag == "RESULT" and json.loads(payload)["n"] == 3
    assert json.loads(payload)["spans"][0]["task"] == "Task 1"


def test_a_script_reports_progress_and_a_result_and_keeps_stderr_apart(tmp_path):
    script = tmp_path / "steps.py"
    script.write_text(
        textwrap.dedent("""
        import os, sys
        from labkit.scripts import progress, report
        print("working")
        for done in range(1, 4):
            progress(done, 3)
        print("a warning", file=sys.stderr)
        report(answer=42, parent_pid_left=os.environ.get("LABKIT_PARENT_PID"))
    """)
    )
    seen = []
    result = labkit.run_script(script, on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    # the parent's pid was taken out of the script's environment: its own children have another
    assert result.data == {"answer": 42, "parent_pid_left": None}
    assert result.stdout == "working" and result.stderr == "a warning"
    assert result.returncode == 0 and result.name == "steps" and result.elapsed > 0


def test_a_script_that_runs_too_long_is_stopped_and_reported(tmp_path):
    pid_file = tmp_path / "pid"
    script = tmp_path / "forever.py"
    script.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "print('started', flush=True)\ntime.sleep(60)\n"
    )
    started = time.monotonic()
    result = labkit.run_script(script, timeout=1, check=False)
    assert 1 <= time.monotonic() - started < 10
    assert result.returncode < 0 and result.stdout == "started"
    assert wait_dead(int(pid_file.read_text()), 1)
    with pytest.raises(labkit.ScriptError, match=r"(?s)was killed after 1 s.*started"):
        labkit.run_script(script, timeout=1)


def test_throttled_progress_passes_about_a_hundred_calls_and_always_the_last():
    seen = []
    report = Throttled(lambda done, total: seen.append(done))
    for done in range(1, 10_001):
        report(done, 10_000)
    assert 90 <= len(seen) <= 101 and seen[-1] == 10_000 and seen == sorted(set(seen))
    few = []
    report = Throttled(lambda done, total: few.append(done))
    for done in range(1, 4):
        report(done, 3)
    report(3, 3, final=True)  # already shown: not again
    assert few == [1, 2, 3]
    Throttled(None)(1, 1)  # no progress wanted: nothing to call
