"""labkit.grade: every reference server passes, each server broken on purpose fails with its
own message and a hint to the right lesson, a student's program is graded from its path, one
that cannot start gets its last log lines, and nothing is left running."""

from __future__ import annotations

import re
import sys
import time

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
        assert "ConnectionResetError" in why["no crash"] or "BrokenPipeError" in why["no crash"]


def test_gevent_echo_hang_stops_answering_and_never_waits():
    started = time.monotonic()
    result = graded("gevent_echo_hang")
    why = failed(result)
    assert "got 0 back" in why["keeps answering"], result.report()
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
    assert failed(graded(broken)).keys() == {"slow reader"}


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
    other = graded("asyncio_echo", seed=1)
    assert other.report() != first.report()  # the seed draws other inputs


def test_the_timeline_draws_each_battery(tmp_path):
    result = graded("selectors_echo", clients=20)
    fig = result.timeline()
    assert len(fig.axes) == 2
    assert [name for _, name in result.load.marks][:3] == ["warm-up", "concurrency", "exact bytes"]
    times, conns, mib = result.load.curves()
    assert max(conns) >= 20 and conns[-1] == 0 and mib[-1] > 12  # the slow reader's 12 MiB


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
