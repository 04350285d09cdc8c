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
    out = subprocess.run([sys.executable, "-m", "labkit", "doctor"], capture_output=True,
                         text=True, timeout=60)
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
    limits.check_client_count(100)   # well within the limit: no error
