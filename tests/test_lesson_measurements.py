"""Measurements the lessons used to define inline, now in labkit and shown with labkit.show:
each still measures what its lesson claims."""

import socket
import threading

from labkit import bench
from labkit.clients.echo import push_without_reading
from labkit.server_cpu import idle_cpu


def test_lock_handoff_cost_is_a_real_round_trip_between_threads():
    cost = bench.lock_handoff_cost(500)
    assert 0 < cost < 0.01  # seconds per round trip
    assert cost > bench.generator_switch_cost(20_000)  # lesson 01's claim, loosely


class FakeServer:
    """A handle whose CPU time grows by ``rate`` seconds on every reading."""

    def __init__(self, rate):
        self.rate, self.used = rate, 0.0

    def cpu_seconds(self):
        self.used += self.rate
        return self.used


def test_idle_cpu_stops_when_one_server_has_burned_enough():
    used, window = idle_cpu({"spin": FakeServer(0.1), "fixed": FakeServer(0.0)}, burn=0.3)
    assert used["spin"] >= 0.3 and used["fixed"] == 0.0
    assert window < 2


def test_idle_cpu_gives_up_after_the_longest_window():
    used, window = idle_cpu({"fixed": FakeServer(0.0)}, burn=0.3, longest=0.2)
    assert used == {"fixed": 0.0} and 0.2 <= window < 1.5


def test_push_without_reading_stops_when_nobody_reads():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        # the kernel completes the connection; nobody ever reads it
        pushed = push_without_reading(listener.getsockname(), offer=64 << 20, stuck_after=0.3)
        assert 0 < pushed < 64 << 20


def test_push_without_reading_takes_everything_a_reader_takes():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        got = []

        def reader():
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                while chunk := conn.recv(65536):
                    got.append(len(chunk))

        t = threading.Thread(target=reader)
        t.start()
        pushed = push_without_reading(listener.getsockname(), offer=4 << 20, stuck_after=2)
        t.join(10)
    assert pushed >= 4 << 20 and sum(got) == pushed


def test_idle_cpu_with_nothing_to_burn_returns_at_once():
    used, window = idle_cpu({"a": FakeServer(0.0)}, burn=0.0)
    assert used == {"a": 0.0} and window < 0.5
