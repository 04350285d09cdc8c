"""System calls per echo: the servers count their own (``--count-calls``), and strace agrees.

Lesson 13 shows the count per round trip where strace is missing or ptrace is forbidden, so the
servers' own count must be the kernel's: checked here against ``strace -c`` when it works.
"""

import os
import shutil
import signal
import socket
import time

import pytest
from strace import ROUND_TRIPS, echo_one_client, strace_counts

import labkit


def counted(srv, run):
    """The server's own count of each system call while ``run()`` ran, up to its ``recv``
    that reads our close (and a moment more, for its ``unregister`` right after)."""
    echo_one_client(srv.address, round_trips=1)  # the loop has started (READY comes first)
    settled(srv, lambda stats: stats.get("recvfrom") == 2)
    before = srv.stats()
    run()
    after = settled(srv, lambda stats: stats["recvfrom"] - before["recvfrom"] > ROUND_TRIPS)
    return {name: after[name] - before.get(name, 0) for name in after}


def settled(srv, done):
    deadline = time.monotonic() + 10
    while not done(stats := srv.stats()):
        assert time.monotonic() < deadline, stats
        time.sleep(0.02)
    time.sleep(0.2)  # its next calls, after the one we waited for
    return srv.stats()


@pytest.mark.parametrize("name", ["selectors_echo", "epoll_echo", "select_echo", "poll_echo"])
def test_a_reply_is_sent_without_asking_the_loop_first(name):
    """One recv and one send per round trip; the interest changes (a system call for epoll)
    only when the client comes and goes, not per message."""
    with labkit.serve(name, count_calls=True) as srv:
        calls = counted(srv, lambda: echo_one_client(srv.address))
    assert calls["recvfrom"] == ROUND_TRIPS + 1, calls  # the last one reads the close
    assert calls["sendto"] == ROUND_TRIPS, calls
    if name in ("selectors_echo", "epoll_echo"):
        assert calls["epoll_ctl"] == 2, calls  # register, unregister: no modify per message
    waits = calls.get("epoll_wait", 0) + calls.get("select", 0) + calls.get("poll", 0)
    assert ROUND_TRIPS <= waits <= ROUND_TRIPS + 5, calls  # one wait for each message


def test_wait_writable_asks_the_selector_before_every_send():
    """The teaching variant: two modify calls and a second wait for every message."""
    with labkit.serve("selectors_echo", count_calls=True, wait_writable=True) as srv:
        calls = counted(srv, lambda: echo_one_client(srv.address))
    assert calls["epoll_ctl"] == 2 + 2 * ROUND_TRIPS, calls
    assert calls["epoll_wait"] >= 2 * ROUND_TRIPS, calls
    assert calls["sendto"] == ROUND_TRIPS, calls


def test_a_gevent_server_counts_what_it_can():
    """gevent's sockets wrap real ones, whose recv and send are counted: a recv that finds
    nothing (EAGAIN) counts too, before the greenlet waits in the hub. The hub's waits come
    from libev's own count; its epoll_ctl calls, made inside libev, are not counted at all."""
    with labkit.serve("gevent_echo", count_calls=True) as srv:
        echo_one_client(srv.address, round_trips=1)  # the loop has started
        settled(srv, lambda stats: stats.get("recvfrom", 0) >= 2)
        before = srv.stats()
        echo_one_client(srv.address)
        after = settled(srv, lambda stats: stats["sendto"] - before["sendto"] == ROUND_TRIPS)
        log = srv.log()
    calls = {name: after[name] - before.get(name, 0) for name in after}
    assert calls["recvfrom"] >= ROUND_TRIPS + 1, calls  # the last one reads the close
    assert calls["sendto"] == ROUND_TRIPS, calls
    assert calls["epoll_wait"] >= 1, calls
    assert "epoll_ctl" not in after, after
    assert "epoll_ctl (made inside libev) not counted" in log


def test_without_count_calls_nothing_is_counted():
    with labkit.serve("selectors_echo") as srv:
        echo_one_client(srv.address, round_trips=5)
        stats = srv.stats()
    assert not {"recvfrom", "sendto", "epoll_wait", "epoll_ctl"} & set(stats), stats


@pytest.mark.parametrize("name", ["poll_echo", "select_echo"])
def test_a_burst_of_clients_is_accepted_in_a_few_passes(name):
    """300 clients wait in the listen queue (the server is stopped meanwhile): it accepts
    them in a few poll()/select() passes, not one pass each (with 19,000 sockets a pass takes
    milliseconds, and one accept per pass overflowed the listen queue)."""
    clients = 300
    with labkit.serve(name, count_calls=True) as srv:
        waits_before = sum(srv.stats().get(c, 0) for c in ("poll", "select"))
        os.kill(srv.pid, signal.SIGSTOP)
        try:
            socks = [socket.create_connection(srv.address, timeout=10) for _ in range(clients)]
        finally:
            os.kill(srv.pid, signal.SIGCONT)
        try:
            deadline = time.monotonic() + 20
            while (stats := srv.stats()).get("connections", 0) < clients:
                assert time.monotonic() < deadline, stats
                time.sleep(0.05)
            passes = sum(stats.get(c, 0) for c in ("poll", "select")) - waits_before
            echo_one_client(srv.address, round_trips=3)  # and it still serves
        finally:
            for s in socks:
                s.close()
    assert passes < 30, f"{passes} passes to accept {clients} clients"


STRACED = ("recvfrom", "sendto", "epoll_ctl", "epoll_wait")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize(
    "name, options",
    [("selectors_echo", {}), ("selectors_echo", {"wait_writable": True}), ("gevent_echo", {})],
)
def test_the_servers_own_count_is_what_strace_counts(name, options):
    """Both counts are taken while strace is attached: attaching and detaching wake a waiting
    server, which strace does not see."""
    with labkit.serve(name, count_calls=True, **options) as srv:
        echo_one_client(srv.address, round_trips=1)  # the loop has started (READY comes first)
        settled(srv, lambda stats: stats.get("recvfrom", 0) >= 2)
        stats = {}

        def run():
            stats["before"] = srv.stats()
            echo_one_client(srv.address)
            time.sleep(0.3)  # the server's last calls (it closes after our close)
            stats["after"] = srv.stats()

        traced = strace_counts(srv.pid, run)
        if traced is None:
            pytest.skip("strace cannot attach here (ptrace is not allowed)")
    before, after = stats["before"], stats["after"]
    own = {call: after.get(call, 0) - before.get(call, 0) for call in STRACED}
    exact = (
        ("recvfrom", "sendto") if name.startswith("gevent") else ("recvfrom", "sendto", "epoll_ctl")
    )
    for call in exact:
        assert own[call] == traced.get(call, 0), (own, traced)
    # strace may also count the epoll_wait the server was in when it attached
    assert abs(own["epoll_wait"] - traced.get("epoll_wait", 0)) <= 1, (own, traced)
