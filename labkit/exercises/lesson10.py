"""Lesson 10's exercises: CPU work and processes. The coding exercise runs the student's coroutine
on a loop of its own in a thread of its own (a notebook cell already runs inside the kernel's
loop), with a pool that records what was handed to it, while a ticker task on the same loop
counts how often the loop got to run it."""

from __future__ import annotations

import asyncio
import inspect
import numbers
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from labkit import compute
from labkit.clients.pages import StillRunning, run_in_new_loop
from labkit.exercises import Exercise, NotYet, chosen_option, readings, worked

RUN_TIMEOUT = 30.0  # seconds the check waits for the student's coroutine


# -- exercise 1: which offload brings the median back ------------------------------------------
_OFFLOADS = {"a": "nothing", "b": "threadpool", "c": "process pool"}


def _check_offload(answer: Any) -> str:
    letter = chosen_option(answer, _OFFLOADS)
    if letter is None:
        raise NotYet('answer "a", "b" or "c" (one of them).')
    if letter == "a":
        raise NotYet("the loop computes the 500 ms itself: every other client waits for it.")
    if letter == "b":
        raise NotYet(
            "the loop is free, but the thread that burns holds the GIL: the loop's thread gets "
            "the interpreter only now and then, so the others still wait."
        )
    return (
        "on this Python (3.11, GIL on) only another process computes beside the loop: it has "
        "its own interpreter and GIL. (A free-threaded build, or 3.14's "
        "InterpreterPoolExecutor, would add other ways.)"
    )


# -- exercise 2: a fairness index --------------------------------------------------------------
def fairness(counts):
    total = sum(counts)
    return total * total / (len(counts) * sum(c * c for c in counts))


def _check_fairness(fn: Callable) -> str:
    cases = [([10, 10], 1.0), ([20, 0], 0.5), ([5, 0, 0, 0], 0.25), ([3, 1], 0.8)]
    rng = random.Random(10)
    for _ in range(20):
        counts = [rng.randint(0, 50) for _ in range(rng.randint(2, 8))]
        counts[rng.randrange(len(counts))] += 1  # never all zero
        cases.append((counts, fairness(counts)))
    for counts, expected in cases:
        got = fn(list(counts))  # any real number: a float, a Fraction, a numpy float
        if not isinstance(got, numbers.Real) or abs(float(got) - expected) > 1e-9:
            raise NotYet(
                f"fairness({counts}) should be {expected:.4g}, you returned {got!r}. "
                "(sum of the counts) squared, over n times the sum of their squares."
            )
    return "1 when every worker served the same, 1/n when one served them all."


# -- exercise 3: the worst wait on one loop ----------------------------------------------------
def _check_worst_wait(answer: Any) -> str:
    values = readings(answer, "ms")  # 500, "about 500 ms", "0.5 s", "500 (all of WORK 500)"
    if not values:
        raise NotYet("answer a number of milliseconds.")
    if not any(300 <= ms <= 700 for ms in values):
        raise NotYet(
            f"{answer} (ms)? A PING that arrives just as the WORK starts waits until the loop "
            "is free again: how long does the loop compute?"
        )
    return "about the 500 ms of the CPU request: a request that arrives then waits all of it."


# -- exercise 4: offload WORK with run_in_executor ---------------------------------------------
async def reply(line, pool):
    words = line.split()
    if len(words) == 2 and words[0] == b"WORK" and words[1].isdigit():
        ms = int(words[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, compute.burn, ms)  # the loop serves others meanwhile
        return f"DONE {ms} {os.getpid()}\n".encode()
    return compute.answer(line, os.getpid())  # PING and errors: quick, right here


class _MeteredPool(ThreadPoolExecutor):
    """A thread pool that measures the CPU time of what runs in it, so the check sees that
    the WORK's burn ran there, however the answer handed it over (a function and its
    arguments, a partial, a lambda; through run_in_executor or submit)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="lesson10-check")
        self.cpu_seconds = 0.0  # added to before each future is done, so read after it

    def submit(self, fn, /, *args, **kwargs):
        def metered():
            start = time.thread_time()  # this thread's CPU time: the burn's, not the wait's
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu_seconds += time.thread_time() - start

        return super().submit(metered)


async def _drive(fn: Callable, pool: _MeteredPool) -> dict[str, Any]:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def answer(line: bytes) -> Any:
        awaitable = fn(line, pool)
        if not inspect.isawaitable(awaitable):
            raise NotYet("write it as a coroutine function: `async def reply(line, pool)`.")
        return await awaitable

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # let it start
    ping = await answer(b"PING abc\n")
    before, cpu_before = ticks, pool.cpu_seconds
    work = await answer(b"WORK 300\n")
    during, pool_cpu = ticks - before, pool.cpu_seconds - cpu_before
    stop.set()
    await ticking
    return {"ping": ping, "work": work, "ticks": during, "pool_cpu": pool_cpu}


def _run_reply(fn: Callable) -> dict[str, Any]:
    with _MeteredPool() as pool:
        try:
            return run_in_new_loop(_drive, fn, pool, timeout=RUN_TIMEOUT)
        except StillRunning:
            raise NotYet(f"it did not finish in {RUN_TIMEOUT:.0f} s.") from None


def _check_reply(fn: Callable) -> str:
    got = _run_reply(fn)
    pid = os.getpid()
    if got["ping"] != f"PONG abc {pid}\n".encode():
        raise NotYet(f"PING abc got {got['ping']!r}: answer it with compute.answer(line, pid).")
    if got["work"] != f"DONE 300 {pid}\n".encode():
        raise NotYet(f"WORK 300 got {got['work']!r}, not b'DONE 300 <pid>\\n'.")
    if not 0.27 <= got["pool_cpu"] <= 0.45:
        raise NotYet(
            f"while WORK 300 ran, the pool computed for {got['pool_cpu'] * 1000:.0f} ms of CPU, "
            "not the 300 of burn(300): loop.run_in_executor(pool, ...) hands burn(ms) to it."
        )
    if got["ticks"] < 5:
        raise NotYet(
            f"while WORK 300 ran, another task on the loop ran only {got['ticks']} times: the "
            "loop waited for the work instead of serving others. Await the executor's future."
        )
    return "the loop awaited the pool's future and ran other tasks while burn(300) ran."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            On the gevent server, one client asks for 500 ms of pure-Python CPU work while
            50 others send PINGs. Which offload brings the others' median latency during the
            WORK back to normal? (a) nothing, (b) gevent's threadpool, (c) a process pool.
            Answer `"a"`, `"b"` or `"c"`.""",
            [
                "The burning thread needs the interpreter lock (GIL) to run; the loop's thread "
                "gets it back only when it asks, after waiting the 5 ms switch interval.",
                "Which of them computes in an interpreter other than the loop's?",
            ],
            _check_offload,
            answer="""
            check(1, "c")""",
            why="""A thread in the same process must hold the same GIL to run Python, so the
            loop's thread gets the interpreter only between the burning thread's turns; a
            process pool computes in another interpreter with its own GIL, on another CPU
            where one is free.""",
        ),
        2: Exercise(
            """
            Write `fairness(counts)`: Jain's fairness index of the requests each worker served,
            (sum of the counts)² / (n × sum of the squares), for n workers. It is 1 when every
            worker served the same, and 1/n when one worker served them all.""",
            [
                "total = sum(counts); the squares: sum(c * c for c in counts)",
                "n is len(counts).",
            ],
            _check_fairness,
            answer=worked(2, fairness),
            why="""The index compares the square of the total with n times the sum of the
            squares: equal counts make them equal (1.0), and one worker with everything makes
            the sum of squares the square of the total, so the index is 1/n.""",
        ),
        3: Exercise(
            """
            On one event loop, 50 clients send PINGs while one client asks for `WORK 500`.
            About how many milliseconds does the unluckiest PING wait for its PONG?""",
            ["While the loop runs burn(500), what else can it run?"],
            _check_worst_wait,
            answer="""
            check(3, 500)""",
            why="""The loop runs one thing at a time and the CPU request never waits, so a PING
            that arrives as the work starts is read only after all 500 ms of it; its PONG
            comes about 500 ms late (more on a busy machine: burn counts CPU time, not wall
            time).""",
        ),
        4: Exercise(
            """
            Write `async def reply(line, pool)`: the reply (bytes) to one line of the compute
            protocol, where `WORK <ms>` runs `burn(ms)` in `pool` with `loop.run_in_executor`
            and replies `DONE <ms> <pid>`, and any other line is answered by
            `compute.answer(line, os.getpid())` (`from labkit import compute`).""",
            [
                "loop = asyncio.get_running_loop(), then "
                "await loop.run_in_executor(pool, compute.burn, ms)",
                "Split the line: words = line.split(); a WORK line is [b'WORK', b'<ms>'].",
                "Everything that is not WORK: return compute.answer(line, os.getpid()).",
            ],
            _check_reply,
            answer=worked(
                4,
                reply,
                imports="""
                import asyncio
                import os

                from labkit import compute""",
            ),
            why="""`run_in_executor` hands burn(ms) to the pool and returns a future that the
            coroutine awaits: the loop goes on serving other clients while the pool computes,
            and resumes this coroutine when the work is done.""",
        ),
    }
