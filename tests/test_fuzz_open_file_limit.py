"""Servers keep descriptors for their own work: under a hub's hard limit of 1,024 open files,
every client a server holds is served, the others wait, and idle connections make room.

Each server starts as usual; its limit is then lowered, soft and hard (a container's), before
any client comes. The test process holds thousands of sockets itself, under its own soft limit
raised to its hard limit (20,000 here). Checked:

* 2,000 concurrent file clients (GET and PUT, every byte checked by length and SHA-256) are all
  served by both file servers, while 250 idle connections hold most of the room, without one
  ERR ("Too many open files" among them);
* a good client is served within 5 s while 1,100 idle clients hold a server at its limit: the
  server closes the connection idle longest to make room, and counts it (``evicted_idle``);
* a busy connection (an upload half sent, a request line half sent, an echo not read yet) is
  never closed to make room, however quiet it has been: a full server lets the next client
  wait instead.
"""

from __future__ import annotations

import hashlib
import random
import resource
import shutil
import socket
import time
from pathlib import Path

import pytest
from storm import alive, fd_count, flood

import labkit
from labkit.accept_policy import MIN_IDLE, RESERVE
from labkit.clients.echo import echo_roundtrip, random_pieces
from labkit.clients.files import ReplyReader, get_file, put_file
from labkit.limits import raise_open_file_limit
from labkit.protocol import request_bytes
from labkit.runs import run_file_clients

LYRICS = Path(__file__).resolve().parent.parent / "data" / "lyrics.txt"
HUB_LIMIT = 1024  # a hub's hard open-file limit (docs/classroom.md)
FILE_SERVERS = ["selectors_files", "gevent_files"]
ECHO = {
    "select_echo": {},
    "poll_echo": {},
    "epoll_echo": {},
    "epoll_echo-edge": {"edge": True},
    "selectors_echo": {},
    "gevent_echo": {},
    "gevent_stream_echo": {},
    "thread_echo": {},
}
PER_CLIENT = {"selectors_files": 3, "gevent_files": 2}  # descriptors the door keeps per client
HOLDERS = 250  # idle connections that hold a file server near its limit (330 or 496 clients)


@pytest.fixture(autouse=True)
def room_for_thousands_of_sockets():
    soft, _ = raise_open_file_limit()
    if soft < 4500:
        pytest.skip(f"the test holds 4,000 sockets at once: ulimit -n is {soft}")


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "root"
    folder.mkdir()
    shutil.copy(LYRICS, folder / "lyrics.txt")
    return folder


def start(variant, root, uploads):
    name = variant.split("-")[0]
    if name in FILE_SERVERS:
        return labkit.serve(name, root=root, upload_dir=uploads)
    return labkit.serve(name, **ECHO[variant])


def limit_open_files(server, limit=HUB_LIMIT):
    """The server's open-file limit, soft and hard, as a hub sets it."""
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (limit, limit))


def fingerprint(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


def at_its_limit(server, wait=10.0) -> bool:
    """True once the server has met its limit: it has shut its door for a moment
    (``accept_paused``) or closed an idle connection to make room (``evicted_idle``)."""
    deadline = time.monotonic() + wait
    while not {"accept_paused", "evicted_idle"} & set(server.stats()):
        if time.monotonic() > deadline or not alive(server.pid):
            return False
        time.sleep(0.05)
    return True


def good_client(variant, address, root, rng) -> None:
    """Served, byte for byte: a GET and a PUT checked by length and SHA-256, or an echo."""
    if variant in FILE_SERVERS:
        with socket.create_connection(address, timeout=5) as s:
            header, body = get_file(s, "lyrics.txt")
            assert header.ok, header
            assert fingerprint(body) == fingerprint((root / "lyrics.txt").read_bytes())
            payload = rng.randbytes(100_000)
            assert put_file(s, "good.bin", payload).sha256 == fingerprint(payload)[1]
    else:
        payload = rng.randbytes(64 * 1024)
        back = echo_roundtrip(address, payload, random_pieces(len(payload), rng), timeout=5)
        assert fingerprint(back) == fingerprint(payload)


def what_the_server_said(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server has sent on ``sock`` so far, and whether it hung up."""
    sock.setblocking(False)
    said = b""
    try:
        while chunk := sock.recv(4096):
            said += chunk
    except BlockingIOError:
        return said, False
    except OSError:  # reset
        pass
    return said, True


# -- 2,000 file clients under a hard limit of 1,024 ----------------------------------------------
@pytest.mark.parametrize("name", FILE_SERVERS)
def test_2000_file_clients_under_a_hard_limit_of_1024_are_all_served(name, root, tmp_path):
    lyrics = (root / "lyrics.txt").read_bytes()
    uploads = tmp_path / "uploads"
    with start(name, root, uploads) as srv:
        limit_open_files(srv)
        # A fast server can keep up with the clients and never meet its limit (257 held at
        # once, 330 allowed, in one run): idle connections take most of the room first.
        with flood(*srv.address, HOLDERS) as holders:
            assert len(holders) == HOLDERS
            result = run_file_clients(
                srv.address, 2000, expected_sha256=fingerprint(lyrics)[1], mode="selectors"
            )
        stats, log, met = srv.stats(), srv.log(), at_its_limit(srv, wait=0)
    assert (result.errors, result.mismatches) == ([], 0), result.errors[:5]
    assert (result.downloads_ok, result.uploads_ok) == (2000, 2000)
    assert result.bytes_moved == 2 * 2000 * len(lyrics)  # every byte, both ways
    assert (stats["gets"], stats["puts"], stats.get("refused", 0)) == (2000, 2000, 0)
    stored = list(uploads.iterdir())
    assert len(stored) == 2000
    assert all(fingerprint(path.read_bytes()) == fingerprint(lyrics) for path in stored)
    assert met, f"the clients never took it to its limit: {stats}"  # a pause or an eviction
    assert "Too many open files" not in log


# -- a good client while 1,100 idle clients hold the server ------------------------------------
@pytest.mark.parametrize("variant", FILE_SERVERS + list(ECHO))
def test_a_good_client_is_served_within_5s_while_1100_idle_clients_hold_the_server(
    variant, root, tmp_path
):
    """900 idle clients, quiet for longer than MIN_IDLE, then 200 more: the server closes the
    idle longest first (the kernel dates a connection's last data to within a few clock
    ticks, tens of ms at worst, so the test compares two groups far apart)."""
    rng = random.Random(f"idle:{variant}")
    with start(variant, root, tmp_path / "uploads") as srv:
        limit_open_files(srv)
        with flood(*srv.address, 900) as old:
            time.sleep(MIN_IDLE + 0.5)
            with flood(*srv.address, 200) as young:
                assert len(old) + len(young) == 1100
                assert at_its_limit(srv), "the idle clients never took the server to its limit"
                started = time.monotonic()
                good_client(variant, srv.address, root, rng)
                took = time.monotonic() - started
                heard = [what_the_server_said(s) for s in old + young]
                stats = srv.stats()
        assert alive(srv.pid) and "Too many open files" not in srv.log()
    assert took < 5.0, f"the good client waited {took:.1f} s"
    evicted = [i for i, (_, hung_up) in enumerate(heard) if hung_up]
    assert stats.get("evicted_idle", 0) == len(evicted) > 0, stats
    older = set(range(len(old)))  # the old group goes first, all of it if need be
    assert set(evicted) <= older or older <= set(evicted), "not the connections idle longest"
    if variant in FILE_SERVERS:  # told why, in the protocol's words
        assert all(heard[i][0].startswith(b"ERR 503 ") for i in evicted), heard[evicted[0]]


# -- busy connections are never closed ------------------------------------------------------------
class HalfUpload:
    """A PUT whose body is half sent, then quiet: the server has read all of it, so only the
    server knows the connection is busy (the kernel's queues are empty)."""

    def __init__(self, address, rng, name):
        self.name, self.payload = name, rng.randbytes(200_000)
        self.sock = socket.create_connection(address, timeout=10)
        raw = request_bytes("PUT", name, self.payload)
        self.rest = raw[len(raw) // 2 :]
        self.sock.sendall(raw[: len(raw) // 2])

    def finish(self):
        self.sock.sendall(self.rest)
        header, _ = ReplyReader(self.sock).next()
        assert header.ok and header.sha256 == fingerprint(self.payload)[1], header
        self.sock.close()


class HalfRequest:
    """A GET whose request line is half sent, then quiet."""

    def __init__(self, address, root):
        self.expected = fingerprint((root / "lyrics.txt").read_bytes())
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.sendall(b"GET lyr")

    def finish(self):
        self.sock.sendall(b"ics.txt\n")
        header, body = ReplyReader(self.sock).next()
        assert header.ok and fingerprint(body) == self.expected, header
        self.sock.close()


class UnreadEcho:
    """A client that sends until the server stops taking bytes, reading nothing: its echo
    waits in the server (and in the kernel's queues)."""

    def __init__(self, address, rng):
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.settimeout(0.3)  # a 0.3 s stall: the server has stopped reading us
        self.sent = bytearray()
        chunk = rng.randbytes(256 * 1024)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                self.sent += chunk[: self.sock.send(chunk)]
            except TimeoutError:
                break

    def finish(self):
        self.sock.settimeout(10)
        back = bytearray()
        while len(back) < len(self.sent) and (chunk := self.sock.recv(1 << 20)):
            back += chunk
        assert fingerprint(bytes(back)) == fingerprint(bytes(self.sent))
        self.sock.close()


def busy_clients(variant, address, root, rng, n):
    if variant not in FILE_SERVERS:
        return [UnreadEcho(address, rng) for _ in range(n)]
    return [
        HalfUpload(address, rng, f"busy-{i}.bin") if i % 2 else HalfRequest(address, root)
        for i in range(n)
    ]


def limit_to_about(server, clients, per_client):
    """Lower the server's limit so that about ``clients`` more fit under its door."""
    limit = fd_count(server.pid) + RESERVE + clients * per_client
    limit_open_files(server, limit)
    return limit


@pytest.mark.parametrize("variant", FILE_SERVERS + ["selectors_echo", "gevent_echo"])
def test_a_busy_connection_is_never_closed_to_make_room(variant, root, tmp_path):
    """About 20 clients fit; 12 busy and 20 idle ones come; after a quiet while a good client
    comes. Room is made from idle connections only: every busy one finishes, byte for byte."""
    rng = random.Random(f"busy:{variant}")
    with start(variant, root, tmp_path / "uploads") as srv:
        good_client(variant, srv.address, root, rng)  # warm: the hash of lyrics.txt, the hub
        limit = limit_to_about(srv, 20, PER_CLIENT.get(variant, 1))
        busy = busy_clients(variant, srv.address, root, rng, 12)
        with flood(*srv.address, 20) as idle:
            assert at_its_limit(srv), "the clients never took the server to its limit"
            time.sleep(MIN_IDLE + 0.5)  # every connection now looks quiet to the kernel
            started = time.monotonic()
            good_client(variant, srv.address, root, rng)
            took = time.monotonic() - started
            stats = srv.stats()
            evicted = sum(what_the_server_said(s)[1] for s in idle)
            assert fd_count(srv.pid) <= limit - RESERVE // 2, "it spent its reserve"
            for client in busy:  # none was closed: each one finishes, checked
                client.finish()
        assert "Too many open files" not in srv.log()
    assert took < 5.0, f"the good client waited {took:.1f} s"
    assert stats.get("evicted_idle", 0) == evicted > 0, stats


@pytest.mark.parametrize("name", FILE_SERVERS)
def test_a_server_full_of_busy_clients_lets_the_next_one_wait(name, root, tmp_path):
    """Every client it holds is mid-request and quiet: the next client waits in the listen
    backlog (no ERR, nobody closed), and is served as soon as the busy ones finish."""
    rng = random.Random(f"full:{name}")
    with start(name, root, tmp_path / "uploads") as srv:
        good_client(name, srv.address, root, rng)
        limit_to_about(srv, 6, PER_CLIENT[name])
        busy = busy_clients(name, srv.address, root, rng, 10)  # more than fit: some wait
        assert at_its_limit(srv)
        time.sleep(MIN_IDLE + 0.5)
        with socket.create_connection(srv.address, timeout=10) as waiting:
            waiting.sendall(request_bytes("GET", "lyrics.txt"))
            time.sleep(1.0)  # the door looks for idle connections meanwhile
            assert what_the_server_said(waiting) == (b"", False)  # waiting, not refused
            assert srv.stats().get("evicted_idle", 0) == 0
            for client in busy:
                client.finish()
            waiting.settimeout(10)
            header, body = ReplyReader(waiting).next()
        assert header.ok and fingerprint(body) == fingerprint(LYRICS.read_bytes())
        assert srv.stats().get("evicted_idle", 0) == 0
