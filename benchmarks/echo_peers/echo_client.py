"""The ping-pong load client of benchmarks/echo in Python, for machines without a C compiler.

    python benchmarks/echo_peers/echo_client.py HOST PORT ACTIVE SIZE SECONDS IDLE INFLIGHT TIMEOUT

The same program as ``echo_client.c`` (read its comment for the lines it prints and reads),
on ``selectors``: slower, so benchmarks/echo starts several of them and says so.
"""

import json
import math
import selectors
import socket
import sys
import time

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
QUANTILES = 100
PATTERN_SPAN = 256
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux; 3.12+ names it


class Conn:
    def __init__(self, index, sock):
        self.index, self.sock = index, sock
        self.round = self.sent = self.received = 0
        self.started = 0.0

    def first_byte(self, shift=0):
        return bytes([(self.index + shift) * 7 + 1 & 0xFF])


def connect_all(sel, address, total, inflight, timeout):
    """Open ``total`` connections, each checked by a one-byte first echo."""
    ready, pending, failed, lost, started = [], {}, 0, 0, time.monotonic()
    deadline, opened = started + timeout, 0
    while (opened < total or pending) and time.monotonic() < deadline:
        while opened < total and (inflight <= 0 or len(pending) < inflight):
            sock = socket.socket()
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if address[0].startswith("127."):  # as echo_client.c: 8 source addresses, not one
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((f"127.0.0.{2 + opened % 8}", 0))
            conn, opened = Conn(opened, sock), opened + 1
            if sock.connect_ex(address) not in (0, 115):  # 115: EINPROGRESS
                failed += 1
                sock.close()
                continue
            pending[sock] = conn
            sel.register(sock, WRITE, conn)
        for key, _ in sel.select(0.1):
            conn = key.data
            try:
                if key.events == WRITE:  # connected (or failed): send the first byte
                    conn.sock.send(conn.first_byte())
                    sel.modify(conn.sock, READ, conn)
                    continue
                ok = conn.sock.recv(1) == conn.first_byte()
            except BlockingIOError:
                continue
            except OSError:
                ok = False
            sel.unregister(conn.sock)
            del pending[conn.sock]
            if ok:
                ready.append(conn)
            else:
                lost += 1
                conn.sock.close()
    for conn in pending.values():
        sel.unregister(conn.sock)
        conn.sock.close()
    lost += len(pending)
    failed += total - opened
    seconds = time.monotonic() - started
    line("CONNECTED", connected=len(ready), failed=failed, lost=lost, seconds=seconds)
    return ready


def ping_pong(sel, conns, pattern, size, seconds, timeout):
    """Round trips of ``size`` bytes on every connection for ``seconds``, every byte checked."""
    latencies, mismatches, errors = [], 0, 0
    started = time.monotonic()
    end, busy = started + seconds, set()
    for conn in conns:
        sel.register(conn.sock, READ | WRITE, conn)
        busy.add(conn)
        start_round(conn, size)
    now = started
    while busy and now < end + timeout:
        for key, _ in sel.select(0.1):
            conn = key.data
            want = message(pattern, conn, size)
            try:
                if conn.sent < size:
                    conn.sent += conn.sock.send(want[conn.sent :])
                    if conn.sent == size:
                        sel.modify(conn.sock, READ, conn)
                data = conn.sock.recv(size - conn.received)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data != want[conn.received : conn.received + len(data)] or not data:
                mismatches += bool(data)
                errors += 1
                busy.discard(conn)
                sel.unregister(conn.sock)
                continue
            conn.received += len(data)
            if conn.received == size:
                now = time.monotonic()  # after the last byte came: the echo may come at once
                latencies.append((now - conn.started) * 1e6)
                conn.round += 1
                if now < end:
                    sel.modify(conn.sock, READ | WRITE, conn)
                    start_round(conn, size)
                else:
                    busy.discard(conn)
                    sel.unregister(conn.sock)
        now = time.monotonic()
    for conn in busy:
        sel.unregister(conn.sock)
    latencies.sort()
    line(
        "RESULT",
        connections=len(conns),
        round_trips=len(latencies),
        bytes_verified=len(latencies) * size,
        mismatches=mismatches,
        errors=errors,
        unfinished=len(busy),
        elapsed=now - started,
        p50_us=percentile(latencies, 50),
        p99_us=percentile(latencies, 99),
        quantiles=[percentile(latencies, (q + 0.5) * 100 / QUANTILES) for q in range(QUANTILES)],
    )


def message(pattern, conn, size):
    """This round's bytes for this connection: a different slice of the pattern each time."""
    start = (conn.index * 37 + conn.round) % PATTERN_SPAN
    return memoryview(pattern)[start : start + size]


def start_round(conn, size):
    """Start the clock; the first send happens when the socket is reported writable."""
    conn.sent = conn.received = 0
    conn.started = time.monotonic()


def check_idle(sel, conns, timeout):
    """One byte to every idle connection; count those that echo it within ``timeout``."""
    waiting, alive = set(), 0
    for conn in conns:
        try:
            conn.sock.send(conn.first_byte(1))
        except OSError:
            continue
        sel.register(conn.sock, READ, conn)
        waiting.add(conn)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            conn = key.data
            try:
                alive += conn.sock.recv(1) == conn.first_byte(1)
            except BlockingIOError:
                continue
            except OSError:
                pass
            sel.unregister(conn.sock)
            waiting.discard(conn)
    line("IDLE", alive=alive, checked=len(conns))


def percentile(ordered, p):
    """The nearest rank, as labkit.percentiles defines it (this script runs without labkit)."""
    if not ordered:
        return -1.0
    rank = math.ceil(p / 100 * len(ordered) - 1e-9)  # 99 % of 100 is rank 99, after rounding too
    return ordered[min(len(ordered), max(rank, 1)) - 1]


def line(tag, **payload):
    print(tag, json.dumps(payload), flush=True)


def main(argv):
    host, port, active, size, seconds, idle, inflight, timeout = argv
    size, idle = int(size), int(idle)
    pattern = bytes((k * 2654435761 & 0xFFFFFFFF) >> 13 & 0xFF for k in range(size + PATTERN_SPAN))
    sel = selectors.DefaultSelector()
    total = idle + int(active)
    conns = connect_all(sel, (host, int(port)), total, int(inflight), float(timeout))
    idle_conns = [c for c in conns if c.index < idle]
    active_conns = [c for c in conns if c.index >= idle]
    for command in sys.stdin:  # EOF: the parent is done, or gone
        if command.strip() == "go":
            ping_pong(sel, active_conns, pattern, size, float(seconds), float(timeout))
        elif command.strip() == "check":
            check_idle(sel, idle_conns, float(timeout))


if __name__ == "__main__":
    main(sys.argv[1:])
