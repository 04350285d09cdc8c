"""labkit.serve: the READY handshake, start failures, and never leaving a server behind."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from processes import pid_alive, read_line, wait_dead

import labkit
from labkit.background import ServerHandle, ServerStartError
from labkit.clients.load import receive_exactly
from labkit.servers import NAMES


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


CHATTY = textwrap.dedent("""
    import json, os, sys, time
    print("hello on stdout", flush=True)
    print("hello on stderr", file=sys.stderr, flush=True)
    print("READY " + json.dumps({"host": "127.0.0.1", "port": 9, "pid": os.getpid()}), flush=True)
    time.sleep(60)
""")


def test_stop_is_idempotent_and_child_output_is_captured(capfd):
    srv = ServerHandle("chatty", [sys.executable, "-c", CHATTY])
    srv.wait_ready(10)
    srv.stop()
    assert not srv.alive and not pid_alive(srv.pid)
    srv.stop()  # again: nothing to do, and no error
    assert not srv.alive
    # what it printed, on either stream, is in its log and never in ours; READY is consumed
    assert srv.log().splitlines() == ["hello on stdout", "hello on stderr"]
    assert srv.port == 9
    out, err = capfd.readouterr()
    assert "hello on" not in out + err


def test_a_real_servers_protocol_lines_are_consumed_not_logged():
    srv = labkit.serve("selectors_echo")
    srv.stop()
    srv.stop()
    assert not srv.alive and "READY" not in srv.log()


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
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the lifeline
        parent.wait(5)
        assert wait_dead(server_pid, 2.0), "server outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()


FORKING_PARENT = textwrap.dedent("""
    import os, time, labkit
    srv = labkit.serve("selectors_echo")
    copy = os.fork()               # without exec: the copy holds the server's stdin pipe too
    if copy == 0:
        time.sleep(60)
        os._exit(0)
    print(srv.pid, copy, flush=True)
    time.sleep(600)
""")


def test_server_dies_within_2s_when_its_parent_is_killed_even_if_the_parent_forked():
    parent = subprocess.Popen(
        [sys.executable, "-c", FORKING_PARENT], stdout=subprocess.PIPE, text=True
    )
    copy = None
    try:
        server_pid, copy = map(int, read_line(parent, 30).split())
        assert pid_alive(server_pid) and pid_alive(copy)
        parent.send_signal(signal.SIGKILL)  # its stdin pipe stays open: the copy holds it
        parent.wait(5)
        assert wait_dead(server_pid, 2.0), "server outlived its SIGKILLed (forked) parent"
        assert pid_alive(copy)  # so it was not the lifeline's EOF
    finally:
        parent.kill()
        parent.wait()
        if copy:
            os.kill(copy, signal.SIGKILL)
            assert wait_dead(copy, 5)


INTERRUPTED_PARENT = textwrap.dedent("""
    import signal, sys, labkit
    # like a Jupyter kernel: SIGINT interrupts the work at hand, it does not end the process
    signal.signal(signal.SIGINT, lambda *_: print("interrupted", flush=True))
    with labkit.serve("select_echo") as srv:
        print(srv.pid, srv.port, flush=True)
        sys.stdin.readline()       # until the test is done
""")


def test_server_ignores_sigint_sent_to_the_parents_group():
    # Jupyter's "interrupt" sends SIGINT to the kernel's whole process group; the server,
    # in a session of its own, is not in it.
    parent = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        server_pid, port = map(int, read_line(parent, 30).split())
        os.killpg(parent.pid, signal.SIGINT)  # the parent leads its group, as a kernel does
        assert read_line(parent).strip() == "interrupted"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"still here")
            assert receive_exactly(sock, 10) == b"still here"
        assert pid_alive(server_pid) and os.getsid(server_pid) == server_pid
        parent.communicate("done\n", timeout=10)  # the parent stops it on its way out
        assert parent.returncode == 0 and wait_dead(server_pid, 2)
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize("name", NAMES)
def test_sigterm_stops_a_server_cleanly(name):
    srv = labkit.serve(name)
    os.kill(srv.pid, signal.SIGTERM)
    assert srv.process.wait(3) == 0
    srv.stop()


def test_proc_waiting_tells_a_waiting_process_from_a_busy_one():
    from labkit import proc

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert proc.wait_until(lambda: proc.waiting(sleeper.pid), timeout=10)
        assert proc.wait_until(lambda: proc.cpu_seconds(spinner.pid) > 0.2, timeout=20)
        assert not any(proc.waiting(spinner.pid) for _ in range(5))
    finally:
        for child in (sleeper, spinner):
            child.kill()
            child.wait(5)
    assert proc.waiting(spinner.pid)  # gone: it waits for nothing any more
