"""Both lesson 08 file servers against bad input, vanishing and slow clients, and load:
they keep serving, lose no byte, leak no file descriptor, and never expose a partial upload."""

import hashlib
import os
import random
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from storm import (
    NASTY_NUMBERS,
    cap_open_files,
    fd_count,
    flood,
    no_part_files_left,
    part_files,
)

import labkit
from labkit.accept_policy import RESERVE
from labkit.clients.files import ReplyReader, get_file, list_files, put_file
from labkit.protocol import Parser, request_bytes
from labkit.runs import run_file_clients

LYRICS = Path(__file__).resolve().parent.parent / "data" / "lyrics.txt"
SERVERS = ["selectors_files", "gevent_files"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    shutil.copy(LYRICS, root / "lyrics.txt")
    (root / "big.bin").write_bytes(random.Random(1).randbytes(5_000_000))
    (root / "escape").symlink_to("/etc/hostname")  # a link out of the root
    return root


@pytest.fixture(params=SERVERS)
def server(request, root, tmp_path):
    uploads = tmp_path / "uploads"
    with labkit.serve(request.param, root=root, upload_dir=uploads, max_upload=10_000_000) as srv:
        srv.uploads, srv.root = uploads, root
        yield srv


def sha(data):
    return hashlib.sha256(data).hexdigest()


def open_fds(pid):
    """The server's open descriptors, once the count has been steady for 0.2 s."""
    count, deadline = -1, time.monotonic() + 5
    while time.monotonic() < deadline:
        now = fd_count(pid)
        if now == count:
            return now
        count = now
        time.sleep(0.2)
    return count


def talk(server, raw, timeout=5):
    """Send raw bytes, return everything the server says until it closes (or goes quiet)."""
    with socket.create_connection(server.address, timeout=timeout) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def still_serves(server):
    with socket.create_connection(server.address, timeout=5) as s:
        header, body = get_file(s, "lyrics.txt")
    return header.ok and sha(body) == sha(LYRICS.read_bytes())


def test_get_put_list_round_trip(server):
    data = LYRICS.read_bytes()
    with socket.create_connection(server.address, timeout=5) as s:
        assert list_files(s) == {"big.bin": 5_000_000, "lyrics.txt": len(data)}
        header, body = get_file(s, "lyrics.txt")
        assert body == data and header.sha256 == sha(data)
        assert put_file(s, "歌词.txt", body).sha256 == sha(data)
        header, big = get_file(s, "big.bin")
        assert sha(big) == header.sha256 == sha((server.root / "big.bin").read_bytes())
    assert (server.uploads / "歌词.txt").read_bytes() == data


def test_pipelined_requests_are_answered_in_order(server):
    raw = (
        request_bytes("GET", "lyrics.txt")
        + b"LIST\n"
        + request_bytes("PUT", "p.txt", b"abc")
        + request_bytes("GET", "nope.txt")
    )
    with socket.create_connection(server.address, timeout=5) as s:
        s.sendall(raw)
        reader = ReplyReader(s)
        replies = [reader.next() for _ in range(4)]
    assert replies[0][1] == LYRICS.read_bytes()
    assert b"lyrics.txt" in replies[1][1]
    assert replies[2][0].sha256 == sha(b"abc")
    assert replies[3][0].code == 404


@pytest.mark.parametrize(
    "raw,code",
    [
        (os.urandom(3000), b"ERR 400"),
        (b"HELLO\n", b"ERR 400"),
        (b"x" * 5000, b"ERR 400"),
        (b"GET ../pyproject.toml\n", b"ERR 403"),
        (b"GET /etc/passwd\n", b"ERR 403"),
        (b"PUT a.txt 99999999\n", b"ERR 413"),
        (b"GET escape\n", b"ERR 404"),
    ],
)
def test_bad_requests_get_an_error_and_the_server_goes_on(server, raw, code):
    assert talk(server, raw).startswith(code)
    assert still_serves(server)


def test_truncated_upload_is_never_visible(server):
    with socket.create_connection(server.address, timeout=5) as s:
        s.sendall(b"PUT half.txt 100000\n" + b"x" * 5000)  # then vanish
    time.sleep(0.3)  # the server has read the upload's start and made its part file by now
    no_part_files_left(server.uploads)  # and deletes it once it reads the EOF
    assert still_serves(server)
    assert not list(server.uploads.iterdir())  # no file, no ".part-" leftover


def test_clients_vanishing_mid_download_and_fd_count_is_stable(server):
    assert still_serves(server)
    before = open_fds(server.pid)
    for _ in range(20):
        with socket.create_connection(server.address, timeout=5) as s:
            s.sendall(request_bytes("GET", "big.bin"))
            s.recv(100_000)  # take a little, then vanish
        talk(server, os.urandom(200))
    assert open_fds(server.pid) == before, "the server leaked file descriptors"
    assert still_serves(server)


def test_a_slow_reader_does_not_stall_others_and_gets_every_byte(server):
    big = (server.root / "big.bin").read_bytes()
    got = {}

    def slow():
        with socket.create_connection(server.address, timeout=30) as s:
            s.sendall(request_bytes("GET", "big.bin"))
            parser, body = Parser("response"), bytearray()
            while True:
                chunk = s.recv(8192)
                time.sleep(0.002)
                events = parser.feed(chunk)
                body += b"".join(e.data for e in events if hasattr(e, "data"))
                if any(type(e).__name__ == "End" for e in events) or not chunk:
                    break
            got["body"] = bytes(body)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.1)
    quick = run_file_clients(server.address, 50, expected_sha256=sha(LYRICS.read_bytes()))
    assert quick.served == 50 and t.is_alive(), "the quick clients waited for the slow one"
    t.join(60)
    assert got["body"] == big


@pytest.mark.parametrize("mode", ["threads", "selectors", "gevent"])
def test_2000_clients_get_and_put_with_every_hash_verified(root, tmp_path, mode):
    with labkit.serve("selectors_files", root=root, upload_dir=tmp_path) as srv:
        result = run_file_clients(
            srv.address, 2000, expected_sha256=sha(LYRICS.read_bytes()), mode=mode
        )
        stats = srv.stats()
    assert (result.downloads_ok, result.uploads_ok, result.mismatches, result.errors) == (
        2000,
        2000,
        0,
        [],
    )
    assert stats["gets"] == stats["puts"] == 2000
    assert len(list(tmp_path.iterdir())) == 2000


def test_gevent_file_server_under_2000_greenlet_clients(root, tmp_path):
    with labkit.serve("gevent_files", root=root, upload_dir=tmp_path) as srv:
        result = run_file_clients(
            srv.address, 2000, expected_sha256=sha(LYRICS.read_bytes()), mode="gevent"
        )
    assert (result.served, result.mismatches, result.errors) == (2000, 0, [])


# -- defects an outside client found (each test failed on 851f00d) ----------------------------
@pytest.mark.parametrize("number", NASTY_NUMBERS, ids=ascii)
def test_sizes_that_are_not_ascii_digits_get_err_400(server, number):
    assert talk(server, f"PUT x {number}\n".encode()).startswith(b"ERR 400")
    assert still_serves(server)


@pytest.mark.parametrize("name", ["é" * 128, "😀" * 70, "a" * 300], ids=["é", "emoji", "a"])
def test_names_too_long_for_the_disk_get_err_403_and_leave_nothing(server, name):
    for request in (f"GET {name}\n", f"PUT {name} 3\nabc"):
        assert talk(server, request.encode()).startswith(b"ERR 403")
    assert still_serves(server)
    assert part_files(server.uploads) == []


def test_thousands_of_pipelined_gets_never_read_do_not_exhaust_descriptors(server):
    assert still_serves(server)
    before = open_fds(server.pid)
    cap_open_files(server.pid, before + 100)
    hoarders = []
    for _ in range(6):  # each asks for 3,000 files and never reads a byte
        s = socket.create_connection(server.address, timeout=5)
        s.sendall(request_bytes("GET", "lyrics.txt") * 3000)
        hoarders.append(s)
    time.sleep(0.5)
    assert server.alive and fd_count(server.pid) <= before + 6 + 6, (
        "the server holds a file open for every queued GET"
    )
    assert still_serves(server)
    for s in hoarders:
        s.close()


def test_a_flood_at_the_descriptor_limit_waits_and_the_clients_held_are_served(server):
    """The server stops accepting while it still has descriptors for the files of the clients
    it holds: the flood waits in the listen backlog, and a client it holds (kept busy, so
    never closed as idle) gets every GET answered, never ``ERR 503 Too many open files``."""
    with socket.create_connection(server.address, timeout=5) as good:
        assert get_file(good, "lyrics.txt")[0].ok
        limit = fd_count(server.pid) + RESERVE + 20  # room for a handful of clients
        cap_open_files(server.pid, limit)
        with flood(*server.address, 300):
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:  # a GET every 0.1 s: busy, never evicted
                header, body = get_file(good, "lyrics.txt")
                assert header.ok and sha(body) == sha(LYRICS.read_bytes()), header
                time.sleep(0.1)
            assert server.stats().get("accept_paused", 0) > 0, "the flood never met the door"
            assert server.alive and fd_count(server.pid) < limit - RESERVE // 2
    assert still_serves(server)


@pytest.mark.parametrize("name", SERVERS)
def test_silent_clients_are_dropped_after_client_timeout_with_err_408(root, tmp_path, name):
    with labkit.serve(name, root=root, upload_dir=tmp_path, client_timeout=0.5) as srv:
        assert still_serves(srv)  # the server is fully up (its selector too)
        before = open_fds(srv.pid)
        with flood(*srv.address, 20) as idle:
            time.sleep(2.0)
            said = [s.recv(200) for s in idle]
            assert all(line.startswith(b"ERR 408") for line in said), said[:3]
        assert open_fds(srv.pid) <= before


@pytest.mark.parametrize("name", SERVERS)
def test_a_bad_root_or_upload_dir_fails_serve_with_the_reason(tmp_path, name):
    with pytest.raises(labkit.ServerStartError, match="missing-root"):
        labkit.serve(name, root=tmp_path / "missing-root")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(labkit.ServerStartError, match="a-file"):
        labkit.serve(name, root=LYRICS.parent, upload_dir=tmp_path / "a-file" / "up")


@pytest.mark.parametrize("how", ["SIGTERM", "parent gone"])
@pytest.mark.parametrize("name", SERVERS)
def test_stopping_mid_upload_leaves_no_part_file(tmp_path, name, how):
    srv = labkit.serve(name, root=LYRICS.parent, upload_dir=tmp_path)
    with srv, socket.create_connection(srv.address, timeout=5) as s:
        s.sendall(b"PUT half.txt 100000\n" + b"x" * 5000)
        deadline = time.monotonic() + 5
        while not part_files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert part_files(tmp_path), "the upload never started"
        if how == "SIGTERM":
            srv.process.send_signal(signal.SIGTERM)
        else:
            srv.process.stdin.close()  # what the server sees when its parent dies
        srv.process.wait(5)
    assert part_files(tmp_path) == []


@pytest.mark.parametrize("name", SERVERS)
def test_list_never_shows_unfinished_uploads_when_uploads_go_to_the_root(tmp_path, name):
    shutil.copy(LYRICS, tmp_path / "lyrics.txt")
    with (
        labkit.serve(name, root=tmp_path, upload_dir=tmp_path) as srv,
        socket.create_connection(srv.address, timeout=5) as half,
        socket.create_connection(srv.address, timeout=5) as s,
    ):
        half.sendall(b"PUT half.txt 100000\nxyz")
        deadline = time.monotonic() + 5
        while not part_files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert part_files(tmp_path) and list_files(s) == {"lyrics.txt": LYRICS.stat().st_size}


@pytest.mark.parametrize("name", SERVERS)
def test_a_server_leaves_no_temporary_upload_folder_behind(name):
    with labkit.serve(name, root=LYRICS.parent) as srv:
        with socket.create_connection(srv.address, timeout=5) as s:
            assert put_file(s, "kept-until-stop.txt", b"abc").ok
        folder = Path(re.search(r"uploads go to (\S+)", srv.log()).group(1))
        assert (folder / "kept-until-stop.txt").is_file()
    assert not folder.exists()


def test_the_client_refuses_a_listing_with_non_ascii_sizes():
    """int() accepts "²" and "١٠"; a client must not believe a server that sends them."""
    from labkit.protocol import ProtocolError, ok_header

    for size in ("²", "١٠", "-1"):
        body = f"x {size}\n".encode()
        mine, theirs = socket.socketpair()
        with mine, theirs:
            mine.settimeout(5)
            theirs.sendall(ok_header(len(body), sha(body)) + body)
            with pytest.raises(ProtocolError, match="bad LIST line"):
                list_files(mine)
