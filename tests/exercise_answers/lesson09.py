"""Lesson 09 (asyncio): answers in other styles, and wrong ones."""

import asyncio
import contextlib
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx

from labkit.exercises.lesson09 import first_answer, lines, lookup_all


# -- exercise 1: the first answer, the others cancelled -----------------------------------------
async def first_answer_as_completed(urls):
    """Also right: as_completed over tasks we hold, then cancel them all."""
    async with httpx.AsyncClient(trust_env=False) as client:
        tasks = [asyncio.create_task(client.get(url)) for url in urls]
        for next_done in asyncio.as_completed(tasks):
            response = await next_done
            break
        for task in tasks:
            task.cancel()  # a done task ignores it
    return response.content


class Found(Exception):
    """Raised by the first request to answer: the TaskGroup then cancels the others."""


async def first_answer_taskgroup(urls):
    """Also right: the first answer raises, and the TaskGroup cancels the rest."""

    async def get(client, url):
        raise Found((await client.get(url)).content)

    try:
        async with httpx.AsyncClient(trust_env=False) as client, asyncio.TaskGroup() as group:
            for url in urls:
                group.create_task(get(client, url))
    except* Found as found:
        first = found.exceptions[0].args[0]
    return first


async def first_answer_anyio(urls):
    """Also right: an anyio task group, its cancel scope cancelled by the first answer."""
    bodies = []
    async with httpx.AsyncClient(trust_env=False) as client, anyio.create_task_group() as tg:

        async def get(url):
            bodies.append((await client.get(url)).content)
            tg.cancel_scope.cancel()

        for url in urls:
            tg.start_soon(get, url)
    return bodies[0]


async def first_answer_not_cancelled(urls):  # wrong: as_completed leaves the others running
    client = httpx.AsyncClient(trust_env=False)
    for next_done in asyncio.as_completed([client.get(url) for url in urls]):
        return (await next_done).content


async def first_answer_wait_only(urls):  # wrong: wait() cancels nothing by itself
    client = httpx.AsyncClient(trust_env=False)
    tasks = [asyncio.create_task(client.get(url)) for url in urls]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    return done.pop().result().content


async def first_answer_after_all(urls):  # wrong: waits for every request
    async with httpx.AsyncClient(trust_env=False) as client:
        responses = await asyncio.gather(*(client.get(url) for url in urls))
    return min(responses, key=lambda r: r.elapsed).content


async def first_answer_first_url(urls):  # wrong: the first URL, not the first answer
    async with httpx.AsyncClient(trust_env=False) as client:
        return (await client.get(urls[0])).content


async def first_answer_response(urls):  # wrong: the response, not its body
    async with httpx.AsyncClient(trust_env=False) as client, asyncio.TaskGroup() as group:
        tasks = [group.create_task(client.get(url)) for url in urls]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    return done.pop().result()


# -- exercise 2: a blocking function, off the loop ----------------------------------------------
async def lookup_all_executor(names, lookup):
    """Also right: run_in_executor with the loop's default pool (None)."""
    loop = asyncio.get_running_loop()
    return list(await asyncio.gather(*(loop.run_in_executor(None, lookup, n) for n in names)))


async def lookup_all_own_pool(names, lookup):
    """Also right: a pool of our own, one thread per name, in a TaskGroup."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:

        async def one(name):
            return await loop.run_in_executor(pool, lookup, name)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(name)) for name in names]
    return [task.result() for task in tasks]


async def lookup_all_threads(names, lookup):
    """Also right: plain threads, each handing its result to the loop threadsafe."""
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in names]

    def work(name, future):
        loop.call_soon_threadsafe(future.set_result, lookup(name))

    for name, future in zip(names, futures):
        threading.Thread(target=work, args=(name, future)).start()
    return [await future for future in futures]


async def lookup_all_blocking(names, lookup):  # wrong: each call holds the loop
    return [lookup(name) for name in names]


async def lookup_all_one_by_one(names, lookup):  # wrong: off the loop, but one at a time
    return [await asyncio.to_thread(lookup, name) for name in names]


async def lookup_all_two_threads(names, lookup):  # wrong: only two at a time
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return await asyncio.gather(*(loop.run_in_executor(pool, lookup, n) for n in names))


async def lookup_all_in_a_task(names, lookup):  # wrong: a task still runs in the loop's thread
    async def one(name):
        return lookup(name)

    return await asyncio.gather(*(one(name) for name in names))


# -- exercise 3: lines from a stream of pieces --------------------------------------------------
async def lines_try_finally(chunks):
    """Also right: a bytearray buffer, find() for each newline, a finally that closes."""
    buffer = bytearray()
    try:
        async for piece in chunks:
            buffer += piece
            while (end := buffer.find(b"\n")) >= 0:
                yield bytes(buffer[: end + 1])
                del buffer[: end + 1]
    finally:
        await chunks.aclose()
    if buffer:
        yield bytes(buffer)


class Lines:
    """Also right: an async iterator class of its own, with an aclose() that closes chunks."""

    def __init__(self, chunks):
        self.chunks, self.buffer, self.ready, self.ended = chunks, b"", [], False

    def __aiter__(self):
        return self

    async def __anext__(self):
        while not self.ready and not self.ended:
            try:
                self.buffer += await self.chunks.__anext__()
            except StopAsyncIteration:
                self.ended = True
                self.ready, self.buffer = [self.buffer] if self.buffer else [], b""
                break
            *complete, self.buffer = self.buffer.split(b"\n")
            self.ready = [line + b"\n" for line in complete]
        if not self.ready:
            raise StopAsyncIteration
        return self.ready.pop(0)

    async def aclose(self):
        await self.chunks.aclose()


async def lines_not_closing(chunks):  # wrong: aclose() leaves chunks open
    buffer = b""
    async for piece in chunks:
        buffer += piece
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if buffer:
        yield buffer


async def lines_per_piece(chunks):  # wrong: a line cut across two pieces comes out in two
    async with contextlib.aclosing(chunks):
        async for piece in chunks:
            for line in piece.splitlines(keepends=True):
                yield line


async def lines_no_last(chunks):  # wrong: the last line, with no newline, is lost
    buffer = b""
    async with contextlib.aclosing(chunks):
        async for piece in chunks:
            buffer += piece
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield line + b"\n"


async def lines_read_everything_first(chunks):  # wrong: no line until the whole text is in
    async with contextlib.aclosing(chunks):
        text = b"".join([piece async for piece in chunks])
    for line in text.splitlines(keepends=True):
        yield line


async def lines_as_a_list(chunks):  # wrong: a coroutine that returns a list
    text = b"".join([piece async for piece in chunks])
    return text.splitlines(keepends=True)


CORRECT = {
    1: {
        "as_completed, then cancel": lambda: first_answer_as_completed,
        "a TaskGroup stopped by an exception": lambda: first_answer_taskgroup,
        "an anyio cancel scope": lambda: first_answer_anyio,
        "a lambda": lambda: lambda urls: first_answer(urls),
    },
    2: {
        "run_in_executor": lambda: lookup_all_executor,
        "a pool of our own, a TaskGroup": lambda: lookup_all_own_pool,
        "threads and call_soon_threadsafe": lambda: lookup_all_threads,
        "a partial": lambda: functools.partial(lookup_all),
    },
    3: {
        "a bytearray, try/finally": lambda: lines_try_finally,
        "an async iterator class": lambda: Lines,
        "a lambda": lambda: lambda chunks: lines(chunks),
    },
}

WRONG = {
    1: {
        "as_completed, nothing cancelled": lambda: first_answer_not_cancelled,
        "asyncio.wait, nothing cancelled": lambda: first_answer_wait_only,
        "every request awaited": lambda: first_answer_after_all,
        "the first URL's body": lambda: first_answer_first_url,
        "a response, not a body": lambda: first_answer_response,
    },
    2: {
        "called in the loop's thread": lambda: lookup_all_blocking,
        "threads one after another": lambda: lookup_all_one_by_one,
        "two threads for four lookups": lambda: lookup_all_two_threads,
        "tasks that still block": lambda: lookup_all_in_a_task,
    },
    3: {
        "chunks left open": lambda: lines_not_closing,
        "lines cut at each piece": lambda: lines_per_piece,
        "the last line lost": lambda: lines_no_last,
        "everything read first": lambda: lines_read_everything_first,
        "a list, not a generator": lambda: lines_as_a_list,
    },
}
