"""The latency server honours delay, jitter and error rate, holds 1,000 slow requests at once,
and returns exact bytes; each fetch strategy returns the right results and Spans."""

import asyncio
import hashlib
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import labkit
from labkit.clients.pages import fetch_one
from labkit.runs import fetch_with
from labkit.timeline import Recorder, Span, max_concurrent

PAGES = Path(__file__).resolve().parent.parent / "data" / "pages"
SHA = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in PAGES.glob("*.html")}


@pytest.fixture(scope="module")
def server():
    with labkit.serve("latency_http", root=PAGES, delay=0.0) as srv:
        srv.base = f"http://{srv.host}:{srv.port}"
        yield srv


def get(url):
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), time.perf_counter() - start
    except urllib.error.HTTPError as err:
        return err.code, err.read(), time.perf_counter() - start


def log(server, clear=False):
    return json.loads(get(f"{server.base}/_log{'?clear=1' if clear else ''}")[1])


def test_the_three_pages_have_the_original_sizes():
    assert {p.name: p.stat().st_size for p in PAGES.glob("*.html")} == {
        "page-48k.html": 48_708,
        "page-479k.html": 478_886,
        "page-56k.html": 55_867,
    }


@pytest.mark.parametrize("name", sorted(SHA))
def test_exact_bytes(server, name):
    status, body, _ = get(f"{server.base}/pages/{name}")
    assert status == 200 and hashlib.sha256(body).hexdigest() == SHA[name]


def test_delay_is_honoured(server):
    for i in range(5):
        status, _, took = get(f"{server.base}/pages/page-48k.html?delay=0.15&id={i}")
        assert status == 200 and 0.15 <= took < 0.6


def test_jitter_stays_within_bounds_and_varies(server):
    log(server, clear=True)
    urls = [f"{server.base}/pages/page-48k.html?delay=0.1&jitter=0.05&id={i}" for i in range(30)]
    run = fetch_with("gevent", urls)
    assert run.statuses == {200: 30}
    waits = [r["end"] - r["start"] for r in log(server)]
    assert min(waits) >= 0.05 - 0.005 and max(waits) <= 0.15 + 0.1  # + the server's own lag
    assert max(waits) - min(waits) > 0.03  # it really varies


def test_error_rate_is_seeded_and_close_to_the_rate(server):
    urls = [f"{server.base}/pages/page-48k.html?error_rate=0.25&id={i}" for i in range(400)]
    first, again = fetch_with("gevent", urls), fetch_with("gevent", urls)
    assert set(first.statuses) == {200, 503}
    assert 60 <= first.statuses[503] <= 140  # 100 expected; binomial sd ~9
    assert [r.status for r in first.results] == [r.status for r in again.results]
    assert all(r.sha256 == SHA["page-48k.html"] for r in first.results if r.status == 200)


def test_holds_1000_concurrent_slow_requests(server):
    log(server, clear=True)
    # 2 s each: the 1,000 start within about 0.25 s here, 8 times less than one wait
    urls = [f"{server.base}/pages/page-48k.html?delay=2.0&id={i}" for i in range(1000)]
    run = fetch_with("gevent", urls)
    assert run.statuses == {200: 1000}
    assert all(r.sha256 == SHA["page-48k.html"] for r in run.results)
    served = [Span(str(i), "waiting", r["start"], r["end"]) for i, r in enumerate(log(server))]
    # every request was being served at the same moment as every other one
    assert max_concurrent(served) == 1000


@pytest.mark.parametrize(
    "path,status",
    [
        ("/pages/no-such.html", 404),
        ("/pages/../pyproject.toml", 404),
        ("/etc/passwd", 404),
        ("/pages/page-48k.html?delay=abc", 400),
        ("/pages/page-48k.html?delay=-1", 400),
        ("/pages/page-48k.html?error_rate=2", 400),
    ],
)
def test_bad_requests_get_clear_errors(server, path, status):
    got, body, _ = get(server.base + path)
    assert got == status and body
    assert get(f"{server.base}/pages/page-56k.html")[0] == 200  # and it keeps serving


def test_garbage_and_vanishing_clients_do_not_stop_the_server(server):
    for garbage in (b"\x00\xff" * 100 + b"\r\n\r\n", b"GET / HTTP/1.1\r\n"):
        with socket.create_connection((server.host, server.port), timeout=5) as s:
            s.sendall(garbage)
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"GET /pages/page-479k.html?delay=0.1 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, body, _ = get(f"{server.base}/pages/page-479k.html")
    assert status == 200 and hashlib.sha256(body).hexdigest() == SHA["page-479k.html"]


@pytest.mark.parametrize("strategy,overlap", [("sequential", 1), ("threads", 8), ("gevent", 8)])
def test_each_strategy_returns_results_in_order_with_spans(server, strategy, overlap):
    delay = 0.1 if strategy == "sequential" else 0.3  # all 8 at once: each starts in time
    urls = [
        f"{server.base}/pages/{name}?delay={delay}&id={i}"
        for i in range(8)
        for name in ["page-48k.html"]
    ]
    urls[3] = f"{server.base}/pages/page-56k.html?delay={delay}"
    run = fetch_with(strategy, urls)
    assert [r.url for r in run.results] == urls
    assert [r.sha256 for r in run.results] == [SHA["page-48k.html"]] * 3 + [
        SHA["page-56k.html"]
    ] + [SHA["page-48k.html"]] * 4
    assert sorted(s.task for s in run.spans) == sorted(f"Request {i}" for i in range(1, 9))
    assert max_concurrent(run.spans) == overlap


def test_no_answer_is_a_result_not_a_crash():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    result = fetch_one(f"http://127.0.0.1:{port}/pages/x", Recorder(), "Request 1", timeout=5)
    assert result.status == 0 and "Connection" in result.error


def test_unknown_strategy():
    with pytest.raises(ValueError, match="sequential"):
        fetch_with("carrier-pigeon", [])


@pytest.mark.parametrize("root", ["/nope", "data/pages/page-48k.html"])
def test_a_bad_root_fails_the_start_with_the_reason(root):
    with pytest.raises(labkit.ServerStartError, match="--root"):
        labkit.serve("latency_http", root=root)


@pytest.mark.parametrize(
    "path", ["/<script>alert(1)</script>", "/pages/page-48k.html?delay=<b>x</b>"]
)
def test_error_replies_are_plain_text_never_html(server, path):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.base + urllib.request.quote(path, safe="/?="), timeout=10)
    assert err.value.code in (400, 404)
    assert err.value.headers["Content-Type"].startswith("text/plain")
    assert b"<" in err.value.read()  # it does quote the request: as text only
    with urllib.request.urlopen(f"{server.base}/pages/page-48k.html", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/html")


def test_the_access_log_keeps_only_the_newest_records():
    with labkit.serve("latency_http", root=PAGES, delay=0.0, log_size=5) as srv:
        srv.base = f"http://{srv.host}:{srv.port}"
        for i in range(8):
            assert get(f"{srv.base}/pages/page-48k.html?id={i}")[0] == 200
        assert [r["id"] for r in log(srv)] == ["3", "4", "5", "6", "7"]


def test_a_stalled_request_is_dropped_after_the_header_timeout():
    with labkit.serve("latency_http", root=PAGES, header_timeout=0.5) as srv:
        with socket.create_connection((srv.host, srv.port), timeout=5) as s:
            s.sendall(b"GET /pages/page-48k.html HTTP/1.1\r\nHost: x\r\n")  # no end of head
            started = time.monotonic()
            assert s.recv(65536).startswith(b"HTTP/1.1 400")
            assert time.monotonic() - started < 3


# -- lesson 09: the same fetcher on asyncio (httpx.AsyncClient) -------------------------------
def slow_urls(server, n=20, delay=0.2):
    return [f"{server.base}/pages/page-48k.html?delay={delay}&id={i}" for i in range(n)]


def test_asyncio_gather_overlaps_every_request_and_checks_every_byte(server):
    urls = slow_urls(server)
    urls[3] = f"{server.base}/pages/page-56k.html?delay=0.2"
    run = fetch_with("asyncio", urls)
    assert [r.url for r in run.results] == urls and run.statuses == {200: 20}
    assert [r.sha256 for r in run.results] == [SHA["page-48k.html"]] * 3 + [
        SHA["page-56k.html"]
    ] + [SHA["page-48k.html"]] * 16
    assert sorted(s.task for s in run.spans) == sorted(f"Request {i}" for i in range(1, 21))
    assert run.elapsed < 0.4 * 20 * 0.2  # well under the sum of the delays
    assert max_concurrent(run.spans) >= 15


def test_asyncio_limited_to_5_takes_about_4_rounds(server):
    from labkit.clients.pages import download_many_limited, timed_run_async

    seen = []
    run = asyncio.run(
        timed_run_async(
            lambda urls, rec, progress: download_many_limited(urls, rec, progress, limit=5),
            slow_urls(server),
            "limited",
            progress=lambda done, total: seen.append((done, total)),
        )
    )
    assert run.statuses == {200: 20} and seen[-1] == (20, 20)
    assert {r.sha256 for r in run.results} == {SHA["page-48k.html"]}
    assert max_concurrent(run.spans) == 5  # queued spans are not counted
    assert 0.75 < run.elapsed < 2.0  # 4 rounds of 0.2 s (3 would be 0.6, 10 would be 2.0)
    assert sum(s.state == "queued" and s.length > 0.15 for s in run.spans) >= 12


def test_asyncio_await_is_one_after_another(server):
    from labkit.clients.pages import download_many_await, timed_run_async

    run = asyncio.run(timed_run_async(download_many_await, slow_urls(server, n=3, delay=0.1)))
    assert run.strategy == "await" and run.statuses == {200: 3}
    assert max_concurrent(run.spans) == 1 and run.elapsed >= 0.3


def test_asyncio_no_answer_is_a_result_not_a_crash():
    from labkit.clients.pages import fetch_one_async, open_async_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here

    async def fetch():
        async with open_async_client() as client:
            return await fetch_one_async(client, f"http://127.0.0.1:{port}/x", Recorder(), "R 1")

    result = asyncio.run(fetch())
    assert result.status == 0 and "Connect" in result.error
    run = fetch_with("asyncio-limited", [f"http://127.0.0.1:{port}/x?id={i}" for i in range(3)])
    assert run.statuses == {0: 3} and "NO REQUEST GOT AN ANSWER" in run.summary()


def test_asyncio_503_is_a_result_worded_as_urllib_words_it(server):
    run = fetch_with("asyncio", [f"{server.base}/pages/page-48k.html?error_rate=1&id=1"])
    assert run.statuses == {503: 1}
    assert run.results[0].error == "HTTP Error 503: Service Unavailable"


def test_the_sync_asyncio_strategy_runs_where_a_loop_already_runs(server):
    """As in a Jupyter kernel: this thread runs an event loop, where asyncio.run would raise."""

    async def cell():
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="running event loop"):
            asyncio.run(coro)
        coro.close()  # never started
        return fetch_with("asyncio", slow_urls(server, n=5, delay=0.05))

    run = asyncio.run(cell())
    assert run.statuses == {200: 5} and max_concurrent(run.spans) == 5
