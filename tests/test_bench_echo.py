"""benchmarks/echo at a tiny scale: the tables it writes, a load client that checks every byte
it gets back, the Python clients standing in when there is no C compiler, nothing left running."""

import argparse
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks import echo
from labkit import background


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    echo.add_arguments(parser)
    return parser.parse_args(list(argv))


def rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the rows of the first table under ``heading``."""
    block = next(b for b in text[text.index(heading) :].split("\n\n") if b.startswith("|"))
    lines = [line for line in block.splitlines() if not line.startswith("|---")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def our_children() -> list[int]:
    """Processes whose parent is this one (servers and clients are started as our children)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            pids.append(int(entry))
    return pids


@pytest.fixture
def nothing_left_running():
    before = set(our_children())
    yield
    assert not background.running()
    assert set(our_children()) <= before, "a server or client is still running"


SERVERS = ["epoll_echo", "gevent_echo", echo.ASYNCIO, echo.UVLOOP, echo.GEVENT_PEER]


@pytest.mark.skipif(echo.compiler() is None, reason="needs a C compiler")
def test_a_tiny_run_writes_its_tables_figure_and_goals(tmp_path, nothing_left_running):
    figure = tmp_path / "echo.png"
    text = echo.run(
        options(
            *("--servers", ",".join([*SERVERS, "C epoll (floor)"]), "--quick"),
            *("--loads", "10x1024,2x65536", "--idle", "60", "--figure", str(figure)),
        )
    )
    assert "load client: compiled C epoll client" in text
    assert figure.stat().st_size > 1000 and f"]({figure.name})" in text
    summary = rows(text, "### Server CPU µs per round trip")
    assert [row[0] for row in summary] == [*SERVERS, "C epoll (floor)"]
    # --quick keeps what was given (loads, idle) and makes the rest small (a crowd of 40)
    for heading in ("### 10 × 1 KiB (median of 2)", "### 2 × 64 KiB", "### 40 × 1 KiB"):
        table = rows(text, heading)
        assert [row[0] for row in table] == [*SERVERS, "C epoll (floor)"], heading
        for server, cpu, _, _, rate, p50, p99, busy, problems in table:
            assert problems == "0", (heading, server)
            assert 0 < float(cpu.split()[0]) < 10_000 and float(rate.replace(",", "")) > 0
            assert float(p50.replace(",", "")) <= float(p99.replace(",", ""))
            assert 0 < float(busy) < 200  # the client's share of its core, in %
        by_server = {row[0]: row for row in table}
        assert by_server[echo.UVLOOP][2] == "1.00" and by_server[echo.ASYNCIO][3] == "1.00"
    idle = rows(text, "### 60 idle connections and one active client")
    assert [row[0] for row in idle] == [*SERVERS, "C epoll (floor)"]
    for server, connected, lost, *_ in idle:
        assert (connected, lost) == ("61", "0"), server
    goals = text[text.index("### Our servers' goals") :]
    assert goals.count("\n- ") == 4 and "gevent_echo" in goals
    assert "Must: " in goals and "10 and 100 × 1 KiB" in goals
    assert "`gevent_echo` ≤ 1.1 × a plain gevent `StreamServer`: " in goals
    assert "not judged" in goals  # only 10 x 1 KiB of the goals' three loads ran here


# -- the load client checks every byte ------------------------------------------------------------
@contextmanager
def broken_echo(mangle: Callable[[bytes], bytes]) -> Iterator[tuple[str, int]]:
    """An echo server on threads that sends back ``mangle(data)``; a one-byte message (the
    clients' first echo, checking the connection) always goes back unchanged."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            try:
                while not stop.is_set() and (data := conn.recv(65536)):
                    conn.sendall(mangle(data) if len(data) > 1 else data)
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()
    finally:
        stop.set()
        thread.join(5)
        listener.close()


MANGLES = {
    "faithful": lambda data: data,
    "one bit flipped": lambda data: data[:-1] + bytes([data[-1] ^ 1]),
    "one byte short": lambda data: data[:-1],
    "one byte too many": lambda data: data + b"x",
}


@pytest.fixture(params=["C", "Python"])
def client_kind(request, tmp_path) -> echo.ClientKind:
    if request.param == "C" and echo.compiler() is None:
        pytest.skip("needs a C compiler")
    return echo.client_kind(tmp_path, force_python=request.param == "Python", processes=2)


@pytest.mark.parametrize("mangle", list(MANGLES))
def test_the_client_checks_the_count_and_content_of_every_echo(
    client_kind, mangle, nothing_left_running
):
    size, conns = 1024, 2
    with (
        broken_echo(MANGLES[mangle]) as address,
        echo.LoadClient(client_kind, address, conns, size, 0.3, timeout=1.0) as client,
    ):
        assert client.connected()["connected"] == conns
        result = client.go(0.3)
    assert result["bytes_verified"] == result["round_trips"] * size
    if mangle == "faithful":
        assert result["round_trips"] > 10
        # a round trip through a Python server takes microseconds: timed from send to echo
        assert 3 < result["p50_us"] <= result["p99_us"]
        assert result["mismatches"] == result["errors"] == result["unfinished"] == 0
    elif mangle == "one byte short":  # every client waits for its last byte, in vain
        assert result["round_trips"] == 0 and result["unfinished"] == conns
    else:  # caught in the first round (flipped), or as the next round's first byte (extra)
        assert result["mismatches"] == result["errors"] == conns
        assert result["round_trips"] == (0 if mangle == "one bit flipped" else conns)


def test_without_a_compiler_python_clients_stand_in(tmp_path, monkeypatch, nothing_left_running):
    monkeypatch.setattr(echo, "COMPILERS", ("no-such-compiler-here",))
    assert echo.compiler() is None
    kind = echo.client_kind(tmp_path, force_python=False, processes=3)
    assert kind.processes == 3 and "no C compiler found" in kind.description
    text = echo.run(
        options(
            *("--servers", "epoll_echo,C epoll (floor)", "--loads", "3x1024", "--crowd", ""),
            *("--idle", "0", "--repeats", "1", "--seconds", "0.15", "--figure", ""),
            "--client-processes=3",
        )
    )
    assert "load client: 3 Python client processes (no C compiler found)" in text
    table = rows(text, "### 3 × 1 KiB")
    assert [row[0] for row in table] == ["epoll_echo"]  # no C floor without a compiler
    assert table[0][-1] == "0"


def test_merged_latencies_weigh_each_process_by_its_round_trips():
    many = {"round_trips": 300, "quantiles": [10.0] * 100}
    few = {"round_trips": 100, "quantiles": [1000.0] * 100}
    base = dict.fromkeys(["connections", "bytes_verified", "mismatches", "errors", "unfinished"], 0)
    merged = echo.merge_results([base | many | {"elapsed": 1}, base | few | {"elapsed": 2}])
    assert merged["round_trips"] == 400 and merged["elapsed"] == 2
    assert merged["p50_us"] == 10.0 and merged["p99_us"] == 1000.0


def test_connections_are_scaled_down_to_the_open_file_limit_and_it_says_so(monkeypatch):
    monkeypatch.setattr(echo, "raise_open_file_limit", lambda: (1024, 1024))
    assert echo.fit_connections(500) == (500, "")
    fits, note = echo.fit_connections(19_000)
    assert fits == 1024 - 200
    assert note.startswith(f"{echo.SCALED_DOWN} 19,000 idle connections need 19,000 open files")
    assert note.endswith(f"so this run holds {fits:,}.")
