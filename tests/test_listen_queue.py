"""The listen queue: the kernel's counters see a full one (labkit.netstat), and the ramped file
clients never fill one (labkit.clients.files, ``max_unanswered``)."""

import socket
import sys
import threading
import time

import pytest

from labkit import netstat
from labkit.clients import files

linux_only = pytest.mark.skipif(not netstat.available(), reason="reads /proc/net (Linux)")

NETSTAT_TEXT = """TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPSynRetrans
TcpExt: 4 10 12 30
IpExt: InNoRoutes
IpExt: 0
"""
SNMP_TEXT = """Ip: Forwarding
Ip: 1
Tcp: RtoMin RetransSegs
Tcp: 200 77
"""


def test_counters_are_read_by_name_from_both_files(tmp_path, monkeypatch):
    (tmp_path / "netstat").write_text(NETSTAT_TEXT)
    (tmp_path / "snmp").write_text(SNMP_TEXT)
    monkeypatch.setattr(netstat, "NETSTAT", tmp_path / "netstat")
    monkeypatch.setattr(netstat, "SNMP", tmp_path / "snmp")
    now = netstat.tcp_counters()
    assert now == netstat.TcpCounters(
        listen_overflows=10, listen_drops=12, syn_retrans=30, syncookies_sent=4, retrans_segs=77
    )
    assert now - now == netstat.TcpCounters() and not (now - now).refused()
    assert (now + now).listen_overflows == 20 and now.refused()


@linux_only
def test_a_full_accept_queue_is_counted():
    """A listener with a backlog of 1 that never accepts: handshakes beyond it are refused, and
    the machine-wide counter grows by at least that (other programs may add more)."""
    with netstat.counting() as tcp, socket.create_server(("127.0.0.1", 0), backlog=1) as server:
        clients = [socket.socket() for _ in range(8)]
        try:
            for client in clients:
                client.setblocking(False)
                client.connect_ex(server.getsockname())
            time.sleep(0.5)  # the handshakes happen in the kernel, without us
        finally:
            for client in clients:
                client.close()
    assert tcp.delta.listen_overflows >= 1 and tcp.delta.refused(), tcp.delta


def queued_after_ramp(max_unanswered: int | None, n: int = 12) -> int:
    """Clients of a server that never answers: how many are connected after a while."""
    outcome: list[object] = []

    def clients(address):
        try:
            outcome.append(
                files.run_file_clients(
                    address, n, mode="selectors", timeout=2, max_unanswered=max_unanswered
                )
            )
        except Exception as err:  # a TimeoutError when the gate holds clients back
            outcome.append(err)

    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        run = threading.Thread(target=clients, args=(server.getsockname(),), daemon=True)
        run.start()
        time.sleep(0.5)  # the handshakes complete in the kernel, unaccepted
        server.setblocking(False)
        queued = []
        while True:
            try:
                queued.append(server.accept()[0])
            except BlockingIOError:
                break
        for conn in queued:
            conn.close()  # those clients fail; the run ends, on its own or at its timeout
        run.join(10)
    assert not run.is_alive() and outcome
    return len(queued)


@pytest.mark.skipif(sys.platform != "linux", reason="accept queue behaviour is Linux's")
def test_ramped_clients_never_have_more_than_the_limit_unanswered():
    assert queued_after_ramp(max_unanswered=3) == 3
    assert queued_after_ramp(max_unanswered=None) == 12  # without the gate, everyone connects


def test_ramped_clients_serve_everyone_and_keep_the_kernel_quiet(tmp_path):
    import hashlib
    from pathlib import Path

    import labkit

    data = Path(__file__).resolve().parent.parent / "data"
    expected = hashlib.sha256((data / "lyrics.txt").read_bytes()).hexdigest()
    with labkit.serve("selectors_files", root=data, upload_dir=tmp_path) as srv:
        result = files.run_file_clients(
            srv.address, 300, expected_sha256=expected, mode="selectors", max_unanswered=20
        )
    assert (result.served, result.mismatches, result.errors) == (300, 0, [])


def test_the_limit_is_for_the_selectors_clients_and_positive():
    with pytest.raises(ValueError, match="max_unanswered"):
        files.run_file_clients(("127.0.0.1", 9), 1, mode="threads", max_unanswered=3)
    with pytest.raises(ValueError, match="max_unanswered"):
        files.run_file_clients(("127.0.0.1", 9), 1, mode="selectors", max_unanswered=0)
