"""Lesson 09's exercises: asyncio. The two coding exercises run the student's coroutine function
against a local latency_http, on a loop of their own in a thread of their own (a notebook cell
already runs inside the kernel's loop), and read the server's access log to see how many
requests it served at once."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from labkit.claims import DATA
from labkit.clients.pages import StillRunning, run_in_new_loop
from labkit.exercises import Exercise, NotYet, chosen_option, close_to, readings, worked

PAGES = DATA / "pages"
PAGE = "page-48k.html"
RUN_TIMEOUT = 60.0  # seconds a student's coroutine may take before the check gives up


# -- running the student's coroutine function, and what the server saw -------------------------
def run_coroutine(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Await ``fn(*args)`` on a new loop in a new thread: (its result, seconds taken). ``fn``
    may be any callable that returns an awaitable (an ``async def`` function, a partial of
    one, a lambda that calls one). Its exception is raised here; a run over RUN_TIMEOUT
    seconds is a NotYet."""

    async def call() -> Any:
        awaitable = fn(*args)
        if not inspect.isawaitable(awaitable):
            raise NotYet("write it as a coroutine function: `async def ...`, so it can `await`.")
        return await awaitable

    started = time.perf_counter()
    try:
        result = run_in_new_loop(call, timeout=RUN_TIMEOUT)
    except StillRunning:
        raise NotYet(f"it did not finish in {RUN_TIMEOUT:.0f} s: does every request end?") from None
    return result, time.perf_counter() - started


@contextmanager
def slow_server(delay: float) -> Iterator[str]:
    """A fresh latency_http answering after ``delay`` seconds; yields its base URL."""
    from labkit.background import serve

    with serve("latency_http", root=PAGES, delay=delay) as srv:
        yield f"http://{srv.host}:{srv.port}"


def served_at_once(base: str) -> int:
    """The most page requests the server was serving at the same moment (from its log)."""
    with urllib.request.urlopen(f"{base}/_log", timeout=10) as reply:
        records = [r for r in json.loads(reply.read()) if r["path"].startswith("/pages/")]
    # Sweep over time: +1 at each start, -1 at each end (an end first when they tie). Counting
    # the requests that overlap one long request would over-count: the one that ended just
    # after it began and the one that began just before it ended were never served together.
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


# Three pages, each with its own delay: of three URLs in a row the first answers last, so an
# answer that returns the bodies in the order they arrived returns a different list.
KINDS = [("page-48k.html", 0.25), ("page-56k.html", 0.15), ("page-479k.html", 0.05)]


def _urls(base: str, n: int, run: str) -> dict[str, bytes]:
    """``n`` URLs of the three pages in turn, and the body each must give."""
    urls = {}
    for i in range(n):
        name, delay = KINDS[i % len(KINDS)]
        urls[f"{base}/pages/{name}?id={i}&delay={delay}&run={run}"] = (PAGES / name).read_bytes()
    return urls


# -- exercise 1: gather with a concurrency limit -----------------------------------------------
async def fetch_all(urls, limit):
    semaphore = asyncio.Semaphore(limit)  # at most `limit` holders at once

    async def fetch(client, url):
        async with semaphore:  # wait here while `limit` requests are in flight
            response = await client.get(url)
            return response.content

    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(fetch(client, url) for url in urls))  # in order


def _as_bytes(bodies: Any) -> list[bytes] | None:
    """The bodies as a list of bytes (bytearray and memoryview too), or None if they are not."""
    try:
        items = list(bodies)
    except TypeError:
        return None
    if not all(isinstance(b, bytes | bytearray | memoryview) for b in items):
        return None
    return [bytes(b) for b in items]


def _check_fetch_all(fn: Callable) -> str:
    with slow_server(delay=0.15) as base:
        for n, limit in ((10, 3), (9, 5)):
            expected = _urls(base, n, run=str(limit))
            urllib.request.urlopen(f"{base}/_log?clear=1", timeout=10).close()
            bodies, _ = run_coroutine(fn, list(expected), limit)
            got = _as_bytes(bodies)
            if got is None or len(got) != n:
                raise NotYet(f"for {n} URLs, return the {n} bodies (a list of bytes).")
            if sorted(got) != sorted(expected.values()):
                raise NotYet("a body is not its page: return each response's .content.")
            if got != list(expected.values()):
                raise NotYet(
                    "the bodies are all there, but not in the order of urls (the first URLs "
                    "answer last): return them in the order of the URLs, not of their answers."
                )
            at_once = served_at_once(base)
            if at_once > limit:
                raise NotYet(
                    f"with limit={limit}, the server served {at_once} requests at once: "
                    "each request must wait for a free place (a Semaphore around the request)."
                )
            if at_once < limit:
                raise NotYet(
                    f"with limit={limit}, the server never served more than {at_once} at "
                    f"once: up to {limit} may be in flight together, use them."
                )
    return (
        "the bodies came back in the order of urls, and the server never saw more than "
        "`limit` requests at once, and saw that many."
    )


# -- exercise 2: a TaskGroup that survives a failing request ----------------------------------
async def fetch_survivors(urls):
    results = {}

    async def fetch(client, url):
        try:  # a failure stays inside its task: the group never sees it
            response = await client.get(url)
        except httpx.HTTPError:  # refused, reset, timed out: no answer
            return
        if response.status_code == 200:
            results[url] = response.content

    async with httpx.AsyncClient(timeout=30) as client:
        async with asyncio.TaskGroup() as group:
            for url in urls:
                group.create_task(fetch(client, url))
    return results


def _refused_url() -> tuple[socket.socket, str]:
    """A URL on a port of ours that nobody listens on: every connection is refused."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder, f"http://127.0.0.1:{holder.getsockname()[1]}/pages/{PAGE}"


@contextmanager
def taskgroup_tasks() -> Iterator[list[str]]:
    """Note every task that an ``asyncio.TaskGroup`` starts while the block runs, however the
    code names the class (``asyncio.TaskGroup``, ``from asyncio import TaskGroup``, a helper
    of its own that makes the group): the check asks for a TaskGroup and sees it used."""
    started: list[str] = []
    create_task = asyncio.TaskGroup.create_task

    def noting(group: asyncio.TaskGroup, coro: Any, **options: Any) -> Any:
        started.append(getattr(coro, "__qualname__", type(coro).__name__))
        return create_task(group, coro, **options)

    setattr(asyncio.TaskGroup, "create_task", noting)  # noqa: B010 (a method: mypy refuses =)
    try:
        yield started
    finally:
        setattr(asyncio.TaskGroup, "create_task", create_task)  # noqa: B010


def _check_survivors(fn: Callable) -> str:
    holder, refused = _refused_url()
    with holder, slow_server(delay=0.2) as base:
        good = _urls(base, 6, run="survivors")
        urls = [*list(good)[:3], f"{base}/pages/{PAGE}?id=9&error_rate=1", refused, *list(good)[3:]]
        try:
            with taskgroup_tasks() as in_groups:
                got, _ = run_coroutine(fn, urls)
        except BaseExceptionGroup as group:
            raise NotYet(
                f"it raised {type(group).__name__} ({group.exceptions[0]!r}): when a task "
                "fails, the TaskGroup cancels the others and re-raises. Catch the failure "
                "inside each task, so the group never sees it."
            ) from None
        at_once = served_at_once(base)
    if len(in_groups) < len(urls):
        raise NotYet(
            f"{len(in_groups)} tasks were started in an asyncio.TaskGroup, for {len(urls)} "
            "URLs: the exercise asks for one TaskGroup that starts a task per URL."
        )
    if not isinstance(got, dict) or set(got) != set(good):
        kept = sorted(got) if isinstance(got, dict) else got
        raise NotYet(
            f"expected a dict with the 6 URLs answered 200 as keys, got {kept!r:.300}: "
            "leave out the refused request and the one answered 503."
        )
    if any(_as_bytes([got[url]]) != [body] for url, body in good.items()):
        raise NotYet("a value is not its URL's page: store each response's .content.")
    if at_once < 6:
        raise NotYet(
            f"the server served at most {at_once} at once: start every request as its own "
            "task in the group, so they all wait together."
        )
    return "the refused and the 503 requests were left out, and the other six all came back."


# -- exercises 3 and 4 ---------------------------------------------------------------------------
def _check_semaphore_time(answer: Any) -> str:
    values = readings(answer, "s")  # 0.6, "0.6 s", "600 ms", "3 rounds x 0.2 = 0.6"
    if not values:
        raise NotYet(f"{answer!r}: answer with a number of seconds.")
    if not any(close_to(seconds, 0.6, 0.15) for seconds in values):
        raise NotYet(
            f"{answer} (seconds)? Two at a time: how many rounds of 0.2 s do five coroutines need?"
        )
    return "three rounds (2 + 2 + 1) of 0.2 s: 0.6 s."


_BLOCKING = {
    "a": "await asyncio.sleep(1)",
    "b": "time.sleep(1)",
    "c": "await asyncio.to_thread(time.sleep, 1)",
}


def _check_blocks_loop(answer: Any) -> str:
    text = str(answer).strip().lower()
    letter = chosen_option(text, {k: v.lower() for k, v in _BLOCKING.items()})
    if letter is None and text.startswith("time.sleep"):
        letter = "b"
    if letter is None:
        raise NotYet('answer "a", "b" or "c".')
    if letter != "b":
        raise NotYet(
            "that one awaits: the coroutine gives the loop back while it waits. Which one "
            "never returns to the loop for a whole second?"
        )
    return "time.sleep holds the thread, so the loop and every other task stand still."


# -- exercise 5 ------------------------------------------------------------------------------------
def _check_select_calls(answer: Any) -> str:
    values = readings(answer)  # 3, "3 calls", 3.004, "1 select + 1 recv + 1 send = 3"
    if not values:
        raise NotYet(f"{answer!r}: answer with a number of system calls per round trip.")
    if any(close_to(calls, 3.0, 0.3) for calls in values):
        return "one select(), one recv, one send per round trip: 3, as the selectors server."
    if any(close_to(calls, 6.0, 0.3) for calls in values):
        raise NotYet(
            "that is the selectors server that asks first. Does select_echo ask select() "
            "about writing before it sends?"
        )
    raise NotYet(f"{answer}. Count what one echo needs: a wait, a read, a write.")


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            Write `async def fetch_all(urls, limit)`: fetch every URL with
            `httpx.AsyncClient`, with at most `limit` requests in flight at once, and return
            the bodies (bytes) in the order of `urls`. The check runs it against a local
            `latency_http` and reads the server's log to see how many requests it served at
            once.""",
            [
                "asyncio.gather(*coroutines) returns their results in the order given.",
                "An asyncio.Semaphore(limit) lets `limit` holders in at once: put "
                "`async with semaphore:` around the request itself.",
            ],
            _check_fetch_all,
            answer=worked(1, fetch_all, imports="import asyncio\n\nimport httpx"),
            why="""gather starts every coroutine at once and returns the results in the order
            of urls, and each request waits at the semaphore until one of the `limit` places is
            free, so no more than `limit` are in flight, yet always that many while work
            remains.""",
        ),
        2: Exercise(
            """
            Write `async def fetch_survivors(urls)`: fetch every URL at once, each in a task of
            one `asyncio.TaskGroup`, and return `{url: body}` for the requests answered with
            status 200. One failing request (refused, or answered 503) must not stop the
            others.""",
            [
                "An exception that escapes a task makes the TaskGroup cancel all the others.",
                "Catch httpx.HTTPError inside the task's coroutine, and keep a body only when "
                "response.status_code == 200.",
            ],
            _check_survivors,
            answer=worked(2, fetch_survivors, imports="import asyncio\n\nimport httpx"),
            why="""Each task catches its own failure, so no exception reaches the TaskGroup and
            it cancels nothing; the group still waits for all its tasks, which all started at
            once, and only 200 answers are kept.""",
        ),
        3: Exercise(
            """
            Five coroutines each `await asyncio.sleep(0.2)` inside
            `async with semaphore:`, where `semaphore = asyncio.Semaphore(2)`, and are run with
            `asyncio.gather`. About how many seconds does it take?""",
            ["How many can hold the semaphore at the same time?"],
            _check_semaphore_time,
            answer="""
            rounds = -(-5 // 2)            # 2, 2, then 1: three rounds
            check(3, rounds * 0.2)""",
            why="""The semaphore lets two coroutines sleep at a time, so the five take three
            rounds (two, two, one) of 0.2 s each, 0.6 s in all, instead of 0.2 s with no limit
            or 1 s one after another.""",
        ),
        4: Exercise(
            """
            Which of these, inside a coroutine, stops every other task on the loop for a
            second? (a) `await asyncio.sleep(1)`, (b) `time.sleep(1)`,
            (c) `await asyncio.to_thread(time.sleep, 1)`. Answer `"a"`, `"b"` or `"c"`.""",
            ["Which one never awaits?"],
            _check_blocks_loop,
            answer="""
            check(4, "b")""",
            why="""time.sleep holds the loop's own thread for the whole second and never gives
            control back; asyncio.sleep awaits a timer, and to_thread awaits a thread that
            sleeps, so in both the loop runs the other tasks meanwhile.""",
        ),
        5: Exercise(
            """
            Lesson 07's `select_echo` serves one client that sends 1 KiB messages, one at a
            time. How many system calls does it make per round trip? Predict, then measure
            with `system_calls_per_round_trip` and answer with the total.""",
            [
                "Like the selectors server, select_echo sends right after its recv, and asks "
                "select() about writing only when the kernel's buffer was full.",
                "Measure: system_calls_per_round_trip({'select': ('select_echo', {})}), then "
                "add up the counts of that one server.",
            ],
            _check_select_calls,
            answer="""
            from labkit.server_cpu import system_calls_per_round_trip

            calls = system_calls_per_round_trip({"select": ("select_echo", {})})
            check(5, round(sum(calls["select"].values())))""",
            why="""Each message wakes select() once, then one recv reads it and one send writes
            it back, which almost always fits in the kernel's buffer: 3 system calls, the same
            as the selectors server that sends at once, and half of the 6 of one that asks
            first.""",
        ),
    }
