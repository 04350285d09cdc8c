"""The measurements lessons show with ``labkit.show`` and then run, tested outside the lessons:
each measures what its lesson claims."""

import socket
import struct
import threading
import time

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


def test_push_without_reading_on_a_given_socket_leaves_it_open_and_stops_at_longest():
    """The grader and the compute tests push on a connection they keep: it stays open, and a
    server that reads slowly but never stops cannot keep them pushing past ``longest``."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        stop = threading.Event()

        def trickle():  # takes up to 16 KiB every 0.01 s: never stuck for 0.3 s
            conn, _ = listener.accept()
            with conn:
                while not stop.is_set() and conn.recv(16384):
                    time.sleep(0.01)

        t = threading.Thread(target=trickle)
        t.start()
        with socket.create_connection(listener.getsockname(), timeout=5) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # room made often
            started = time.monotonic()
            pushed = push_without_reading(sock, offer=1 << 30, stuck_after=0.3, longest=0.5)
            took = time.monotonic() - started
            assert sock.fileno() != -1  # still open: the caller closes it
        stop.set()
        t.join(10)
    assert 0 < pushed < 1 << 30 and 0.5 <= took < 2.0, (pushed, took)


def test_push_without_reading_stops_when_the_server_resets_the_connection():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def reset():
            conn, _ = listener.accept()
            conn.recv(1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # with unread bytes and linger 0: a reset

        t = threading.Thread(target=reset)
        t.start()
        pushed = push_without_reading(listener.getsockname(), offer=1 << 30, stuck_after=5)
        t.join(10)
    assert 0 < pushed < 1 << 30


def test_idle_cpu_with_nothing_to_burn_returns_at_once():
    used, window = idle_cpu({"a": FakeServer(0.0)}, burn=0.0)
    assert used == {"a": 0.0} and window < 0.5
