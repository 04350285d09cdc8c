"""Lesson 10 (CPU work and processes): answers in other styles, and wrong ones."""

import asyncio
import functools
import os
from typing import Any

from labkit import compute


def fairness_by_mean(counts: list[int]) -> float:
    """Also right: the squared mean over the mean of the squares."""
    n = len(counts)
    mean = sum(counts) / n
    return mean**2 / (sum(c**2 for c in counts) / n)


def fairness_by_statistics(counts: list[int]) -> float:
    """Also right: 1 / (1 + the squared coefficient of variation)."""
    import statistics

    mean = statistics.fmean(counts)
    return 1 / (1 + statistics.pvariance(counts) / mean**2)


async def reply_by_parse(line: bytes, pool: Any) -> bytes:
    """Also right: parse the line, burn in the pool if it asks for WORK, then reply."""
    request = compute.parse(line)
    if request[0] == "WORK":
        await asyncio.get_running_loop().run_in_executor(pool, compute.burn, int(request[1]))
    return compute.reply(request, os.getpid())


async def reply_with_wrap_future(line: bytes, pool: Any) -> bytes:
    """Also right: submit to the pool, and await the wrapped concurrent future."""
    if line.startswith(b"WORK "):
        ms = int(line.split()[1])
        await asyncio.wrap_future(pool.submit(compute.burn, ms))
        return b"DONE %d %d\n" % (ms, os.getpid())
    return compute.answer(line, os.getpid())


async def reply_blocking(line: bytes, pool: Any) -> bytes:  # wrong: burns on the loop
    if line.startswith(b"WORK "):
        ms = int(line.split()[1])
        compute.burn(ms)
        return b"DONE %d %d\n" % (ms, os.getpid())
    return compute.answer(line, os.getpid())


async def reply_all_in_pool(line: bytes, pool: Any) -> bytes:  # wrong: no WORK reply shape
    await asyncio.get_running_loop().run_in_executor(pool, compute.burn, 1)
    return b"DONE\n"


async def reply_with_a_partial(line, pool):
    """Right: run_in_executor with a partial, as the asyncio docs recommend for arguments."""
    if line.split()[:1] == [b"WORK"]:
        ms = int(line.split()[1])
        await asyncio.get_running_loop().run_in_executor(pool, functools.partial(compute.burn, ms))
        return f"DONE {ms} {os.getpid()}\n".encode()
    return compute.answer(line, os.getpid())


async def reply_with_a_lambda(line, pool):
    """Right: run_in_executor with a lambda that calls burn."""
    if line.startswith(b"WORK"):
        ms = int(line.split()[1])
        await asyncio.get_running_loop().run_in_executor(pool, lambda: compute.burn(ms))
        return f"DONE {ms} {os.getpid()}\n".encode()
    return compute.answer(line, os.getpid())


async def reply_in_the_default_executor(line, pool):  # wrong: not in `pool`
    if line.startswith(b"WORK"):
        ms = int(line.split()[1])
        await asyncio.get_running_loop().run_in_executor(None, compute.burn, ms)
        return f"DONE {ms} {os.getpid()}\n".encode()
    return compute.answer(line, os.getpid())


CORRECT = {
    1: {
        "a capital": lambda: "C",
        "a letter and a reason": lambda: "(c) a process pool, another interpreter",
    },
    2: {
        "means": lambda: fairness_by_mean,
        "the coefficient of variation": lambda: fairness_by_statistics,
    },
    3: {
        "a string with the unit": lambda: "about 500 ms",
        "what a run measures": lambda: 520.0,
        "in seconds, with the unit": lambda: "0.5 s",
    },
    4: {
        "parse, then reply": lambda: reply_by_parse,
        "submit and wrap_future": lambda: reply_with_wrap_future,
        "a partial": lambda: reply_with_a_partial,
        "a lambda": lambda: reply_with_a_lambda,
    },
}

WRONG = {
    1: {
        "nothing": lambda: "a",
        "a thread": lambda: "b",
        "b's words": lambda: "gevent's threadpool",
        "a's words": lambda: "nothing",
    },
    2: {
        "min over max": lambda: lambda counts: min(counts) / max(counts),
        "the mean": lambda: lambda counts: sum(counts) / len(counts),
    },
    3: {
        "none": lambda: 1,
        "a little": lambda: 10,
        "ten times": lambda: "5000 ms",
        "a tenth": lambda: "about 50",
    },
    4: {
        "burns on the loop": lambda: reply_blocking,
        "no WORK reply": lambda: reply_all_in_pool,
        "not in the pool given": lambda: reply_in_the_default_executor,
    },
}
