import subprocess
import sys

import labkit
from labkit import limits


def test_doctor_passes_here_and_prints_a_verdict():
    report = labkit.doctor()
    assert report.ok, str(report)
    text = str(report)
    assert "echo server" in text and "intact" in text
    assert text.endswith("this machine is ready for the course")


def test_doctor_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "labkit", "doctor"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "asynclab doctor" in out.stdout


def test_too_many_clients_says_why_and_what_to_do():
    n = limits.max_clients() + 1
    try:
        limits.check_client_count(n)
    except limits.TooManyClients as exc:
        assert "ulimit -n" in str(exc) and f"{n:,}" in str(exc)
    else:
        raise AssertionError("no error for more clients than descriptors")
    limits.check_client_count(100)  # well within the limit: no error


def _doctor_with_limit(soft, hard):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.run(
        [sys.executable, "-m", "labkit", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )


def test_doctor_reports_the_limit_the_process_was_given_not_its_own():
    """A container's soft 1,024: labkit copes (it raises soft to hard), and the doctor says so."""
    out = _doctor_with_limit(1024, resource_hard())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "started with 1,024" in out.stdout and "labkit raised" in out.stdout


def test_doctor_under_a_hard_limit_of_1024_says_lessons_run_fewer_clients():
    out = _doctor_with_limit(1024, 1024)
    assert out.returncode == 0, out.stdout + out.stderr
    first, last = out.stdout.splitlines()[-2:]
    assert first.startswith(limits.SCALED_DOWN) and "1,024" in first
    assert last.startswith("all ") and "ready for the course" in last


def resource_hard():
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_doctor_reports_quota_affinity_usable_cpus_and_load():
    from labkit import cpus

    report = labkit.doctor()
    row = next(c for c in report.checks if c.name == "cpus")
    got = cpus.cpu_limits()
    assert f"affinity {got.affinity}" in row.value
    assert f"{got.usable:g} usable" in row.value and "quota" in row.value
    assert "load average" in row.value
