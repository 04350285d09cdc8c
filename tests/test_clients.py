"""The load clients: threads and greenlets, spans per round trip, errors reported not raised."""

import socket
from pathlib import Path

import pytest

import labkit
from labkit.clients.load import LoadResult, run_echo_clients
from labkit.runs import fetch_with
from labkit.timeline import max_concurrent

PAGES = Path(__file__).resolve().parent.parent / "data" / "pages"


def test_threaded_clients_record_every_round_trip():
    with labkit.serve("select_echo") as srv:
        result = run_echo_clients(srv.address, n_clients=50, messages=4, size=3000)
    assert (result.round_trips, result.bytes_verified, result.errors) == (200, 600_000, [])
    assert len(result.spans) == 200 and len(result.latencies) == 200
    assert {s.task for s in result.spans} == {f"Client {i}" for i in range(1, 51)}
    assert max_concurrent(result.spans) > 1  # they really overlapped
    assert 0 < result.percentile(50) <= result.percentile(99)
    assert "50 clients, 200 round trips" in result.summary()


def test_the_same_clients_on_greenlets_in_a_patched_child():
    with labkit.serve("epoll_echo") as srv:
        run = labkit.run_script("gevent_echo_clients", srv.host, srv.port, 300, 2, 512)
    result = LoadResult.from_dict(run.data["result"])
    assert (result.round_trips, result.bytes_verified, result.errors) == (600, 300 * 2 * 512, [])


def test_a_dead_server_gives_errors_not_an_exception():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = s.getsockname()  # nothing listens here
    result = run_echo_clients(address, n_clients=3, timeout=2)
    assert result.round_trips == 0 and len(result.errors) == 3
    assert "ConnectionRefusedError" in result.errors[0]


def test_progress_reaches_the_end():
    seen = []
    with labkit.serve("thread_echo") as srv:
        run_echo_clients(srv.address, n_clients=20, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (20, 20)


def test_more_clients_than_file_descriptors_is_refused_with_advice():
    with pytest.raises(labkit.TooManyClients, match="ulimit -n"):
        run_echo_clients(("127.0.0.1", 9), n_clients=labkit.max_clients() + 1)


def test_a_capped_server_shows_its_queue_on_the_clients_timeline():
    """Pool(2) and 6 clients that each hold their connection 0.1 s: two are served at once,
    the rest are drawn as queued (not as a slow first round trip) until a handler is free."""
    with labkit.serve("gevent_stream_echo", pool=2) as srv:
        result = run_echo_clients(
            srv.address, n_clients=6, messages=2, size=100, pause=0.1, mark_queue=True
        )
    assert (result.round_trips, result.bytes_verified, result.errors) == (12, 1200, [])
    queued = sorted(s.length for s in result.spans if s.state == "queued")
    assert len(queued) == 6  # one per client, first on its row
    assert sum(length >= 0.05 for length in queued) >= 4  # the pause is a floor: 0.1 s
    assert max_concurrent(result.spans, states=("waiting", "idle")) == 2
    assert sum(s.state == "idle" for s in result.spans) == 6  # the pause, one per client


def test_without_mark_queue_a_row_is_round_trips_only():
    with labkit.serve("select_echo") as srv:
        result = run_echo_clients(srv.address, n_clients=3, messages=2, size=10)
    assert {s.state for s in result.spans} == {"waiting"} and len(result.spans) == 6


def test_a_fetch_run_with_no_answer_at_all_says_so():
    """Lesson 04's panel once reported "done" over 50 refused requests: a run in which the
    server never answered must say so, and refuse to pass for a result when asked."""
    from labkit.clients.pages import NoAnswer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    run = fetch_with("threads", [f"http://127.0.0.1:{port}/pages/x?id={i}" for i in range(5)])
    assert run.statuses == {0: 5} and run.answered == 0
    assert "NO REQUEST GOT AN ANSWER" in run.summary() and "Connection" in run.summary()
    with pytest.raises(NoAnswer, match="all 5 requests failed without an answer"):
        run.raise_if_unanswered()


def test_a_fetch_run_with_503s_is_answered():
    with labkit.serve("latency_http", root=PAGES, delay=0.0) as srv:
        base = f"http://{srv.host}:{srv.port}/pages/page-48k.html"
        run = fetch_with("threads", [f"{base}?id={i}&error_rate=1" for i in range(4)])
    assert run.statuses == {503: 4} and run.answered == 4
    assert run.raise_if_unanswered() is run and "NO REQUEST" not in run.summary()
    assert run.cpu > 0  # measured, not left at 0


def test_after_one_client_leaves_gevent_echo_hang_answers_no_one():
    """The broken-on-purpose server of lesson 06: later clients time out, they don't hang."""
    with labkit.serve("gevent_echo_hang") as srv:
        first = run_echo_clients(srv.address, n_clients=1, messages=1, size=10)
        spinning_from = srv.cpu_seconds()
        later = run_echo_clients(srv.address, n_clients=2, messages=1, size=10, timeout=0.5)
        assert srv.cpu_seconds() > spinning_from  # it burns CPU meanwhile
    assert first.round_trips == 1 and later.round_trips == 0
    assert len(later.errors) == 2 and all("TimeoutError" in e for e in later.errors)


@pytest.mark.parametrize("strategy", ["asyncio", "asyncio-limited"])
def test_the_asyncio_strategies_report_progress_to_the_end(strategy):
    """They run on a loop of their own in a worker thread; progress still reaches the end."""
    seen = []
    with labkit.serve("latency_http", root=PAGES, delay=0.0) as srv:
        base = f"http://{srv.host}:{srv.port}/pages/page-48k.html"
        run = fetch_with(
            strategy, [f"{base}?id={i}" for i in range(30)], lambda d, t: seen.append((d, t))
        )
    assert run.statuses == {200: 30} and run.strategy == strategy
    assert seen[-1] == (30, 30)
