"""Fuzz every echo server and latency_http: no client can kill or bloat them.

Each test throws a seeded, time-bounded storm of bad clients at one running server: random
bytes, half-closes, clients that send megabytes and never read, clients that vanish mid-message
(reset), and a flood of connections past the server's open-file limit. Afterwards the server
must be alive, answer a good client byte for byte (length and SHA-256), and be back near its
baseline of descriptors and memory (a client that does not read may cost about HIGH_WATER).
"""

from __future__ import annotations

import hashlib
import random
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from storm import (
    Health,
    alive,
    cap_open_files,
    flood,
    junk,
    rss_kib,
    send_and_vanish,
    send_half_close_read,
)

import labkit
from labkit.clients.echo import echo_roundtrip, random_pieces
from labkit.limits import raise_open_file_limit

# Every echo server that must survive (the ones broken on purpose are not here). A short
# --client-timeout, so that the blocking servers drop a non-reading client within the test.
ECHO = {
    "blocking_echo": {},
    "thread_echo": {},
    "select_echo": {},
    "poll_echo": {},
    "epoll_echo": {},
    "epoll_echo-edge": {"edge": True},
    "selectors_echo": {},
    "gevent_echo": {},
    "gevent_stream_echo": {},
    "asyncio_echo-streams": {"api": "streams", "loop": "asyncio"},
    "asyncio_echo-protocol": {"api": "protocol", "loop": "asyncio"},
    "asyncio_echo-streams-uvloop": {"api": "streams", "loop": "uvloop"},
    "asyncio_echo-protocol-uvloop": {"api": "protocol", "loop": "uvloop"},
}
# uvloop meets EMFILE its own way (libuv's): it keeps a spare descriptor, and when out of them
# it frees the spare, accepts every waiting client and closes it at once, rather than leaving
# them queued until a descriptor is free. It never tells the program: no pause to count. A client
# that connects while the server is still out of descriptors is dropped too, so on uvloop the
# good client comes once the server is back to its baseline.
SHEDS_WHEN_OUT_OF_DESCRIPTORS = {
    v for v, options in ECHO.items() if options.get("loop") == "uvloop"
}
CLIENT_TIMEOUT = 1.0
HIGH_WATER = 1 << 20  # what the non-blocking servers buffer for one client, at most
MIB = 1024
PAGES = Path(__file__).resolve().parent.parent / "data" / "pages"


def sha(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


def good_echo(address, rng: random.Random, size: int = 64 * 1024) -> None:
    payload = rng.randbytes(size)
    back = echo_roundtrip(address, payload, random_pieces(size, rng), timeout=20)
    assert sha(back) == sha(payload)


def start_echo(variant: str):
    return labkit.serve(variant.split("-")[0], client_timeout=CLIENT_TIMEOUT, **ECHO[variant])


# -- the storms --------------------------------------------------------------------------------
def junk_round_trips(address, rng: random.Random, n: int = 12) -> None:
    """Random bytes must come back exactly, also from a client that half-closes then reads."""
    for i in range(n):
        payload = junk(rng, rng.randint(1, 300_000))
        if i % 2:
            back = echo_roundtrip(address, payload, random_pieces(len(payload), rng), timeout=20)
        else:
            back = send_half_close_read(*address, payload)
        assert sha(back) == sha(payload), f"junk client {i} got back different bytes"


def vanishers(address, rng: random.Random, n: int = 10) -> None:
    """Clients that send part of a message and leave: reset, or half-close then close."""
    for i in range(n):
        send_and_vanish(*address, junk(rng, rng.randint(1, 200_000)), half_close=bool(i % 2))


def push_until_refused(sock: socket.socket, limit: int, seconds: float) -> int:
    """Send without reading until the server stops taking bytes (TCP back-pressure), ``limit``
    bytes went, or ``seconds`` passed. Returns how many bytes the kernel accepted."""
    sock.settimeout(0.3)  # a 0.3 s stall means the server stopped reading
    chunk, sent = bytes(256 * 1024), 0
    deadline = time.monotonic() + seconds
    while sent < limit and time.monotonic() < deadline:
        try:
            sent += sock.send(chunk)
        except (TimeoutError, OSError):
            break
    return sent


def non_readers_cost(server, n: int = 2, limit: int = 48 << 20) -> int:
    """Hold ``n`` clients that pipeline megabytes and never read; while they are held, a good
    client is still served. Returns the server's memory growth (KiB) while they are held."""
    before = rss_kib(server.pid)
    socks = [socket.create_connection(server.address, timeout=5) for _ in range(n)]
    try:
        for s in socks:
            push_until_refused(s, limit, seconds=2.0)
        grown = rss_kib(server.pid) - before
        good_echo(server.address, random.Random(5), size=4096)
    finally:
        for s in socks:
            s.close()
    return grown


def flood_past_the_limit(server, limit: int = 256, count: int = 400) -> None:
    """Lower the server's open-file limit, hold more connections than that, then let go."""
    cap_open_files(server.pid, limit)
    with flood(server.host, server.port, count, timeout=5) as socks:
        assert len(socks) > limit, "the flood did not get past the server's limit"
        time.sleep(1.0)  # the server meets EMFILE again and again meanwhile
        assert alive(server.pid), f"{server.name} died in the flood:\n{server.log(last=15)}"


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:  # still open, nothing said: a client the server holds
        return False
    except OSError:  # reset
        return True


def flood_is_shed(server, limit: int = 256, count: int = 400) -> None:
    """uvloop's way: past its open-file limit, the server closes the clients it cannot hold."""
    cap_open_files(server.pid, limit)
    with flood(server.host, server.port, count, timeout=5) as socks:
        assert len(socks) > limit, "the flood did not get past the server's limit"
        time.sleep(1.0)
        assert alive(server.pid), f"{server.name} died in the flood:\n{server.log(last=15)}"
        closed = sum(closed_by_server(s) for s in socks)
    assert len(socks) - limit <= closed < len(socks), f"{closed} of {len(socks)} closed"


# -- the tests -----------------------------------------------------------------------------------
class Findings:
    """Run every storm and note each thing that went wrong, so that one run names every defect
    rather than only the first (once the server is dead, there is nothing more to learn)."""

    def __init__(self, server):
        self.server, self.problems = server, []

    def check(self, what, storm, *args):
        if not alive(self.server.pid):
            return
        try:
            storm(*args)
        except Exception as err:
            self.problems.append(f"{what}: {type(err).__name__}: {str(err)[:400]}")

    def assert_none(self):
        if not alive(self.server.pid):
            self.problems.append(f"it died:\n{self.server.log(last=15)}")
        assert not self.problems, f"{self.server.name}:\n" + "\n".join(self.problems)


def assert_non_readers_cost_at_most_high_water(server):
    grown = non_readers_cost(server)
    # Two clients that never read may cost about HIGH_WATER each (plus recv chunks and the
    # bytearray's spare room), not what they sent (up to 48 MiB each).
    assert grown < 2 * 2 * HIGH_WATER // 1024 + 8 * MIB, f"grew {grown} KiB"


def assert_paused_accepting(server):
    stats = server.stats()
    assert stats.get("accept_paused", 0) > 0, f"never counted a pause in accepting: {stats}"


@pytest.mark.parametrize("variant", list(ECHO))
def test_no_client_can_kill_or_bloat_an_echo_server(variant):
    rng = random.Random(f"storm:{variant}")
    with start_echo(variant) as server:
        good_echo(server.address, rng)
        before = Health.of(server.pid)
        found = Findings(server)
        found.check("random bytes, half-closes", junk_round_trips, server.address, rng)
        found.check("clients vanishing mid-message", vanishers, server.address, rng)
        found.check("clients that never read", assert_non_readers_cost_at_most_high_water, server)

        def back_to_baseline():
            slack = 2 * HIGH_WATER // 1024 + 12 * MIB
            Health.of(server.pid).assert_back_to(before, server.pid, rss_slack_kib=slack)

        if variant in SHEDS_WHEN_OUT_OF_DESCRIPTORS:
            found.check("a flood past the open-file limit, shed", flood_is_shed, server)
            found.check("back to baseline", back_to_baseline)
            found.check("a good client afterwards", good_echo, server.address, rng)
        else:
            found.check("a flood past the open-file limit", flood_past_the_limit, server)
            found.check("a good client afterwards", good_echo, server.address, rng)
            found.check("back to baseline", back_to_baseline)
        if variant not in {"blocking_echo", *SHEDS_WHEN_OUT_OF_DESCRIPTORS}:
            # one client at a time never runs out of descriptors; uvloop does not say
            found.check("out of descriptors counted", assert_paused_accepting, server)
        found.assert_none()


def test_select_echo_refuses_what_select_cannot_watch_and_serves_the_rest():
    soft, _ = raise_open_file_limit()
    if soft < 1400:
        pytest.skip(f"needs about 1,400 open files in the test process (ulimit -n is {soft})")
    with labkit.serve("select_echo") as server:
        before = Health.of(server.pid)
        with flood(server.host, server.port, 1100, timeout=5) as socks:
            assert len(socks) == 1100
            time.sleep(0.5)  # let the server accept (and refuse) them all
            assert alive(server.pid), server.log(last=15)
            for s in socks[:5]:  # the first clients got descriptors below 1024
                s.sendall(b"still here?")
                assert s.recv(100) == b"still here?"
            refused = server.stats().get("refused", 0)
        assert 1100 - 1024 < refused < 1100 - 900
        assert "FD_SETSIZE" in server.log()
        good_echo(server.address, random.Random(1))
        Health.of(server.pid).assert_back_to(before, server.pid)


# -- latency_http ----------------------------------------------------------------------------------
PAGE = PAGES / "page-479k.html"


def http_get(server, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://{server.host}:{server.port}{path}", timeout=10) as r:
        return r.status, r.read()


def read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes; fails if it keeps us longer than
    ``within`` seconds. Returns the bytes and how long it took."""
    started = time.monotonic()
    sock.settimeout(within)
    got = bytearray()
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the server still holds the connection after {within} s") from None
    return bytes(got), time.monotonic() - started


def bad_requests(server, rng: random.Random) -> None:
    """Garbage request lines and huge headers get a 4xx reply or a close, never a crash."""
    requests = [junk(rng, rng.randint(1, 20_000)) + b"\r\n\r\n" for _ in range(10)]
    requests += [
        b"GET /pages/x HTTP/1.1\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        b"GET /pages/x HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 20_000 + b"\r\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",
        b"GET /pages/page-48k.html?delay=" + "١٠".encode() + b" HTTP/1.1\r\n\r\n",
    ]
    for request in requests:
        with socket.create_connection(server.address, timeout=5) as s:
            try:
                s.sendall(request)
            except OSError:  # the server may hang up before reading it all
                continue
            reply, _ = read_until_closed(s, within=10)
            assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply[:200]


def stalled_heads(server, n: int = 10) -> None:
    """Half requests that stall and requests trickled a byte at a time (slowloris) are closed
    after the header timeout, although the client is never silent for the client timeout."""
    socks = [socket.create_connection(server.address, timeout=5) for _ in range(n)]
    for s in socks:
        s.sendall(b"GET /pages/page-48k.html HT")
    trickler = socket.create_connection(server.address, timeout=5)
    started = time.monotonic()
    try:
        for byte in b"GET /pages/page-48k.html HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100:
            trickler.send(bytes([byte]))
            time.sleep(0.1)
            if time.monotonic() - started > 6:
                raise AssertionError("a client trickling its headers was held for 6 s")
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed by the server: what we want
    finally:
        trickler.close()
    for s in socks:
        read_until_closed(s, within=5)
        s.close()


def idle_keep_alive(server) -> None:
    """A kept-alive connection that says nothing more is closed after the client timeout."""
    with socket.create_connection(server.address, timeout=5) as s:
        s.sendall(b"GET /pages/page-48k.html?delay=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        reply, took = read_until_closed(s, within=CLIENT_TIMEOUT + 3)
    assert reply.startswith(b"HTTP/1.1 200") and len(reply) > 48_708


def good_page(server) -> None:
    status, body = http_get(server, f"/pages/{PAGE.name}")
    assert status == 200 and sha(body) == sha(PAGE.read_bytes())


def test_no_client_can_kill_or_bloat_latency_http():
    rng = random.Random("storm:latency_http")
    with labkit.serve(
        "latency_http", root=PAGES, delay=0.0, client_timeout=CLIENT_TIMEOUT, header_timeout=1.0
    ) as server:
        good_page(server)
        before = Health.of(server.pid)
        found = Findings(server)
        found.check("garbage and huge requests", bad_requests, server, rng)
        found.check("stalled and trickled request heads", stalled_heads, server)
        found.check("an idle kept-alive connection", idle_keep_alive, server)
        found.check("clients vanishing mid-request", vanishers, server.address, rng)
        found.check("a flood past the open-file limit", flood_past_the_limit, server)
        found.check("a good client afterwards", good_page, server)
        found.check(
            "back to baseline", lambda: Health.of(server.pid).assert_back_to(before, server.pid)
        )
        found.check("out of descriptors counted", assert_paused_accepting, server)
        found.assert_none()
