"""The door every teaching server accepts through (labkit.accept_policy), in this process: its
reserve, the idle connections it closes (and those it never closes), its pause."""

from __future__ import annotations

import resource
import socket
import time
from contextlib import ExitStack

import pytest

from labkit import accept_policy
from labkit.accept_policy import PAUSED, Door, quiet_for
from labkit.counters import counters

MIN_IDLE = 0.5  # the door's wait before an idle connection may go, shortened for these tests


@pytest.fixture(autouse=True)
def quick_idle(monkeypatch):
    monkeypatch.setattr(accept_policy, "MIN_IDLE", MIN_IDLE)


@pytest.fixture
def listener():
    with socket.create_server(("127.0.0.1", 0), backlog=64) as sock:
        sock.setblocking(False)
        yield sock


def room_for(door: Door, clients: int) -> Door:
    """Make ``door`` think this process has room for ``clients`` more clients, whatever its
    real limit: the descriptors it counts as not the clients' fill the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    door.others = soft - door.reserve - clients * door.per_client
    return door


def count(name: str) -> int:
    return counters.snapshot().get(name, 0)


def connect(stack: ExitStack, listener, n=1) -> list[socket.socket]:
    return [
        stack.enter_context(socket.create_connection(listener.getsockname(), timeout=5))
        for _ in range(n)
    ]


def accepted(door, listener, close_idle=None, wait=2.0):
    """What the door lets in, once the client's handshake has reached the listen queue."""
    deadline = time.monotonic() + wait
    while (conn := door.accept(listener, close_idle)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return conn


def test_quiet_for_counts_from_the_last_data_and_is_zero_while_a_request_waits(listener):
    with ExitStack() as stack:
        connected = time.monotonic()
        (client,) = connect(stack, listener)
        conn = stack.enter_context(accepted(Door(), listener))
        time.sleep(0.3)
        quiet = quiet_for(conn)  # the kernel counts in clock ticks of a few ms
        assert 0.25 <= quiet <= time.monotonic() - connected + 0.02
        client.sendall(b"GET x\n")
        time.sleep(0.3)
        assert quiet_for(conn) == 0.0  # a request we have not read: not idle
        assert quiet_for(conn, queues=False) >= 0.25  # (what the kernel dates alone says)
        conn.recv(100)
        assert quiet_for(conn) >= 0.25  # read now: quiet since the request came
        conn.sendall(b"OK\n")
        assert quiet_for(conn) < 0.1  # we just sent: not quiet any more
    assert quiet_for(conn) == 0.0  # closed: never idle


def test_the_door_keeps_a_reserve_and_shuts_for_a_moment(listener):
    door = room_for(Door(per_client=3), clients=2)
    paused = count("accept_paused")
    with ExitStack() as stack:
        connect(stack, listener, 3)
        first = stack.enter_context(accepted(door, listener))
        stack.enter_context(accepted(door, listener))
        assert door.accept(listener) == PAUSED  # the third would eat into the reserve
        assert count("accept_paused") == paused + 1 and not door.accepting()
        assert 0 < door.timeout() <= accept_policy.ACCEPT_PAUSE
        door.closed(first)  # one leaves: the next fits
        assert isinstance(accepted(door, listener), socket.socket)


def test_room_is_made_from_the_connection_idle_longest_and_only_for_a_client_waiting(listener):
    door = room_for(Door(), clients=3)
    closed = []

    def close_idle(conn):
        closed.append(conn)
        door.closed(conn)
        conn.close()
        return True

    with ExitStack() as stack:
        for _ in range(3):  # apart by several of the kernel's clock ticks (4 ms here), which
            connect(stack, listener)  # date each one's last data: the first is the oldest
            time.sleep(0.03)
        held = [accepted(door, listener) for _ in range(3)]
        time.sleep(MIN_IDLE + 0.3)
        evicted = count("evicted_idle")
        assert door.accept(listener, close_idle) == PAUSED and closed == []  # nobody waits
        connect(stack, listener)
        newcomer = accepted(door, listener, close_idle)
        assert isinstance(newcomer, socket.socket) and closed == [held[0]]  # the oldest
        assert count("evicted_idle") == evicted + 1
        for conn in [*held, newcomer]:
            conn.close()


def test_a_busy_connection_is_never_closed(listener):
    door = room_for(Door(), clients=2)
    with ExitStack() as stack:
        connect(stack, listener, 2)
        held = [accepted(door, listener) for _ in range(2)]
        time.sleep(MIN_IDLE + 0.3)
        connect(stack, listener)
        busy = {held[0]}  # the server says: mid-request

        def close_idle(conn):
            if conn in busy:
                return False
            door.closed(conn)
            conn.close()
            return True

        newcomer = accepted(door, listener, close_idle)
        assert isinstance(newcomer, socket.socket)
        assert held[0].fileno() != -1 and held[1].fileno() == -1  # the idle one went
        time.sleep(MIN_IDLE + 0.3)
        connect(stack, listener)
        busy.add(newcomer)  # now every connection is busy: the next client waits
        assert door.accept(listener, close_idle) == PAUSED
        assert held[0].fileno() != -1 and newcomer.fileno() != -1
        for conn in (held[0], newcomer):
            conn.close()


def test_a_descriptor_not_yet_closed_is_waited_for_not_paid_twice(listener):
    """gevent closes a socket a loop pass after close(): meanwhile its descriptor still
    counts, and the door neither accepts into it nor closes a second connection."""
    door = room_for(Door(), clients=2)
    later = []

    def close_later(conn):  # as gevent does: the descriptor goes on the next pass
        door.closed(conn)
        later.append(conn)
        return True

    with ExitStack() as stack:
        connect(stack, listener, 2)
        held = [accepted(door, listener) for _ in range(2)]
        time.sleep(MIN_IDLE + 0.3)
        connect(stack, listener)
        assert door.accept(listener, close_later) is None  # room made, not free yet
        assert door.accept(listener, close_later) is None and len(later) == 1  # not twice
        later[0].close()  # the loop pass comes
        newcomer = door.accept(listener, close_later)
        assert isinstance(newcomer, socket.socket) and len(later) == 1
        for conn in [*held, newcomer]:
            conn.close()
