"""Lesson 09's exercises: asyncio. The two coding exercises run the student's coroutine function
against a local latency_http, on a loop of their own in a thread of their own (a notebook cell
already runs inside the kernel's loop), and read the server's access log to see how many
requests it served at once."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from labkit.claims import DATA
from labkit.clients.pages import StillRunning, run_in_new_loop
from labkit.exercises import Exercise, NotYet, chosen_option, close_to, worked

PAGES = DATA / "pages"
PAGE = "page-48k.html"
RUN_TIMEOUT = 60.0  # seconds a student's coroutine may take before the check gives up


# -- running the student's coroutine function, and what the server saw -------------------------
def run_coroutine(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``asyncio.run(fn(*args))`` on a new loop in a new thread: (its result, seconds taken).
    Its exception is raised here; a run over RUN_TIMEOUT seconds is a NotYet."""
    if not inspect.iscoroutinefunction(fn):
        raise NotYet("write it as a coroutine function: `async def ...`, so it can `await`.")
    started = time.perf_counter()
    try:
        result = run_in_new_loop(fn, *args, timeout=RUN_TIMEOUT)
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


def _page_bytes() -> bytes:
    return (PAGES / PAGE).read_bytes()


# -- exercise 1: gather with a concurrency limit -----------------------------------------------
async def fetch_all(urls, limit):
    semaphore = asyncio.Semaphore(limit)  # at most `limit` holders at once

    async def fetch(client, url):
        async with semaphore:  # wait here while `limit` requests are in flight
            response = await client.get(url)
            return response.content

    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(fetch(client, url) for url in urls))  # in order


async def _fetch_all_workers(urls, limit):
    """Also right: `limit` workers take URLs from a queue; results go in their slots."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in enumerate(urls):
        queue.put_nowait(item)
    bodies: list[bytes] = [b""] * len(urls)

    async def worker(client):
        while not queue.empty():
            i, url = queue.get_nowait()
            bodies[i] = (await client.get(url)).content

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(limit)))
    return bodies


async def _fetch_all_pool_limit(urls, limit):
    """Also right: let httpx's connection pool be the limit (requests wait for a connection)."""
    limits = httpx.Limits(max_connections=limit)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        replies = await asyncio.gather(*(client.get(url) for url in urls))
    return [r.content for r in replies]


async def _fetch_all_batches(urls, limit):
    """Also right (if slower): gather `limit` at a time, one batch after another."""
    bodies = []
    async with httpx.AsyncClient(timeout=30) as client:
        for at in range(0, len(urls), limit):
            batch = await asyncio.gather(*(client.get(u) for u in urls[at : at + limit]))
            bodies += [r.content for r in batch]
    return bodies


async def _fetch_all_unlimited(urls, limit):  # wrong: the limit is ignored
    async with httpx.AsyncClient(timeout=30) as client:
        return [r.content for r in await asyncio.gather(*(client.get(u) for u in urls))]


async def _fetch_all_sequential(urls, limit):  # wrong: one at a time
    async with httpx.AsyncClient(timeout=30) as client:
        return [(await client.get(u)).content for u in urls]


async def _fetch_all_semaphore_misplaced(urls, limit):  # wrong: held while *creating* tasks
    semaphore = asyncio.Semaphore(limit)
    async with httpx.AsyncClient(timeout=30) as client:
        async with semaphore:
            tasks = [asyncio.create_task(client.get(u)) for u in urls]
        return [r.content for r in await asyncio.gather(*tasks)]


def _check_fetch_all(fn: Callable) -> str:
    page = _page_bytes()
    with slow_server(delay=0.15) as base:
        for n, limit in ((10, 3), (9, 5)):
            urls = [f"{base}/pages/{PAGE}?id={i}&run={limit}" for i in range(n)]
            urllib.request.urlopen(f"{base}/_log?clear=1", timeout=10).close()
            bodies, _ = run_coroutine(fn, urls, limit)
            if bodies is None or len(list(bodies)) != n:
                raise NotYet(f"for {n} URLs, return the {n} bodies (a list of bytes).")
            if any(b != page for b in bodies):
                raise NotYet("a body is not the page: return each response's .content.")
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
    return "the server never saw more than `limit` requests at once, and saw that many."


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


async def _survivors_from_task_results(urls):
    """Also right: each task returns its body or None; read the finished tasks afterwards."""

    async def fetch(client, url):
        try:
            response = await client.get(url)
            response.raise_for_status()
            return response.content
        except httpx.HTTPError:  # raise_for_status raises an HTTPError subclass too
            return None

    async with httpx.AsyncClient(timeout=30) as client:
        async with asyncio.TaskGroup() as group:
            tasks = {url: group.create_task(fetch(client, url)) for url in urls}
    return {url: t.result() for url, t in tasks.items() if t.result() is not None}


async def _survivors_catch_everything(urls):
    """Also right: catch any Exception in the task (broader than needed, but it survives)."""
    found = {}

    async def one(url):
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(url)
            if response.is_success:
                found[url] = response.content
        except Exception:
            pass

    async with asyncio.TaskGroup() as tg:
        for url in urls:
            tg.create_task(one(url))
    return found


async def _survivors_unprotected(urls):  # wrong: one failure cancels the whole group
    results = {}

    async def fetch(client, url):
        response = await client.get(url)
        response.raise_for_status()
        results[url] = response.content

    async with httpx.AsyncClient(timeout=30) as client:
        async with asyncio.TaskGroup() as group:
            for url in urls:
                group.create_task(fetch(client, url))
    return results


async def _survivors_one_by_one(urls):  # wrong: survives, but one request after another
    results = {}
    async with httpx.AsyncClient(timeout=30) as client:
        async with asyncio.TaskGroup():  # a group with nothing in it
            for url in urls:
                try:
                    response = await client.get(url)
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    results[url] = response.content
    return results


async def _survivors_keep_errors(urls):  # wrong: a 503's body is not a page
    results = {}

    async def fetch(client, url):
        try:
            results[url] = (await client.get(url)).content
        except httpx.HTTPError:
            pass

    async with httpx.AsyncClient(timeout=30) as client:
        async with asyncio.TaskGroup() as group:
            for url in urls:
                group.create_task(fetch(client, url))
    return results


def _gather_instead(urls):  # wrong: not a TaskGroup (and not even a coroutine function)
    return asyncio.gather(*urls, return_exceptions=True)


def _refused_url() -> tuple[socket.socket, str]:
    """A URL on a port of ours that nobody listens on: every connection is refused."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder, f"http://127.0.0.1:{holder.getsockname()[1]}/pages/{PAGE}"


def _check_survivors(fn: Callable) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = "TaskGroup"  # no source to read (built at run time): judge by behaviour
    if "TaskGroup" not in source:
        raise NotYet("the exercise asks for an asyncio.TaskGroup: start every task in one.")
    page, holder, refused = _page_bytes(), *_refused_url()
    with holder, slow_server(delay=0.2) as base:
        good = [f"{base}/pages/{PAGE}?id={i}" for i in range(6)]
        urls = [*good[:3], f"{base}/pages/{PAGE}?id=9&error_rate=1", refused, *good[3:]]
        try:
            got, _ = run_coroutine(fn, urls)
        except BaseExceptionGroup as group:
            raise NotYet(
                f"it raised {type(group).__name__} ({group.exceptions[0]!r}): when a task "
                "fails, the TaskGroup cancels the others and re-raises. Catch the failure "
                "inside each task, so the group never sees it."
            ) from None
        at_once = served_at_once(base)
    if not isinstance(got, dict) or set(got) != set(good):
        kept = sorted(got) if isinstance(got, dict) else got
        raise NotYet(
            f"expected a dict with the 6 URLs answered 200 as keys, got {kept!r:.300}: "
            "leave out the refused request and the one answered 503."
        )
    if any(body != page for body in got.values()):
        raise NotYet("a value is not the page: store each response's .content.")
    if at_once < 6:
        raise NotYet(
            f"the server served at most {at_once} at once: start every request as its own "
            "task in the group, so they all wait together."
        )
    return "the refused and the 503 requests were left out, and the other six all came back."


# -- exercises 3 and 4 ---------------------------------------------------------------------------
def _check_semaphore_time(answer: Any) -> str:
    number = re.search(r"\d+(?:\.\d+)?", str(answer))  # 0.6, "0.6 s", "about 0.6"
    if not number:
        raise NotYet(f"{answer!r}: answer with a number of seconds.")
    seconds = float(number[0])
    if not close_to(seconds, 0.6, 0.15):
        raise NotYet(
            f"{seconds:g} s. Two at a time: how many rounds of 0.2 s do five coroutines need?"
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
    number = re.search(r"\d+(?:\.\d+)?", str(answer))  # 3, "3 calls", 3.004
    if not number:
        raise NotYet(f"{answer!r}: answer with a number of system calls per round trip.")
    calls = float(number[0])
    if close_to(calls, 6.0, 0.3):
        raise NotYet(
            "that is the selectors server that asks first. Does select_echo ask select() "
            "about writing before it sends?"
        )
    if not close_to(calls, 3.0, 0.3):
        raise NotYet(f"{calls:g}. Count what one echo needs: a wait, a read, a write.")
    return "one select(), one recv, one send per round trip: 3, as the selectors server."


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
            also_correct=[
                lambda: _fetch_all_workers,
                lambda: _fetch_all_pool_limit,
                lambda: _fetch_all_batches,
            ],
            wrong=[
                lambda: _fetch_all_unlimited,
                lambda: _fetch_all_sequential,
                lambda: _fetch_all_semaphore_misplaced,
                lambda: lambda urls, limit: [],
            ],
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
            also_correct=[
                lambda: _survivors_from_task_results,
                lambda: _survivors_catch_everything,
            ],
            wrong=[
                lambda: _survivors_unprotected,
                lambda: _survivors_one_by_one,
                lambda: _survivors_keep_errors,
                lambda: _gather_instead,
            ],
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
            also_correct=[lambda: 0.6, lambda: "about 0.62 s"],
            wrong=[lambda: 0.2, lambda: 1.0, lambda: 0.4, lambda: 0.5],
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
            also_correct=[lambda: "B", lambda: "(b) time.sleep(1): it never awaits"],
            wrong=[lambda: "a", lambda: "c", lambda: "await asyncio.sleep(1)"],
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
            also_correct=[lambda: 3, lambda: "3 calls", lambda: 3.004],
            wrong=[lambda: 6, lambda: 2, lambda: 4.5, lambda: "six"],
        ),
    }
