"""Every echo server, over real loopback sockets: many clients, random pieces, exact bytes."""

import hashlib
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import labkit
from labkit.clients.echo import echo_roundtrip, random_pieces

# Every correct echo server, with its options; the broken ones are tested for their bug below.
VARIANTS = {
    "blocking_echo": {},
    "thread_echo": {},
    "select_echo": {},
    "selectors_echo": {},
    "poll_echo": {},
    "epoll_echo": {},
    "epoll_echo-edge": {"edge": True},
    "gevent_echo": {},
    "gevent_stream_echo": {"pool": 1000},
    "asyncio_echo-streams": {"api": "streams", "loop": "asyncio"},
    "asyncio_echo-protocol": {"api": "protocol", "loop": "asyncio"},
    "asyncio_echo-streams-uvloop": {"api": "streams", "loop": "uvloop"},
    "asyncio_echo-protocol-uvloop": {"api": "protocol", "loop": "uvloop"},
}
CONCURRENT = [v for v in VARIANTS if v != "blocking_echo"]


def start(variant):
    return labkit.serve(variant.split("-")[0], **VARIANTS[variant])


@pytest.fixture(params=list(VARIANTS))
def echo_server(request):
    with start(request.param) as srv:
        yield srv


def settled_stats(server, done, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not done(stats := server.stats()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return stats


def one_client(address, seed, size=64 * 1024):
    rng = random.Random(seed)
    payload = rng.randbytes(size)
    back = echo_roundtrip(address, payload, random_pieces(size, rng), timeout=60)
    return (len(back), hashlib.sha256(back).hexdigest()), (
        size,
        hashlib.sha256(payload).hexdigest(),
    )


def test_200_concurrent_clients_get_exactly_their_bytes(echo_server):
    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(lambda s: one_client(echo_server.address, s), range(200)))
    assert all(got == want for got, want in results)
    # The server counts bytes_out just after send() returns, which can be a moment after the
    # client already has them: wait for the counters to catch up.
    stats = settled_stats(echo_server, lambda s: s.get("bytes_out") == 200 * 64 * 1024)
    assert stats["connections"] == 200
    assert stats["bytes_in"] == stats["bytes_out"] == 200 * 64 * 1024
    assert stats.get("errors", 0) == 0


def test_slow_reader_loses_nothing(echo_server):
    payload = random.Random(7).randbytes(4 * 1024 * 1024)  # far more than the socket buffers
    back = echo_roundtrip(
        echo_server.address, payload, timeout=60, read_size=16384, read_pause=0.0005
    )
    assert len(back) == len(payload)
    assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()


def test_500_concurrent_clients_with_random_sized_messages(echo_server):
    sizes = random.Random(500)
    with ThreadPoolExecutor(max_workers=500) as pool:
        results = list(
            pool.map(
                lambda s: one_client(echo_server.address, s, size=sizes.randint(1, 20_000)),
                range(500),
            )
        )
    assert all(got == want for got, want in results)


def test_client_vanishing_mid_message_leaves_others_served(echo_server):
    import socket

    for _ in range(5):
        s = socket.create_connection(echo_server.address, timeout=5)
        s.sendall(os.urandom(30_000))  # half a "message", then gone without reading
        s.close()
    got, want = one_client(echo_server.address, 1234, size=50_000)
    assert got == want


def test_a_client_that_half_closes_still_gets_its_whole_echo(echo_server):
    from storm import send_half_close_read

    for size in (100_000, 3_000_000):  # below and above HIGH_WATER
        payload = random.Random(size).randbytes(size)
        back = send_half_close_read(*echo_server.address, payload)
        assert (len(back), hashlib.sha256(back).digest()) == (
            len(payload),
            hashlib.sha256(payload).digest(),
        )


@pytest.mark.parametrize("name", CONCURRENT)
def test_slow_reader_does_not_stall_the_others(name):
    with start(name) as srv:
        payload = random.Random(8).randbytes(8 * 1024 * 1024)
        slow_done = threading.Event()

        def slow():
            echo_roundtrip(srv.address, payload, timeout=60, read_size=4096, read_pause=0.001)
            slow_done.set()

        t = threading.Thread(target=slow)
        t.start()
        try:
            # While the slow reader is still being served, 20 quick clients come and go.
            for seed in range(20):
                got, want = one_client(srv.address, seed, size=4096)
                assert got == want
            assert not slow_done.is_set(), "the slow reader finished too soon to prove anything"
        finally:
            t.join(90)
        assert slow_done.is_set()


def test_server_survives_client_that_vanishes(echo_server):
    import socket

    s = socket.create_connection(echo_server.address, timeout=5)
    s.sendall(os.urandom(100_000))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST with unread echo pending
    got, want = one_client(echo_server.address, 99, size=10_000)
    assert got == want


def test_naive_select_server_really_loses_data_and_the_fix_does_not():
    from labkit.clients.echo import echo_late_reader

    payload = random.Random(3).randbytes(16_000_000)
    with labkit.serve("select_echo_naive") as srv:
        back = echo_late_reader(srv.address, payload, server_pid=srv.pid)
        lost = srv.stats()["bytes_lost"]
    assert len(back) < len(payload) and lost == len(payload) - len(back)
    with labkit.serve("select_echo") as srv:
        assert echo_late_reader(srv.address, payload, server_pid=srv.pid) == payload


def test_spinning_gevent_server_really_burns_cpu_and_the_fix_does_not():
    from labkit.clients.load import run_echo_clients

    def idle_cpu(name):
        with labkit.serve(name) as srv:
            result = run_echo_clients(srv.address, n_clients=5)
            assert result.round_trips == 15 and not result.errors
            before = srv.cpu_seconds()
            time.sleep(1.0)
            return srv.cpu_seconds() - before

    assert idle_cpu("gevent_echo_spin") > 0.3
    assert idle_cpu("gevent_echo") < 0.1


def test_stream_server_pool_caps_concurrency():
    from labkit.clients.load import run_echo_clients

    with labkit.serve("gevent_stream_echo", pool=5) as srv:
        result = run_echo_clients(srv.address, n_clients=30, messages=2, pause=0.05)
        stats = srv.stats()
    assert result.round_trips == 60 and not result.errors
    assert stats["most_active"] == 5


@pytest.mark.parametrize(
    "name", ["blocking_echo", "thread_echo", "gevent_echo", "gevent_stream_echo", "gevent_files"]
)
def test_a_silent_client_is_dropped_after_the_client_timeout(name):
    import socket

    with labkit.serve(name, client_timeout=0.5) as srv:
        with socket.create_connection(srv.address, timeout=5) as s:
            started = time.monotonic()
            said = b""
            while chunk := s.recv(100):  # the server hung up on us (a file server may
                said += chunk  # say why first: "ERR 408 ...")...
            assert 0.4 < time.monotonic() - started < 4  # ... after about the timeout
            assert said == b"" or said.startswith(b"ERR 408")


def test_a_missing_uvloop_is_a_clear_start_error(tmp_path, monkeypatch):
    """A uvloop package that fails to import (first on the child's path) stands for none."""
    (tmp_path / "uvloop").mkdir()
    (tmp_path / "uvloop" / "__init__.py").write_text("raise ImportError('no uvloop here')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(labkit.ServerStartError, match=r"needs the uvloop package.*pip install"):
        labkit.serve("asyncio_echo", loop="uvloop")
    with labkit.serve("asyncio_echo", loop="asyncio") as srv:  # the standard loop still works
        got, want = one_client(srv.address, 13, size=1000)
        assert got == want


def test_stream_server_without_a_pool_serves_client_1001_at_once():
    """With ``--pool 1000`` the 1,001st client would wait, unanswered, until one of the first
    1,000 left or timed out; by default there is no cap."""
    import socket

    from storm import flood

    from labkit.limits import max_clients

    if max_clients() < 1100:
        pytest.skip("this process may not hold 1,100 sockets here")
    with labkit.serve("gevent_stream_echo") as srv:
        with flood(srv.host, srv.port, 1000) as idle:
            assert len(idle) == 1000
            with socket.create_connection(srv.address, timeout=5) as late:
                late.settimeout(2.0)  # a client beyond a full pool would wait far longer
                late.sendall(b"still served")
                assert late.recv(100) == b"still served"


def test_counters_add_up_over_threads_that_come_and_go():
    """launch.counters: each thread adds to its own dict without a lock; the snapshot sums
    them, and the dicts of threads that ended are folded in (not kept one per thread ever)."""
    from labkit.counters import Counters

    counters = Counters()

    def one_round(n_threads=100):
        together = threading.Barrier(n_threads)  # all alive at once: each its own thread id

        def count():
            together.wait(10)
            for _ in range(100):
                counters.add(bytes_in=2)
            mine = counters.for_this_thread()
            for _ in range(100):
                mine["bytes_out"] += 3

        threads = [threading.Thread(target=count) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)

    for _ in range(5):
        one_round()
    counters.peak(most=5)
    counters.peak(most=3)
    assert counters.snapshot() == {"bytes_in": 500 * 200, "bytes_out": 500 * 300, "most": 5}
    assert len(counters._threads) <= 300  # 500 threads counted; the ended ones folded in
