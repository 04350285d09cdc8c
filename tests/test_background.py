"""labkit.serve: the READY handshake, start failures, and never leaving a server behind."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import labkit
from labkit.background import ServerStartError
from labkit.servers import NAMES


def pid_alive(pid):
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def test_ready_handshake_gives_loopback_address_and_pid():
    with labkit.serve("select_echo") as srv:
        assert srv.host == "127.0.0.1"
        assert 0 < srv.port < 65536
        assert pid_alive(srv.pid)
        assert srv in labkit.running()
    assert wait_dead(srv.pid, 2)
    assert srv not in labkit.running()


def test_unknown_server_name_lists_the_real_ones():
    with pytest.raises(ValueError, match="select_echo"):
        labkit.serve("no_such_server")


def test_failed_start_shows_the_log_tail():
    # An option the server does not know makes argparse exit with a usage message.
    with pytest.raises(ServerStartError) as err:
        labkit.serve("select_echo", no_such_option=3)
    message = str(err.value)
    assert "exited with code 2" in message
    assert "unrecognized arguments: --no-such-option 3" in message


def test_refuses_non_loopback_without_allow_remote():
    with pytest.raises(ServerStartError, match="refusing to bind '0.0.0.0'"):
        labkit.serve("selectors_echo", host="0.0.0.0")


def test_stop_all_stops_every_server():
    handles = [labkit.serve(name) for name in ("select_echo", "thread_echo", "blocking_echo")]
    assert labkit.stop_all() == 3
    assert all(wait_dead(h.pid, 2) for h in handles)
    assert labkit.running() == []


def test_stop_is_idempotent_and_child_output_is_captured():
    srv = labkit.serve("selectors_echo")
    srv.stop()
    srv.stop()
    assert not srv.alive
    assert "READY" not in srv.log()   # protocol lines are consumed, not logged


def test_stats_counts_connections():
    import socket
    with labkit.serve("selectors_echo") as srv:
        for _ in range(3):
            with socket.create_connection(srv.address, timeout=5) as s:
                s.sendall(b"x")
                assert s.recv(1) == b"x"
        # counted at accept(), before the echo that the client has already read
        assert srv.stats()["connections"] == 3


PARENT = textwrap.dedent("""
    import sys, time, labkit
    srv = labkit.serve("selectors_echo")
    print(srv.pid, flush=True)
    time.sleep(600)
""")


def test_server_dies_within_2s_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(parent.stdout.readline())
        assert pid_alive(server_pid)
        parent.send_signal(signal.SIGKILL)       # no atexit, no finally: only the lifeline
        parent.wait(5)
        assert wait_dead(server_pid, 2.0), "server outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()


def test_server_ignores_sigint_sent_to_the_parents_group():
    # Jupyter's "interrupt" sends SIGINT to the kernel's process group; our server is not in it.
    with labkit.serve("select_echo") as srv:
        assert os.getpgid(srv.pid) != os.getpgid(0)
        assert os.getsid(srv.pid) == srv.pid


@pytest.mark.parametrize("name", NAMES)
def test_sigterm_stops_a_server_cleanly(name):
    srv = labkit.serve(name)
    os.kill(srv.pid, signal.SIGTERM)
    assert srv.process.wait(3) == 0
    srv.stop()
