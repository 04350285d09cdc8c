"""Right answers to every exercise, written from the questions alone, as a student would.

They were written from each question's text, without the checker's code or the other answers
in ``tests/exercise_answers/``: a checker that rejects one of them rejects a student who was
right. ``ANSWERS[(lesson, exercise)]`` maps a style's name to a function that returns the
answer. ``tests/test_exercises.py`` runs every one of them through the real check.
"""

import asyncio
import bisect
import contextlib
import functools
import heapq
import math
import os
import pathlib
import re
import select
import statistics
import tempfile
from fractions import Fraction

import gevent
import httpx

from labkit import compute


# -- lesson 01 ----------------------------------------------------------------------------------
def running(combine):
    """A coroutine that folds every value sent with ``combine``."""
    result = None
    while True:
        sent = yield result
        result = sent if result is None else combine(result, sent)


def running_max_heap():
    values = []
    while True:
        values.append((yield (heapq.nlargest(1, values)[0] if values else None)))


# -- lesson 03 ----------------------------------------------------------------------------------
def nap_on_the_hub(seconds):
    """Wait on a timer of the hub's own loop: the hub runs the others meanwhile."""
    hub = gevent.get_hub()
    hub.wait(hub.loop.timer(seconds))


class Napper:
    def __call__(self, seconds):
        gevent.sleep(seconds)


# -- lesson 05 ----------------------------------------------------------------------------------
class CallLater:
    """call_later as an object: a task that sleeps on the loop, then calls back."""

    def __call__(self, loop, delay, callback):
        return loop.create_task(self.wait_then_call(loop, delay, callback))

    async def wait_then_call(self, loop, delay, callback):
        await loop.sleep(delay)
        callback()


async def _sleep_then(loop, delay, callback):
    await loop.sleep(delay)
    callback()


# -- lesson 06 ----------------------------------------------------------------------------------
def handle_iter(conn):
    try:
        for data in iter(functools.partial(conn.recv, 4096), b""):
            conn.sendall(data)
    finally:
        conn.close()


def handle_with_views(conn):
    buffer = bytearray(8192)
    view = memoryview(buffer)
    while (n := conn.recv_into(buffer)) > 0:
        sent = 0
        while sent < n:
            sent += conn.send(view[sent:n])
    conn.close()


# -- lesson 07 ----------------------------------------------------------------------------------
def send_some_copy(sock, buffer):
    try:
        n = sock.send(bytes(buffer))
    except BlockingIOError:
        n = 0
    buffer[:n] = b""
    return n


def send_some_flags(sock, buffer, flags=0):
    try:
        n = sock.send(buffer, flags)
    except (BlockingIOError, InterruptedError):
        return 0
    del buffer[0:n]
    return n


# -- lesson 08 ----------------------------------------------------------------------------------
HEADER = re.compile(rb"OK (\d+) [0-9a-fA-F]*\n")


def split_replies_regex(stream):
    bodies, at = [], 0
    while at < len(stream):
        header = HEADER.match(stream, at)
        start = header.end()
        size = int(header[1])
        bodies.append(stream[start : start + size])
        at = start + size
    return bodies


def split_replies_recursive(stream):
    if not stream:
        return []
    line, rest = stream.split(b"\n", 1)
    n = int(line.split(b" ")[1])
    return [rest[:n], *split_replies_recursive(rest[n:])]


class RepliesCoroutine:
    """Drives a generator that asks for bytes: 'give me a line', 'give me n bytes'."""

    def __init__(self):
        self.buffer = b""
        self.done = []
        self.parser = self.parse()
        self.wanted = next(self.parser)

    def parse(self):
        while True:
            line = yield ("line", None)
            size = int(line.split()[1])
            body = yield ("bytes", size)
            self.done.append(body)

    def feed(self, chunk):
        self.buffer += chunk
        while True:
            kind, size = self.wanted
            if kind == "line":
                if b"\n" not in self.buffer:
                    break
                line, self.buffer = self.buffer.split(b"\n", 1)
                self.wanted = self.parser.send(line)
            else:
                if len(self.buffer) < size:
                    break
                body, self.buffer = self.buffer[:size], self.buffer[size:]
                self.wanted = self.parser.send(body)
        done, self.done = self.done, []
        return done


class RepliesBytearray:
    def __init__(self):
        self.pending = bytearray()
        self.need = None

    def feed(self, chunk):
        self.pending.extend(chunk)
        out = []
        while True:
            if self.need is None:
                newline = self.pending.find(b"\n")
                if newline == -1:
                    break
                self.need = int(bytes(self.pending[:newline]).split()[1])
                del self.pending[: newline + 1]
            if len(self.pending) < self.need:
                break
            out.append(bytes(self.pending[: self.need]))
            del self.pending[: self.need]
            self.need = None
        return out


# -- lesson 09 ----------------------------------------------------------------------------------
async def race_first(urls):
    async with httpx.AsyncClient() as client:
        pending = {asyncio.ensure_future(client.get(u)) for u in urls}
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        winner = next(iter(done))
        for p in pending:
            p.cancel()
        if pending:
            await asyncio.wait(pending)
        return winner.result().content


async def race_first_event(urls):
    first = {}
    ready = asyncio.Event()
    async with httpx.AsyncClient() as client:

        async def get(u):
            r = await client.get(u)
            first.setdefault("body", r.content)
            ready.set()

        tasks = [asyncio.create_task(get(u)) for u in urls]
        await ready.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return first["body"]


async def resolve_all(names, lookup):
    loop = asyncio.get_running_loop()
    futures = [loop.run_in_executor(None, functools.partial(lookup, n)) for n in names]
    return [await f for f in futures]


async def resolve_all_taskgroup(names, lookup):
    async with asyncio.TaskGroup() as tg:
        jobs = [tg.create_task(asyncio.to_thread(lookup, n)) for n in names]
    return [j.result() for j in jobs]


async def split_lines(chunks):
    pending = b""
    try:
        async for chunk in chunks:
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                yield line + b"\n"
        if pending:
            yield pending
    finally:
        await chunks.aclose()


async def split_lines_regex(chunks):
    rest = b""
    async with contextlib.aclosing(chunks) as source:
        async for chunk in source:
            rest += chunk
            for m in re.finditer(rb"[^\n]*\n", rest):
                yield m.group()
            rest = rest[rest.rfind(b"\n") + 1 :]
    if rest:
        yield rest


# -- lesson 13 (the appendix: what an echo costs) -------------------------------------------
def _system_calls_of_select_echo():
    from labkit.server_cpu import system_calls_per_round_trip

    calls = system_calls_per_round_trip({"s": ("select_echo", {})})
    return sum(calls["s"].values())


# -- lesson 10 ----------------------------------------------------------------------------------
def fairness_numpy(counts):
    import numpy

    c = numpy.asarray(counts, dtype=float)
    return c.sum() ** 2 / (len(c) * (c**2).sum())


def fairness_fraction(counts):
    return Fraction(sum(counts) ** 2, len(counts) * sum(x * x for x in counts))


async def reply_partial(line, pool):
    loop = asyncio.get_running_loop()
    parts = line.split()
    if parts and parts[0] == b"WORK":
        ms = int(parts[1])
        await loop.run_in_executor(pool, functools.partial(compute.burn, ms))
        return b"DONE " + str(ms).encode() + b" " + str(os.getpid()).encode() + b"\n"
    return compute.answer(line, os.getpid())


async def reply_lambda(line, pool):
    if line.startswith(b"WORK"):
        ms = int(line[4:])
        await asyncio.get_running_loop().run_in_executor(pool, lambda: compute.burn(ms))
        return b"DONE %d %d\n" % (ms, os.getpid())
    return compute.answer(line, os.getpid())


class Replier:
    """reply as an object with an async __call__ and a bound method for the work."""

    def work(self, ms):
        compute.burn(ms)

    async def __call__(self, line, pool):
        head, _, rest = line.strip().partition(b" ")
        if head != b"WORK":
            return compute.answer(line, os.getpid())
        await asyncio.wrap_future(pool.submit(self.work, int(rest)))
        return f"DONE {int(rest)} {os.getpid()}\n".encode()


# -- lesson 11 ----------------------------------------------------------------------------------
def percentile_ceil(histogram, fraction):
    times = sorted(t for t, n in histogram.items() for _ in range(n))
    rank = math.ceil(fraction * len(times))
    return times[max(rank, 1) - 1]


def percentile_bisect(histogram, fraction):
    keys = sorted(histogram)
    running, total = [], 0
    for k in keys:
        total += histogram[k]
        running.append(total)
    return keys[bisect.bisect_left(running, fraction * total)]


def percentile_quantiles(histogram, fraction):
    """statistics.quantiles' 'inclusive' method: linear interpolation, numpy's default."""
    data = sorted(t for t, n in histogram.items() for _ in range(n))
    if len(data) == 1:
        return data[0]
    cuts = statistics.quantiles(data, n=100, method="inclusive")
    percent = round(fraction * 100)
    return data[-1] if percent >= 100 else cuts[percent - 1]


LOCUSTFILES = tempfile.TemporaryDirectory(prefix="independent-locustfiles-")


def locustfile_path(name, source):
    path = pathlib.Path(LOCUSTFILES.name) / name
    path.write_text(source)
    return path


HTTP_USER = """
import itertools

from locust import HttpUser, constant, task

counter = itertools.count()


class Visitor(HttpUser):
    wait_time = constant(0.5)

    @task
    def get_page(self):
        self.client.get(f"/pages/page-48k.html?delay=0.1&id={next(counter)}")
"""

FAST_USER_UUID = """
import uuid

from locust import FastHttpUser, between, task


class PageUser(FastHttpUser):
    wait_time = between(0.5, 0.5)

    @task
    def fetch(self):
        self.client.get("/pages/page-48k.html?delay=0.1&id=" + str(uuid.uuid4()),
                        name="/pages/page-48k.html")
"""

PLAIN_USER = """
import time
import urllib.request
import uuid

from locust import User, constant, task


class RawUser(User):
    wait_time = constant(0.5)

    @task
    def page(self):
        url = f"{self.host}/pages/page-48k.html?delay=0.1&id={uuid.uuid4().hex}"
        start, error, size = time.perf_counter(), None, 0
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                size = len(reply.read())
        except OSError as exc:
            error = exc
        self.environment.events.request.fire(
            request_type="GET", name="page", response_time=(time.perf_counter() - start) * 1000,
            response_length=size, exception=error, context={},
        )
"""


def _overlap_now():
    from labkit.exercises.lesson04 import run_fetch

    return run_fetch(50, 0.2).overlap


ANSWERS = {
    (1, 1): {
        "a partial of a general fold": lambda: functools.partial(running, max),
        "the largest by heapq": lambda: running_max_heap,
        "a lambda": lambda: lambda: running(lambda a, b: (a, b)[b > a]),
    },
    (1, 2): {
        "arrows": lambda: "A0 → B0 → C0 → A1 → C1 → A2",
        "a sentence": lambda: "The order is A0, B0, C0, A1, C1 and finally A2.",
        "a lower-case list": lambda: ["a0", "b0", "c0", "a1", "c1", "a2"],
    },
    (1, 3): {
        "strings with units": lambda: ("0.9 s", "0.3 s"),
        "milliseconds, labelled": lambda: "(a) 900 ms, (b) 300 ms",
        "worked out": lambda: "a = 3 * 0.3 = 0.9, b = 0.3",
        "a dict": lambda: {"a": 0.9, "b": 0.3},
    },
    (2, 1): {
        "then": lambda: "L1 then R1 then L2",
        "a list": lambda: ["L1", "R1", "L2"],
        "arrows": lambda: "L1 -> R1 -> L2",
    },
    (2, 2): {
        "a dict": lambda: {"a": 20, "b": 40},
        "floats": lambda: (20.0, 40.0),
        "and": lambda: "20 and 40",
    },
    (2, 3): {
        "the answer is": lambda: "The answer is b",
        "a letter in brackets": lambda: "(b)",
        "a letter and the reason": lambda: "B. recv blocks the only thread",
    },
    (3, 1): {
        "commas": lambda: "toast, eggs, tea",
        "a list": lambda: ["toast", "eggs", "tea"],
        "a sentence": lambda: "toast first, then eggs, then tea",
    },
    (3, 2): {
        "no space": lambda: "150ms",
        "in words": lambda: "about 150 milliseconds",
        "worked out": lambda: "3 rounds of 50 ms = 150 ms",
        "seconds, with the unit": lambda: "0.15 s",
    },
    (3, 3): {
        "a timer on the hub": lambda: nap_on_the_hub,
        "a callable object": lambda: Napper(),
        "a lambda": lambda: lambda seconds: gevent.sleep(seconds),
    },
    (4, 1): {
        "with the unit": lambda: "3 s",
        "worked out": lambda: "30 × 0.1 = 3 seconds",
        "milliseconds": lambda: "3000 ms",
    },
    (4, 2): {
        "with the unit": lambda: "0.1 s",
        "milliseconds": lambda: "about 100 ms",
        "a bit more": lambda: "a bit more than 0.1 s, say 0.12",
    },
    (4, 3): {
        "from the package": lambda: "gevent.monkey.patch_all()",
        "two statements": lambda: "from gevent import monkey; monkey.patch_all()  # first!",
        "two lines": lambda: "from gevent import monkey\nmonkey.patch_all()",
    },
    (4, 4): {
        "measured, rounded": lambda: round(_overlap_now()),
        "measured, in a sentence": lambda: f"about {_overlap_now():.1f}x",
        "measured, a string": lambda: f"{_overlap_now():.2f}",
    },
    (5, 1): {
        "a callable object": lambda: CallLater(),
        "a lambda": lambda: lambda loop, d, cb: loop.create_task(_sleep_then(loop, d, cb)),
        "a partial": lambda: functools.partial(CallLater().__call__),
    },
    (5, 2): {
        "with the unit": lambda: "about 0.5 s",
        "milliseconds": lambda: "500 ms",
        "worked out": lambda: "3 × 0.05 + 0.2 + 3 × 0.05 = 0.5 s",
    },
    (5, 3): {
        "a letter": lambda: "b",
        "a letter and words": lambda: "(b) a chat server",
        "a sentence": lambda: "B: the chat server, its connections mostly wait",
    },
    (6, 1): {
        "iter with a sentinel": lambda: handle_iter,
        "recv_into and memoryviews": lambda: handle_with_views,
        "a lambda": lambda: lambda conn: handle_iter(conn),
    },
    (6, 2): {
        "with the unit": lambda: "1 s",
        "worked out": lambda: "about 1 second (10 rounds of 0.1 s)",
        "milliseconds": lambda: "1000 ms",
    },
    (6, 3): {
        "an empty slice": lambda: b"abc"[3:],
        "a sentence": lambda: "an empty bytes object (b'')",
        "the literal": lambda: b"",
    },
    (7, 1): {
        "upper case": lambda: "EPOLL",
        "a sentence": lambda: "epoll: it stays flat",
        "the object": lambda: select.epoll,
    },
    (7, 2): {
        "a copy of the buffer": lambda: send_some_copy,
        "a partial": lambda: functools.partial(send_some_flags, flags=0),
        "a lambda": lambda: lambda sock, buf: send_some_copy(sock, buf),
    },
    (7, 3): {
        "the string": lambda: "False",
        "a sentence": lambda: "no, there is no new edge",
        "a negation": lambda: "It does not: nothing new arrived",
    },
    (7, 4): {
        "a capital": lambda: "A",
        "the answer is": lambda: "the answer is a",
        "a letter and a reason": lambda: "a) select takes 512 sockets on Windows",
    },
    (8, 1): {
        "an int": lambda: 949,
        "with a unit": lambda: "949 bytes",
        "worked out": lambda: "1024 - 75 = 949",
    },
    (8, 2): {
        "a regular expression": lambda: split_replies_regex,
        "recursion": lambda: split_replies_recursive,
        "a partial": lambda: functools.partial(split_replies_regex),
    },
    (8, 3): {
        "the name in a sentence": lambda: "It refuses ../secret, a path",
        "a letter": lambda: "b",
        "the answer is": lambda: "The answer is (b)",
    },
    (8, 4): {
        "with separators": lambda: "10,001",
        "worked out": lambda: "10000 + 1 listening socket = 10001",
        "a rough figure": lambda: "10,005 or so",
    },
    (8, 5): {
        "a generator driven by send": lambda: RepliesCoroutine,
        "a bytearray buffer": lambda: RepliesBytearray,
        "a factory": lambda: lambda: RepliesBytearray(),
    },
    (9, 1): {
        "asyncio.wait then cancel": lambda: race_first,
        "an Event set by the first": lambda: race_first_event,
        "a lambda": lambda: lambda urls: race_first(urls),
    },
    (9, 2): {
        "run_in_executor, awaited in order": lambda: resolve_all,
        "to_thread in a TaskGroup": lambda: resolve_all_taskgroup,
        "a partial": lambda: functools.partial(resolve_all),
    },
    (9, 3): {
        "split once per newline, finally aclose": lambda: split_lines,
        "a regular expression, aclosing": lambda: split_lines_regex,
        "a lambda": lambda: lambda chunks: split_lines(chunks),
    },
    (10, 1): {
        "a capital": lambda: "C",
        "a letter and words": lambda: "(c) a process pool",
        "a sentence": lambda: "c, a process pool: it has its own GIL",
    },
    (10, 2): {
        "numpy": lambda: fairness_numpy,
        "exact fractions": lambda: fairness_fraction,
        "a lambda": lambda: lambda c: sum(c) ** 2 / (len(c) * sum(x**2 for x in c)),
    },
    (10, 3): {
        "with the unit": lambda: "500 ms",
        "in seconds": lambda: "0.5 s",
        "a sentence": lambda: "about half a second: 500 ms",
    },
    (10, 4): {
        "a partial": lambda: reply_partial,
        "a lambda": lambda: reply_lambda,
        "an object and a bound method": lambda: Replier(),
    },
    (11, 1): {
        "a float": lambda: 41.67,
        "worked out": lambda: "50 / 1.2 ≈ 41.7",
        "with a unit": lambda: "about 42 requests/s",
    },
    (11, 2): {
        "with a unit": lambda: "25 users",
        "worked out": lambda: "100/4 = 25",
        "an expression": lambda: "100 / 4",
    },
    (11, 3): {
        "nearest rank by ceil": lambda: percentile_ceil,
        "bisect on running counts": lambda: percentile_bisect,
        "statistics.quantiles": lambda: percentile_quantiles,
    },
    (11, 4): {
        "a letter": lambda: "b",
        "a letter in brackets": lambda: "(B)",
        "the call": lambda: "self.environment.events.request.fire(...)",
    },
    (11, 5): {
        "HttpUser and a counter, a Path": lambda: locustfile_path("http_user.py", HTTP_USER),
        "FastHttpUser and uuid, a str": lambda: str(locustfile_path("fast.py", FAST_USER_UUID)),
        "a plain User firing the request event": lambda: locustfile_path("raw.py", PLAIN_USER),
    },
    (11, 6): {
        "a tuple": lambda: (0.09, 110),
        "a sentence": lambda: "10% of requests failed, p50 = 100 ms",
        "a list of strings": lambda: ["0.11", "110ms"],
    },
    (13, 1): {
        "measured": lambda: _system_calls_of_select_echo(),
        "in words": lambda: "3 system calls",
        "worked out": lambda: "select + recv + send = 3",
    },
}
