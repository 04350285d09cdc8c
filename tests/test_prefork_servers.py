"""Pre-fork servers (lesson 10): prefork_compute (shared socket / SO_REUSEPORT) and gunicorn
with gevent workers. Every answer comes from a worker; no worker outlives a stop, nor a SIGKILL
of the kernel that started the server, nor a SIGKILL of the server itself."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter

import pytest
from processes import pid_alive, read_line, wait_dead

import labkit
from labkit.clients.load import receive_exactly

N_CONNECTIONS = 200


def worker_pids(srv):
    stats = srv.stats()
    return {stats[f"worker{n}_pid"] for n in range(1, stats["workers"] + 1)}


def ping(address, token):
    """One connection, one PING: the pid that answered."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(f"PING {token}\n".encode())
        words = sock.makefile("rb").readline().split()
    assert words[:2] == [b"PONG", token.encode()], words
    return int(words[2])


def http_get(address, path):
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize("balance", ["shared", "reuseport"])
def test_every_connection_is_answered_by_one_of_the_workers(balance):
    with labkit.serve("prefork_compute", workers=2, balance=balance) as srv:
        workers = worker_pids(srv)
        assert len(workers) == 2 and srv.pid not in workers
        answered = Counter(ping(srv.address, f"t{i}") for i in range(N_CONNECTIONS))
        assert sum(answered.values()) == N_CONNECTIONS
        assert set(answered) <= workers, (answered, workers)
        if balance == "reuseport":  # the kernel hashes 200 client ports over 2 sockets
            assert min(answered[pid] for pid in workers) >= N_CONNECTIONS // 10, answered


def test_work_burns_in_one_worker_and_the_other_still_answers():
    with labkit.serve("prefork_compute", workers=2, balance="reuseport") as srv:
        workers = worker_pids(srv)
        with socket.create_connection(srv.address, timeout=10) as sock:
            sock.sendall(b"WORK 300\n")
            words = sock.makefile("rb").readline().split()
        assert words[:2] == [b"DONE", b"300"] and int(words[2]) in workers


@pytest.mark.parametrize("balance", ["shared", "reuseport"])
def test_stop_leaves_no_worker(balance):
    srv = labkit.serve("prefork_compute", workers=2, balance=balance)
    workers = worker_pids(srv)
    assert all(pid_alive(pid) for pid in workers)
    srv.stop()
    assert all(wait_dead(pid, 2.0) for pid in workers)


def test_sigterm_to_the_parent_alone_stops_its_workers():
    srv = labkit.serve("prefork_compute", workers=2)
    workers = worker_pids(srv)
    os.kill(srv.pid, signal.SIGTERM)  # the parent only, not its group: its clean-up does it
    assert srv.process.wait(3) == 0
    assert all(wait_dead(pid, 2.0) for pid in workers)
    srv.stop()


PARENT = textwrap.dedent("""
    import sys, time, labkit
    srv = labkit.serve(sys.argv[1], **eval(sys.argv[2]))
    print(srv.pid, flush=True)
    time.sleep(600)
""")


def started_by_a_parent(name, options, env=None):
    """A kernel-like parent that starts the server: (the parent, the server's pid)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, name, repr(options)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    return parent, int(read_line(parent, 30))


@pytest.mark.parametrize("balance", ["shared", "reuseport"])
def test_workers_die_within_2s_when_the_kernel_is_killed(balance):
    parent, server = started_by_a_parent("prefork_compute", {"balance": balance})
    try:
        workers = [int(pid) for pid in children_of(server)]
        assert len(workers) == 2 and all(pid_alive(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the lifeline
        parent.wait(5)
        assert all(wait_dead(pid, 2.0) for pid in [server, *workers]), "a worker outlived it"
    finally:
        parent.kill()
        parent.wait()


def test_workers_die_within_2s_when_the_server_itself_is_killed_even_mid_work():
    with labkit.serve("prefork_compute", workers=2) as srv:
        workers = worker_pids(srv)
        with socket.create_connection(srv.address, timeout=10) as sock:
            sock.sendall(b"WORK 5000\n")  # one worker burns the CPU for 5 s
            time.sleep(0.3)
            os.kill(srv.pid, signal.SIGKILL)  # no clean-up: each worker's own watch
            assert all(wait_dead(pid, 2.0) for pid in workers), "a worker outlived its parent"


def children_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return f.read().split()


def test_junk_does_not_kill_a_worker():
    junk = [b"\x00\xff" * 300 + b"\n", b"PING\n", b"WORK 99999\n", b"PING " + b"x" * 65 + b"\n"]
    with labkit.serve("prefork_compute", workers=2, balance="reuseport") as srv:
        workers = worker_pids(srv)
        for _ in range(20):
            with socket.create_connection(srv.address, timeout=10) as sock:
                sock.sendall(b"".join(junk))
                replies = receive_lines(sock, len(junk))
                assert all(r.startswith(b"ERR ") for r in replies), replies
                sock.sendall(b"PING ok\n")
                assert sock.makefile("rb").readline().startswith(b"PONG ok ")
        with socket.create_connection(srv.address, timeout=10) as sock:
            sock.sendall(b"y" * 5000)  # no newline at all: too long, then closed
            assert receive_exactly(sock, 18) == b"ERR line too long\n"
            assert sock.recv(100) == b""
        answered = {ping(srv.address, f"after{i}") for i in range(40)}
        assert answered == workers and all(pid_alive(pid) for pid in workers)


def receive_lines(sock, n):
    data = b""
    while data.count(b"\n") < n:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data.splitlines()


# -- gunicorn -------------------------------------------------------------------------------------
@pytest.fixture
def marker(monkeypatch):
    """An environment variable every process we start inherits: finds any we leave behind."""
    value = uuid.uuid4().hex
    monkeypatch.setenv("LABKIT_TEST_MARKER", value)
    return f"LABKIT_TEST_MARKER={value}".encode()


def marked_processes(marker):
    """Pids of the live processes whose environment holds ``marker`` (ours: /proc/self's
    environment is the one we started with, without it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0") and pid_alive(int(pid)):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def gunicorn_processes(marker):
    found = []
    for pid in marked_processes(marker):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"-m\0gunicorn\0" in f.read():  # not labkit's gunicorn_compute
                    found.append(pid)
        except OSError:
            pass
    return found


def gone_within(marker, seconds):
    deadline = time.monotonic() + seconds
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return marked_processes(marker)


@pytest.mark.parametrize("reuse_port", [False, True])
def test_gunicorn_answers_from_its_workers_and_stops_cleanly(reuse_port, marker):
    srv = labkit.serve("gunicorn_compute", workers=2, reuse_port=reuse_port)
    try:
        master = srv.stats()["gunicorn_pid"]
        assert master in gunicorn_processes(marker)
        workers = {int(pid) for pid in children_of(master)}
        assert len(workers) == 2
        answered = Counter()
        for i in range(N_CONNECTIONS):
            status, body = http_get(srv.address, f"/ping?token=t{i}")
            words = body.split()
            assert status == 200 and words[:2] == ["PONG", f"t{i}"], body
            answered[int(words[2])] += 1
        assert set(answered) <= workers and sum(answered.values()) == N_CONNECTIONS
        if reuse_port:
            assert len(answered) == 2, answered
        status, body = http_get(srv.address, "/work?ms=50")
        assert status == 200 and body.split()[:2] == ["DONE", "50"]
        assert int(body.split()[2]) in workers
    finally:
        srv.stop()
    assert gone_within(marker, 2.0) == []


def test_gunicorn_dies_within_2s_when_the_kernel_is_killed(marker):
    parent, server = started_by_a_parent("gunicorn_compute", {"workers": 2})
    try:
        assert len(gunicorn_processes(marker)) == 3  # the master and its two workers
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        assert gone_within(marker, 2.0) == []
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize("reuse_port", [False, True])
def test_gunicorn_dies_within_2s_when_the_server_itself_is_killed_even_mid_work(reuse_port, marker):
    with labkit.serve("gunicorn_compute", workers=2, reuse_port=reuse_port) as srv:
        assert len(gunicorn_processes(marker)) == 3
        with socket.create_connection(srv.address, timeout=10) as sock:
            sock.sendall(b"GET /work?ms=5000 HTTP/1.0\r\n\r\n")  # a worker burns for 5 s
            time.sleep(0.3)
            os.kill(srv.pid, signal.SIGKILL)  # no clean-up: PR_SET_PDEATHSIG does it
            assert gone_within(marker, 2.0) == []
