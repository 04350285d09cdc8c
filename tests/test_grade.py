"""labkit.grade: every reference server passes, each server broken on purpose fails with its
own message and a hint to the right lesson, a student's program is graded from its path, one
that cannot start gets its last log lines, and nothing is left running."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
from processes import pid_alive

import labkit
from labkit.grading import Grade, skeleton, start_from

REFERENCE = [
    ("selectors_echo", "echo"),
    ("gevent_echo", "echo"),
    ("asyncio_echo", "echo"),
    ("selectors_files", "files"),
    ("gevent_files", "files"),
]


def graded(server, protocol="echo", **options) -> Grade:
    result = labkit.grade(server, protocol=protocol, show=False, **options)
    assert not result.pid or not pid_alive(result.pid), "the graded server was left running"
    return result


def failed(result: Grade) -> dict[str, str]:
    return {c.name: f"{c.detail}\nhint: {c.hint}" for c in result.failed}


@pytest.mark.parametrize(("server", "protocol"), REFERENCE)
def test_every_reference_server_passes_in_seconds(server, protocol):
    started = time.monotonic()
    result = graded(server, protocol)
    assert result.passed, result.report()
    assert time.monotonic() - started < 20
    assert [c.name for c in result.checks][:2] == ["starts", "concurrency"]
    assert len(result.checks) == 10


def test_blocking_echo_serves_one_client_at_a_time():
    result = graded("blocking_echo")
    assert set(failed(result)) == {"concurrency", "slow reader"}, result.report()
    assert "served one client at a time" in result["concurrency"].detail
    assert "lesson 06" in result["concurrency"].hint
    assert "b'client 2 says hello\\n'" == result["concurrency"].failing_input
    # its slow-reader failure has the same cause, and its hint says so
    assert "stuck on a client that does not read" in result["slow reader"].detail
    assert "one client at a time" in result["slow reader"].hint
    assert "HIGH_WATER" not in result["slow reader"].hint


def test_select_echo_naive_loses_bytes():
    result = graded("select_echo_naive")
    why = failed(result)
    assert "the server lost bytes" in why["slow reader"], result.report()
    assert "buffer[sent:]" in why["slow reader"] and "lesson 07" in why["slow reader"]
    # Its other bugs show or not by timing: a send to a client that reset kills it (then the
    # report names the battery and shows the traceback), a half-close drops the echo still
    # queued (garbage and fuzz).
    if "no crash" in why:
        assert why["no crash"].startswith("the server died in the ")
        assert "a client's reset" in why["no crash"]
        assert "Traceback" in result.log() and "Traceback" not in result.report()


def test_gevent_echo_hang_stops_answering_and_never_waits():
    started = time.monotonic()
    result = graded("gevent_echo_hang")
    why = failed(result)
    assert "got nothing back" in why["keeps answering"], result.report()
    assert "a loop that never waits" in why["keeps answering"]
    assert "lesson 06" in why["keeps answering"]
    assert time.monotonic() - started < 20  # a hang is found by timeouts, not waited on


def test_gevent_echo_spin_never_rests():
    result = graded("gevent_echo_spin")
    why = failed(result)
    assert "a loop that never rests" in why["idle CPU"], result.report()
    assert "lesson 06" in why["idle CPU"]
    assert "concurrency" not in why and "exact bytes" not in why


SOLUTION = '''"""A student's echo server on asyncio: one coroutine per client."""
import asyncio

from labkit import launch


async def handle(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def main(listener):
    server = await asyncio.start_server(handle, sock=listener)
    await server.serve_forever()


def serve(listener, args):
    asyncio.run(main(listener))


if __name__ == "__main__":
    launch.run(serve, __doc__)
'''


def test_a_students_program_is_graded_from_its_path(tmp_path):
    program = tmp_path / "my_server.py"
    program.write_text(SOLUTION)
    result = graded(program)
    assert result.passed, result.report()
    assert result.report().startswith("Grading my_server.py on the echo protocol (seed 0)")
    broken = tmp_path / "my_broken_server.py"  # the same, but it forgets to drain
    broken.write_text(SOLUTION.replace("await writer.drain()", "pass"))
    fails = failed(graded(broken)).keys()  # what it kept for the slow reader may stay kept:
    assert "slow reader" in fails and fails <= {"slow reader", "back to baseline"}, fails


def test_a_syntax_error_shows_its_last_log_lines(tmp_path):
    program = tmp_path / "broken.py"
    program.write_text("from labkit import launch\ndef serve(listener, args)\n    pass\n")
    result = graded(program)
    starts = result["starts"]
    assert starts.passed is False and "exited with code 1" in starts.detail
    assert "SyntaxError" in starts.detail and "launch.run(serve, __doc__)" in starts.hint
    assert len(result.checks) == 10, result.report()
    assert all(c.passed is None for c in result.checks[1:]), result.report()
    assert sys.executable not in result.report()  # the command is shown as python broken.py


def test_a_program_that_never_says_ready_is_stopped(tmp_path):
    program = tmp_path / "silent.py"
    program.write_text("import time\nprint('thinking...', flush=True)\ntime.sleep(60)\n")
    started = time.monotonic()
    result = graded(program, ready_timeout=2)
    assert time.monotonic() - started < 6
    assert "did not print READY within 2 s" in result["starts"].detail
    assert "thinking..." in result["starts"].detail
    assert not result.passed


def test_the_report_is_stable_text():
    first, second = graded("asyncio_echo"), graded("asyncio_echo")
    assert first.report() == second.report()
    assert not re.search(r"\bpid\b|127\.0\.0\.1:\d|\d+(\.\d+)? ?m?s\b", first.report())
    assert not first.log()  # nothing died: no log lines to show
    other = graded("asyncio_echo", seed=1)
    assert other.report() != first.report()  # the seed draws other inputs


def test_the_timeline_draws_each_battery(tmp_path):
    result = graded("selectors_echo", clients=20)
    fig = result.timeline()
    assert len(fig.axes) == 2
    assert [name for _, name in result.load.marks][:3] == ["warm-up", "concurrency", "exact bytes"]
    times, conns, mib = result.load.curves()
    assert max(conns) >= 20 and conns[-1] == 0 and mib[-1] > 12  # the slow reader's 12 MiB


FRAGILE = '''"""Keeps up with slow readers (a high-water mark), but a client's reset ends it."""
import selectors

from labkit import launch

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
HIGH_WATER = 1 << 20


def serve(listener, args):
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, READ, data=None)
    while True:
        for key, events in sel.select():
            if key.data is None:
                conn, _ = listener.accept()
                conn.setblocking(False)
                sel.register(conn, READ, data=bytearray())
                continue
            conn, out = key.fileobj, key.data
            if events & READ:
                data = conn.recv(65536)  # a reset raises here (or at send): nothing catches it
                if not data:
                    sel.unregister(conn)
                    conn.close()
                    continue
                out += data
            if events & WRITE and out:
                del out[: conn.send(out)]
            sel.modify(conn, (READ if len(out) < HIGH_WATER else 0) | (WRITE if out else 0), out)


if __name__ == "__main__":
    launch.run(serve, __doc__)
'''


def test_a_server_that_dies_fails_the_battery_it_died_in(tmp_path):
    """The slow reader's checks hold, then its two non-readers leave with a reset and the
    server dies: that battery is failed, never passed, and the report says where and of what;
    the traceback comes apart from the report, with no folder of this machine in it."""
    program = tmp_path / "fragile.py"
    program.write_text(FRAGILE)
    result = graded(program)
    slow = result["slow reader"]
    assert slow.passed is False, result.report()
    assert "the server died before the battery ended" in slow.detail
    assert "a client's reset" in slow.detail and slow.hint.startswith("catch errors")
    later = [c for c in result.checks if c.name in ("vanishing clients", "idle CPU")]
    assert all(c.detail == "not run: the server died in the slow reader battery" for c in later)
    assert result["no crash"].detail.startswith("the server died in the slow reader battery: ")
    assert 'File "fragile.py", line ' in result.log()
    assert str(tmp_path) not in result.log() + result.report()
    assert str(Path(labkit.__file__).parent) not in result.log()
    # the timeline labels only the batteries that ran, and marks the moment it died
    assert [name for _, name in result.load.marks][-1] == "slow reader"
    assert result.load.died_at is not None and result.load.died_at > result.load.marks[-1][0]
    fig = result.timeline()
    assert any(t.get_text() == "✘ the server died" for t in fig.axes[0].texts)


def test_the_skeletons_report_is_the_same_on_every_run(tmp_path):
    """The selectors skeleton grows without bound under the slow reader, then dies of a reset:
    its memory (a different number each run) is said as the bound it passed, and the line it
    died at (recv on one run, send on another) is in the log, not in the report."""
    mine = start_from("selectors", tmp_path / "my_server.py")
    first, second = graded(mine), graded(mine)
    assert first.report() == second.report()
    assert "grow by more than 40 MiB" in first["slow reader"].detail, first.report()
    assert first["no crash"].passed is False and first.log()


def test_bad_arguments_are_refused():
    with pytest.raises(FileNotFoundError, match="no course server of that name"):
        labkit.grade("no_such_server")
    with pytest.raises(ValueError, match="protocol must be one of"):
        labkit.grade("selectors_echo", protocol="http")
    with pytest.raises(ValueError, match="at most 1,000 clients"):
        labkit.grade("selectors_echo", clients=5000)


@pytest.mark.parametrize(
    ("model", "protocol"),
    [("selectors", "echo"), ("gevent", "echo"), ("asyncio", "echo"), ("selectors", "files")],
)
def test_each_skeleton_starts_and_leaves_work_to_do(model, protocol):
    result = graded(skeleton(model, protocol), protocol)
    assert result["starts"].passed, result.report()
    assert result.failed, f"the {model} skeleton passes: it is a solution, not a start"


def test_start_from_never_overwrites(tmp_path, capsys):
    target = tmp_path / "my_server.py"
    start_from("asyncio", target)
    assert target.read_text() == skeleton("asyncio").read_text()
    target.write_text("# my work\n")
    start_from("selectors", target)
    assert target.read_text() == "# my work\n"
    assert "never overwritten" in capsys.readouterr().out
