"""Lesson 09's exercises: asyncio. Each checker runs the student's coroutine function (or async
generator) on a loop of its own in a thread of its own (a notebook cell already runs inside the
kernel's loop), on fresh inputs: pages from a local latency_http that answer after delays of
their own; a blocking function that notes which thread called it; pieces of a
text cut at random places. What the student's code left behind (tasks still running, a source
still open) is looked at, not guessed from its source."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from labkit.claims import DATA
from labkit.clients.pages import StillRunning, run_in_new_loop
from labkit.exercises import Exercise, NotYet, worked

PAGES = DATA / "pages"
RUN_TIMEOUT = 60.0  # seconds a student's coroutine may take before the check gives up


# -- running the student's coroutine function, and what the server saw -------------------------
def run_coroutine(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Await ``fn(*args)`` on a new loop in a new thread: (its result, seconds taken). ``fn``
    may be any callable that returns an awaitable (an ``async def`` function, a partial of
    one, a lambda that calls one). Its exception is raised here; a run over RUN_TIMEOUT
    seconds is a NotYet."""
    result, seconds, _ = run_and_look_around(fn, *args)
    return result, seconds


def run_and_look_around(
    fn: Callable[..., Any], *args: Any, grace: float = 0.0
) -> tuple[Any, float, list[str]]:
    """``run_coroutine``, then ``grace`` seconds later on the same loop: the names of the tasks
    the answer left running (a task cancelled but not yet ended has ended by then)."""

    async def call() -> tuple[Any, float, list[str]]:
        started = time.perf_counter()
        awaitable = fn(*args)
        if not inspect.isawaitable(awaitable):
            raise NotYet("write it as a coroutine function: `async def ...`, so it can `await`.")
        result = await awaitable
        seconds = time.perf_counter() - started
        await asyncio.sleep(grace)
        me = asyncio.current_task()
        left = [t.get_name() for t in asyncio.all_tasks() if t is not me and not t.done()]
        return result, seconds, left

    try:
        return run_in_new_loop(call, timeout=RUN_TIMEOUT)
    except StillRunning:
        raise NotYet(f"it did not finish in {RUN_TIMEOUT:.0f} s: does every request end?") from None


@contextmanager
def slow_server(delay: float) -> Iterator[str]:
    """A fresh latency_http answering after ``delay`` seconds; yields its base URL."""
    from labkit.background import serve

    with serve("latency_http", root=PAGES, delay=delay) as srv:
        yield f"http://{srv.host}:{srv.port}"


def _as_bytes(bodies: Any) -> list[bytes] | None:
    """The bodies as a list of bytes (bytearray and memoryview too), or None if they are not."""
    try:
        items = list(bodies)
    except TypeError:
        return None
    if not all(isinstance(b, bytes | bytearray | memoryview) for b in items):
        return None
    return [bytes(b) for b in items]


# -- exercise 1: the first answer, and the others cancelled ------------------------------------
async def first_answer(urls):
    async with httpx.AsyncClient(trust_env=False) as client:
        tasks = [asyncio.create_task(client.get(url)) for url in urls]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()  # asyncio.wait cancels nothing by itself
        await asyncio.gather(*pending, return_exceptions=True)  # let them end
        return done.pop().result().content


# (page, delay) per URL, in the order given: the fast one is never the first URL. An answer
# that waits for every request takes SLOW seconds at least; one that returns with the first
# answer, about 0.1 s: the check draws the line at SLOW * 2 / 3, far from both.
SLOW = 1.5
RACES = [
    [("page-48k.html", SLOW), ("page-56k.html", 0.1), ("page-479k.html", SLOW)],
    [("page-56k.html", SLOW), ("page-479k.html", SLOW), ("page-48k.html", 0.1),
     ("page-56k.html", SLOW)],
]  # fmt: skip


def _check_first_answer(fn: Callable) -> str:
    with slow_server(delay=0.0) as base:
        for n, race in enumerate(RACES):
            urls = [f"{base}/pages/{name}?id={n}{i}&delay={d}" for i, (name, d) in enumerate(race)]
            fastest = min(race, key=lambda page: page[1])[0]
            got, seconds, left = run_and_look_around(fn, urls, grace=0.1)
            body = _as_bytes([got]) if got is not None else None
            if body is None:
                raise NotYet(f"return the body of the first answer (bytes), not {got!r:.100}.")
            if body != [(PAGES / fastest).read_bytes()]:
                raise NotYet(
                    "that is not the body of the request that answered first: return as soon "
                    "as one task is done (asyncio.wait with FIRST_COMPLETED, or as_completed)."
                )
            if left:
                raise NotYet(
                    f"{len(left)} of its tasks were still running after it returned: cancel "
                    "every request that has not answered (task.cancel()) before returning."
                )
            if seconds >= SLOW * 2 / 3:
                raise NotYet(
                    f"it took {seconds:.2f} s, as long as the slowest request: return when the "
                    "first answer arrives, not when all have."
                )
    return "the fastest page came back at once, and no request was left running."


# -- exercise 2: a blocking function, off the loop ----------------------------------------------
async def lookup_all(names, lookup):
    return await asyncio.gather(*(asyncio.to_thread(lookup, name) for name in names))


class BlockingLookup:
    """A blocking lookup that takes 0.2 s and notes which thread called it and how many ran at
    once. Called inside a running loop's own thread, it notes that too."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.running = self.most = self.in_a_loop = 0

    def __call__(self, name: str) -> str:
        try:
            asyncio.get_running_loop()  # raises unless a loop runs in this thread
            in_a_loop = 1
        except RuntimeError:
            in_a_loop = 0
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.in_a_loop += in_a_loop
        time.sleep(self.seconds)  # blocking, as a DNS query or a database call is
        with self.lock:
            self.running -= 1
        return f"the address of {name}"


def _check_lookup_all(fn: Callable) -> str:
    names = random.sample(["db", "cache", "queue", "mail", "search", "auth", "files"], 4)
    lookup = BlockingLookup()
    got, _ = run_coroutine(fn, list(names), lookup)
    try:
        got = list(got)
    except TypeError:
        raise NotYet(f"return a list of what lookup returned, not {got!r:.100}.") from None
    if got != [f"the address of {name}" for name in names]:
        raise NotYet(f"for {names} it returned {got!r:.200}: lookup(name) for each, in order.")
    if lookup.in_a_loop:
        raise NotYet(
            f"lookup ran {lookup.in_a_loop} times in the loop's own thread, holding the loop "
            "for 0.2 s each time: hand each call to a worker thread (asyncio.to_thread)."
        )
    if lookup.most < len(names):
        raise NotYet(
            f"at most {lookup.most} lookups ran at the same time, of {len(names)}: start them "
            "all, then await them together."
        )
    return "every lookup ran in a worker thread, all at once, and the loop was never held."


# -- exercise 3: lines from a stream of pieces --------------------------------------------------
async def lines(chunks):
    buffer = b""
    async with contextlib.aclosing(chunks):  # closed however the consumer stops
        async for piece in chunks:
            buffer += piece
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield line + b"\n"
    if buffer:
        yield buffer


TEXT_LINES = [b"GET /pages/a.html\n", b"Host: 127.0.0.1\n", b"\n", b"a longer line, "
              b"with a comma, and more words\n", b"x\n", b"no newline at the end"]  # fmt: skip


class Source:
    """An async generator of the text's pieces that notes how many it gave and whether it was
    closed (its ``finally`` ran)."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces, self.given, self.closed = pieces, 0, False

    async def generate(self) -> Any:
        try:
            for piece in self.pieces:
                await asyncio.sleep(0)  # a network awaits between pieces
                self.given += 1
                yield piece
        finally:
            self.closed = True


def _cut(text: bytes, rng: random.Random) -> list[bytes]:
    """``text`` in pieces of 1 to 12 bytes, cut anywhere (inside lines and at newlines)."""
    pieces, at = [], 0
    while at < len(text):
        step = rng.randint(1, 12)
        pieces.append(text[at : at + step])
        at += step
    return pieces


async def _read_all(fn: Callable, source: Source) -> tuple[list[Any], int]:
    """Every line, and how many pieces the source had given when the first line came out."""
    stream = fn(source.generate())
    if not hasattr(stream, "__aiter__"):
        if inspect.iscoroutine(stream):
            stream.close()  # never started: closed, so that Python does not warn
        raise NotYet("write an async generator: `async def lines(chunks)` with `yield` in it.")
    got, given_at_first = [], 0
    async for line in stream:
        given_at_first = given_at_first or source.given
        got.append(bytes(line) if isinstance(line, bytes | bytearray) else line)
    return got, given_at_first


async def _stop_early(fn: Callable, source: Source) -> bool:
    """Take two lines, then ``aclose()``: was the source closed by the time it returned?"""
    stream = fn(source.generate())
    await stream.__anext__()
    await stream.__anext__()
    if not hasattr(stream, "aclose"):
        raise NotYet("it has no aclose(): write it as an async generator.")
    await stream.aclose()
    return source.closed


def pieces_holding(pieces: list[bytes], size: int) -> int:
    """How many of the first pieces it takes to hold the first ``size`` bytes."""
    held = 0
    for n, piece in enumerate(pieces, 1):
        held += len(piece)
        if held >= size:
            return n
    return len(pieces)


def _check_lines(fn: Callable) -> str:
    text = b"".join(TEXT_LINES)
    for seed in random.sample(range(10_000), 3):
        pieces = _cut(text, random.Random(seed))
        (got, given_at_first), _ = run_coroutine(_with_source(_read_all, fn), Source(pieces))
        if got != TEXT_LINES:
            raise NotYet(
                f"for the pieces {pieces[:6]!r}... it yielded {got!r:.300}; expected each "
                "line with its b'\\n' (a line may be cut across pieces), and the last one."
            )
        needed = pieces_holding(pieces, len(TEXT_LINES[0]))
        if given_at_first > needed + 1:
            raise NotYet(
                f"the first line came out after {given_at_first} pieces, when {needed} held "
                "it: yield each line as soon as it is complete, not after reading everything."
            )
    source = Source(_cut(text, random.Random()))
    closed, _ = run_coroutine(_with_source(_stop_early, fn), source)
    if not closed:
        raise NotYet(
            "after two lines its consumer called aclose(), and chunks was still open when it "
            "returned: close it too (async with contextlib.aclosing(chunks), or a finally "
            "that awaits chunks.aclose())."
        )
    return "each line came out as soon as it was complete, and aclose() closed chunks too."


def _with_source(check: Callable[..., Any], fn: Callable) -> Callable[[Source], Any]:
    """``check(fn, source)`` as a coroutine function of the source, for ``run_coroutine``."""

    async def run(source: Source) -> Any:
        return await check(fn, source)

    return run


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            Write `async def first_answer(urls)`: request every URL at once with
            `httpx.AsyncClient`, and return the body (bytes) of the first response to arrive.
            Before it returns, cancel the requests still running: none of its tasks may be
            left running.""",
            [
                "asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED) returns "
                "(done, pending) as soon as one task is done.",
                "Neither asyncio.wait nor as_completed cancels anything: call task.cancel() on "
                "each task still pending.",
            ],
            _check_first_answer,
            answer=worked(1, first_answer, imports="import asyncio\n\nimport httpx"),
            why="""asyncio.wait returns as soon as the first request is done; each other one is
            cancelled where it waits and awaited, so that it has ended before the function
            returns: no request outlives the call, as in a TaskGroup.""",
        ),
        2: Exercise(
            """
            `lookup(name)` is a blocking function: it takes 0.2 s, as a DNS query or a
            database call does, and returns a string. Write `async def lookup_all(names,
            lookup)` that returns `[lookup(name) for name in names]`, in that order, with
            every lookup running at the same time and the event loop never held.""",
            [
                "A blocking call inside a coroutine holds the loop: run it in a worker thread, "
                "`await asyncio.to_thread(lookup, name)`.",
                "Awaiting the threads one after another runs them one after another: gather them.",
            ],
            _check_lookup_all,
            answer=worked(2, lookup_all, imports="import asyncio"),
            why="""to_thread runs each lookup in a worker thread of the loop's default pool and
            awaits its end, so the loop's own thread never blocks; gather starts them all before
            awaiting any, and returns the results in the order of names. That pool has
            min(32, os.cpu_count() + 4) threads: more lookups than that wait for a free one.""",
        ),
        3: Exercise(
            """
            `chunks` is an async generator of `bytes`: a text cut into pieces anywhere, even
            inside a line. Write an async generator `async def lines(chunks)` that yields each
            line of the text (bytes ending in `b"\\n"`; the last may lack it) as soon as it is
            complete. If its consumer stops early and calls `aclose()` on it, `chunks` must be
            closed too before `aclose()` returns.""",
            [
                "Keep a buffer: add each piece, split it at b'\\n', yield the complete lines "
                "and keep the rest for the next piece.",
                "`async with contextlib.aclosing(chunks):` around the loop closes chunks however "
                "your generator ends, aclose() included.",
            ],
            _check_lines,
            answer=worked(3, lines, imports="import contextlib"),
            why="""The buffer keeps the unfinished line, so a line cut across pieces is joined
            before it is yielded, and each complete line goes out at once. aclose() raises
            GeneratorExit at the yield, and leaving the aclosing block awaits chunks.aclose()
            before aclose() returns.""",
        ),
    }
