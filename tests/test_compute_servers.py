"""Lesson 10's compute servers (``labkit.compute``'s protocol) on selectors, gevent and asyncio.

Each one, with its CPU work in the loop (``--offload none``), in gevent's thread pool
(``threads``) or in a process pool (``pool``): it answers by the protocol, really burns the CPU
it is asked for, survives bad clients, and shows the lesson's claim at small scale: while one
client's WORK runs in the loop every other client waits; in a process pool nobody does; in
threads the loop is back, but in GIL slices and with no parallel work. Their pool workers die
with them, even after a SIGKILL.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from processes import pid_alive, read_line, wait_dead
from storm import Health, alive, flood, junk, rss_kib, send_and_vanish

import labkit
from labkit import compute, proc
from labkit.background import ServerStartError
from labkit.clients.echo import push_without_reading

CASES = {
    "selectors-none": ("compute_selectors", "none"),
    "selectors-pool": ("compute_selectors", "pool"),
    "gevent-none": ("compute_gevent", "none"),
    "gevent-threads": ("compute_gevent", "threads"),
    "gevent-pool": ("compute_gevent", "pool"),
    "asyncio-none": ("compute_asyncio", "none"),
    "asyncio-pool": ("compute_asyncio", "pool"),
}
POOLS = [case for case, (_, offload) in CASES.items() if offload == "pool"]
IN_THE_LOOP = [case for case, (_, offload) in CASES.items() if offload == "none"]


@pytest.fixture(scope="module", params=list(CASES))
def server(request):
    name, offload = CASES[request.param]
    with labkit.serve(name, offload=offload, client_timeout=2.0) as srv:
        srv.case = request.param
        yield srv
        assert alive(srv.pid), f"{request.param} died:\n{srv.log(last=20)}"


class Conn:
    """A line client with a timeout on every call."""

    def __init__(self, address, timeout: float = 15.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.file = self.sock.makefile("rb")

    def ask(self, *lines: bytes) -> list[bytes]:
        self.sock.sendall(b"".join(line + b"\n" for line in lines))
        return [self.file.readline() for _ in lines]

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (its pool workers), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def ping_time(address, token: str = "t") -> float:
    """Seconds from connecting-and-sending a PING to its PONG."""
    with Conn(address) as c:
        start = time.perf_counter()
        assert c.ask(f"PING {token}".encode())[0].startswith(f"PONG {token} ".encode())
        return time.perf_counter() - start


def ping_during_work(srv, work_ms: int = 300, settle: float = 0.05) -> float:
    """The PING latency of one client while another one's WORK runs."""
    with Conn(srv.address) as worker, Conn(srv.address) as pinger:
        assert pinger.ask(b"PING warm")[0].startswith(b"PONG warm")
        worker.sock.sendall(b"WORK %d\n" % work_ms)
        time.sleep(settle)  # the WORK is under way
        start = time.perf_counter()
        assert pinger.ask(b"PING during")[0].startswith(b"PONG during")
        took = time.perf_counter() - start
        assert worker.file.readline().startswith(b"DONE %d " % work_ms)
        return took


# -- the protocol ------------------------------------------------------------------------------
def test_ping_is_answered_by_the_server_process(server):
    with Conn(server.address) as c:
        assert c.ask(b"PING abc", b"PING a-B_9") == [
            f"PONG abc {server.pid}\n".encode(),
            f"PONG a-B_9 {server.pid}\n".encode(),
        ]


def test_work_burns_the_cpu_it_asks_for(server):
    """/proc counts CPU time in clock ticks (10 ms): WORK 200 is read as 190-210 ms."""
    pool = CASES[server.case][1] == "pool"
    helpers = children(server.pid) if pool else []  # the workers, and multiprocessing's
    if pool:  # resource tracker (spawn starts one)
        assert len(helpers) >= 2, f"--pool-size defaults to 2 workers: {helpers}"

    def cpu() -> tuple[float, float]:
        return proc.cpu_seconds(server.pid), sum(proc.cpu_seconds(h) for h in helpers)

    before = cpu()
    with Conn(server.address) as c:
        assert c.ask(b"WORK 200") == [f"DONE 200 {server.pid}\n".encode()]
    after = cpu()
    own, in_pool = after[0] - before[0], after[1] - before[1]
    if pool:  # the workers burned it; the server only passed it on
        assert in_pool >= 0.17 and own < 0.05, (own, in_pool)
    else:
        assert own >= 0.17, own


def test_bad_lines_get_err_and_the_connection_goes_on(server):
    bad = [
        b"",
        b"HELLO",
        b"ping abc",
        b"PING",
        b"PING a b",
        b"PING " + b"x" * 65,
        b"PING caf\xc3\xa9",
        b"PING a\x00b",
        b"WORK",
        b"WORK 0",
        b"WORK 5001",
        b"WORK -1",
        b"WORK 1e3",
        b"WORK \xd9\xa3",  # an Arabic-Indic digit
        b"WORK 99999999999999999999",
        b"\xff\xfe\x00",
    ]
    with Conn(server.address) as c:
        replies = c.ask(*bad, b"PING still-here")
        assert all(r.startswith(b"ERR ") and r.endswith(b"\n") for r in replies[:-1]), replies
        assert replies[-1] == f"PONG still-here {server.pid}\n".encode()
        assert c.ask(b"PING x\r") == [f"PONG x {server.pid}\n".encode()]  # telnet's \r\n


@pytest.mark.parametrize("how", ["no newline", "with newline", "after good lines"])
def test_a_line_too_long_gets_err_and_a_close(server, how):
    long = b"PING " + b"a" * compute.MAX_LINE
    data = {
        "no newline": long,
        "with newline": long + b"\nPING never\n",
        "after good lines": b"PING a\nPING b\n" + long,
    }[how]
    with Conn(server.address) as c:
        c.sock.sendall(data)
        received = c.file.read()  # until the server closes
    good = "ab" if how == "after good lines" else ""
    expected = [f"PONG {t} {server.pid}\n".encode() for t in good]
    assert received == b"".join(expected) + compute.TOO_LONG


def test_a_line_of_max_line_bytes_is_fine(server):
    token_line = b"PING " + b"a" * 64 + b" " * (compute.MAX_LINE - 70)  # 1,023 bytes + \n
    with Conn(server.address) as c:
        assert c.ask(token_line) == [f"PONG {'a' * 64} {server.pid}\n".encode()]


def test_many_requests_in_one_send_come_back_in_order(server):
    tokens = [f"t{i}" for i in range(2000)]
    with Conn(server.address) as c:
        lines = [f"PING {t}".encode() for t in tokens]
        lines[1000:1000] = [b"WORK 5"]
        replies = c.ask(*lines)
    assert replies[1000] == f"DONE 5 {server.pid}\n".encode()
    del replies[1000]
    assert [r.split()[1].decode() for r in replies] == tokens


# -- bad clients ------------------------------------------------------------------------------
def test_no_client_can_kill_or_bloat_a_compute_server(server):
    rng = random.Random(f"compute:{server.case}")
    ping_time(server.address)
    before = Health.of(server.pid)
    for i in range(12):  # random bytes; some leave by a reset, some by a half-close
        send_and_vanish(*server.address, junk(rng, rng.randint(1, 100_000)), half_close=i % 2)
    with Conn(server.address) as c:  # half a line, then gone
        c.sock.sendall(b"PING half")
    grown_before = rss_kib(server.pid)
    with Conn(server.address) as lazy:  # a client that never reads its replies
        pings = b"PING flood\n" * 20_000  # pipelined: never reads the replies
        sent = push_without_reading(lazy.sock, stuck_after=0.3, longest=2.0, chunk=pings)
        assert ping_time(server.address) < 5.0  # the others are still served
        grown = rss_kib(server.pid) - grown_before
    assert sent < 64 << 20, "the server read everything a non-reader sent"
    assert grown < 16 * 1024, f"a non-reader cost {grown} KiB"
    assert ping_time(server.address) < 5.0
    Health.of(server.pid).assert_back_to(before, server.pid)


def test_out_of_descriptors_the_server_pauses_and_recovers(server):
    limits = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (128, limits[1]))  # the soft one only
    try:
        with flood(server.host, server.port, 200, timeout=5) as socks:
            assert len(socks) > 128
            time.sleep(0.5)
            assert alive(server.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.open_files(server.pid) > 100:
            time.sleep(0.1)  # the held clients' sockets close as their EOF is read
        assert ping_time(server.address) < 5.0
    finally:
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, limits)
    assert server.stats().get("accept_paused", 0) > 0


# -- the lesson's claim, at small scale ----------------------------------------------------------
def test_work_in_the_loop_stalls_everyone_and_a_pool_does_not(server):
    offload = CASES[server.case][1]
    took = ping_during_work(server, work_ms=600)  # the PING goes 50 ms in: 550 ms left
    if offload == "none":
        assert took >= 0.2, f"a PING took {took * 1000:.0f} ms during a WORK 600 in the loop"
    else:  # the pool, and threads too: the loop is free again between GIL slices
        assert took < 0.1, f"a PING took {took * 1000:.0f} ms during a WORK 600 ({offload})"


@pytest.mark.parametrize("name", ["compute_gevent"])
def test_threads_give_the_loop_back_only_in_gil_slices(name):
    """``burn`` holds the GIL: gevent's hub gets it back only when ``burn``'s thread is made
    to drop it (every ``sys.getswitchinterval()``, 5 ms), and two WORKs in threads take as long
    as one after the other. A process pool has neither cost."""
    medians, both = {}, {}
    for offload in ("threads", "pool"):
        with labkit.serve(name, offload=offload) as srv:
            with Conn(srv.address) as worker, Conn(srv.address) as pinger:
                pinger.ask(b"PING warm")
                worker.sock.sendall(b"WORK 400\n")
                time.sleep(0.03)
                times = []
                for _ in range(15):  # spaced out: the hub waits in epoll between them
                    start = time.perf_counter()
                    pinger.ask(b"PING p")
                    times.append(time.perf_counter() - start)
                    time.sleep(0.01)
                medians[offload] = statistics.median(times)
                worker.file.readline()
            with Conn(srv.address) as a, Conn(srv.address) as b:
                start = time.perf_counter()
                a.sock.sendall(b"WORK 300\n")
                b.sock.sendall(b"WORK 300\n")
                assert a.file.readline().startswith(b"DONE") and b.file.readline().startswith(
                    b"DONE"
                )
                both[offload] = time.perf_counter() - start
    assert medians["threads"] >= 0.002, medians  # ~5 ms: one switch interval a request
    assert medians["pool"] < 0.002, medians  # ~0.1 ms
    assert both["threads"] >= 0.55, both  # 600 ms of CPU under one GIL: no overlap possible


def wait_for_log(srv, text: str, seconds: float = 5.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and text not in srv.log():
        time.sleep(0.05)
    return srv.log()


@pytest.mark.parametrize(
    "name, says",
    [
        ("compute_gevent", ["appears to be blocked", "in burn"]),
        ("compute_asyncio", ["Executing <Task", "handle()", "took 0."]),
    ],
)
def test_monitor_names_the_culprit_in_the_log(name, says):
    with labkit.serve(name, monitor=True) as srv:
        with Conn(srv.address) as c:
            assert c.ask(b"WORK 10")[0].startswith(b"DONE")  # a tenth of max_blocking_time
            time.sleep(0.3)
            assert says[0] not in srv.log()
            assert c.ask(b"WORK 300")[0].startswith(b"DONE")
        log = wait_for_log(srv, says[0])
    assert all(s in log for s in says), log[-3000:]


# -- pool workers die with the server ----------------------------------------------------------
PARENT = textwrap.dedent("""
    import socket, sys, time, labkit
    srv = labkit.serve(sys.argv[1], offload="pool")
    burning = socket.create_connection(srv.address, timeout=10)
    burning.sendall(b"WORK 5000\\n")      # one worker is burning when the kill comes
    time.sleep(0.3)
    print(srv.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("name", ["compute_selectors", "compute_gevent", "compute_asyncio"])
@pytest.mark.parametrize("killed", ["kernel", "server"])
def test_pool_workers_die_within_2s_of_a_sigkill(name, killed):
    """SIGKILL the process that started the server (a kernel), or the server itself: no pool
    worker may be left, not even the one burning a WORK 5000."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, name], stdout=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    try:
        server_pid = int(read_line(parent, 30))
        workers = children(server_pid)
        assert len(workers) >= 2 and all(pid_alive(w) for w in workers), workers  # + tracker
        if killed == "server":
            os.kill(server_pid, signal.SIGKILL)
        else:
            parent.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        assert wait_dead(server_pid, 2.0), "the server outlived its SIGKILLed parent"
        left = [w for w in workers if not wait_dead(w, max(0.0, deadline - time.monotonic()))]
        assert not left, f"pool workers {left} outlived the SIGKILL by 2 s"
    finally:
        parent.kill()
        parent.wait()
        for w in workers:
            if pid_alive(w):
                os.kill(w, signal.SIGKILL)


def test_threads_are_gevents_alone():
    with pytest.raises(ServerStartError, match="invalid choice: 'threads'"):
        labkit.serve("compute_asyncio", offload="threads")
