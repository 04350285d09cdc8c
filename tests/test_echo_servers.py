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

ECHO_SERVERS = ["blocking_echo", "thread_echo", "select_echo", "selectors_echo"]
CONCURRENT_SERVERS = ["thread_echo", "select_echo", "selectors_echo"]


@pytest.fixture(params=ECHO_SERVERS)
def echo_server(request):
    with labkit.serve(request.param) as srv:
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
    return (len(back), hashlib.sha256(back).hexdigest()), (size, hashlib.sha256(payload).hexdigest())


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
    back = echo_roundtrip(echo_server.address, payload, timeout=60, read_size=16384,
                          read_pause=0.0005)
    assert len(back) == len(payload)
    assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("name", CONCURRENT_SERVERS)
def test_slow_reader_does_not_stall_the_others(name):
    with labkit.serve(name) as srv:
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
    s.close()                                   # RST with unread echo pending
    got, want = one_client(echo_server.address, 99, size=10_000)
    assert got == want
