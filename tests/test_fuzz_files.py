"""No client can kill or bloat a lesson 08 file server.

One seeded storm per server: random bytes, sizes written in non-ASCII digits, over-long and
undecodable names, thousands of pipelined GETs never read, half-closes, clients vanishing
mid-upload, and a flood of connections past the server's own descriptor limit (it must stop
accepting short of it, keeping its reserve). Afterwards the server must be alive, answer a
good client byte for byte (GET: length and SHA-256; PUT, then GET it back), hold about as many
descriptors and as much memory as before, and have left no ``.part-`` file. Every malformed
request along the way must be answered with an ERR line.
"""

import hashlib
import random
import shutil
import socket
import time
from pathlib import Path

import pytest
from storm import (
    NASTY_NAMES,
    NASTY_NUMBERS,
    Health,
    alive,
    cap_open_files,
    fd_count,
    flood,
    junk,
    no_part_files_left,
    send_and_vanish,
)

import labkit
from labkit.clients.files import get_file, list_files, put_file
from labkit.protocol import request_bytes

LYRICS = Path(__file__).resolve().parent.parent / "data" / "lyrics.txt"
SEED = 20261130
FD_CAP = 256


@pytest.fixture
def root(tmp_path):
    shutil.copy(LYRICS, tmp_path / "lyrics.txt")
    (tmp_path / "big.bin").write_bytes(random.Random(SEED).randbytes(1_000_000))
    return tmp_path


def first_line(address, raw, timeout=5.0):
    """Send ``raw``, half-close, and return the first line the server answers (b"" if none)."""
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while b"\n" not in reply and (chunk := s.recv(4096)):
                reply += chunk
        except ConnectionResetError:
            pass
    return reply.split(b"\n")[0]


def bad_requests(rng):
    """Requests that break the protocol or name no file we could store: each needs an ERR."""
    for number in NASTY_NUMBERS:
        yield f"PUT x {number}\n".encode()
    for name in NASTY_NAMES + ["b" * 2000]:
        raw = name.encode("utf-8", "surrogatepass")  # a lone surrogate: not UTF-8
        yield b"GET " + raw + b"\n"
        yield b"PUT " + raw + b" 3\nabc"
    yield b"GET \xff\xfe\n"
    yield bytes(rng.randrange(32, 127) for _ in range(3000))  # no newline within 1,024 bytes


def hoard(address, clients=5, gets=4000):
    """Clients that pipeline thousands of GETs each and never read a byte of the replies."""
    hoarders = []
    for _ in range(clients):
        s = socket.create_connection(address, timeout=5)
        s.sendall(request_bytes("GET", "lyrics.txt") * gets)
        hoarders.append(s)
    return hoarders


def storm(address, rng):
    """Everything a careless or hostile client might do, short of a flood."""
    for raw in bad_requests(rng):
        assert first_line(address, raw).startswith(b"ERR "), f"no ERR line for {raw[:40]!r}"
    for i in range(60):
        send_and_vanish(*address, junk(rng, rng.randint(1, 4000)), half_close=i % 2 == 0)
        send_and_vanish(*address, b"PUT gone.bin 500000\n" + rng.randbytes(rng.randint(0, 90_000)))
        send_and_vanish(*address, request_bytes("GET", "big.bin"), half_close=i % 3 == 0)


def serves_a_good_client(address, root, rng):
    """GET a file (length and SHA-256 against the disk), PUT new bytes and GET them back."""
    big = (root / "big.bin").read_bytes()
    payload = rng.randbytes(300_000)
    with socket.create_connection(address, timeout=10) as s:
        header, body = get_file(s, "big.bin")
        assert (
            (len(body), hashlib.sha256(body).hexdigest())
            == (len(big), hashlib.sha256(big).hexdigest())
            == (header.size, header.sha256)
        )
        assert put_file(s, "back.bin", payload).sha256 == hashlib.sha256(payload).hexdigest()
        header, body = get_file(s, "back.bin")
        assert (len(body), hashlib.sha256(body).digest()) == (
            len(payload),
            hashlib.sha256(payload).digest(),
        )
        assert set(list_files(s)) == {"lyrics.txt", "big.bin", "back.bin"}


def meets_its_door(srv, wait=5.0):
    """True once the server has stopped accepting short of its limit (``accept_paused``), or
    closed an idle client to make room; False if it never does, or dies."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and alive(srv.pid):
        if {"accept_paused", "evicted_idle"} & set(srv.stats()):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("name", ["selectors_files", "gevent_files"])
def test_no_client_can_kill_or_bloat_a_file_server(root, name):
    rng = random.Random(SEED)
    with labkit.serve(name, root=root, upload_dir=root, client_timeout=5) as srv:
        serves_a_good_client(srv.address, root, rng)  # warm: selector, hash cache
        before = Health.of(srv.pid)
        cap_open_files(srv.pid, FD_CAP)  # so that a flood reaches it
        hoarders = hoard(srv.address)
        storm(srv.address, rng)
        with flood(*srv.address, FD_CAP + 150) as held:
            assert len(held) > FD_CAP
            assert meets_its_door(srv), "the server died, or the flood never reached its limit"
            time.sleep(0.3)  # a while at its limit, the hoarders still held
            assert alive(srv.pid) and fd_count(srv.pid) < FD_CAP, "it spent its reserve"
        for s in hoarders:
            s.close()
        Health.of(srv.pid).assert_back_to(before, srv.pid)
        assert alive(srv.pid)
        serves_a_good_client(srv.address, root, rng)
        no_part_files_left(root)
