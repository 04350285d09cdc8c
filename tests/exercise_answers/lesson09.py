"""Lesson 09 (asyncio): answers in other styles, and wrong ones."""

import asyncio
import functools

import httpx

from labkit.exercises.lesson09 import fetch_all, fetch_survivors


async def fetch_all_workers(urls, limit):
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


async def fetch_all_pool_limit(urls, limit):
    """Also right: let httpx's connection pool be the limit (requests wait for a connection)."""
    limits = httpx.Limits(max_connections=limit)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        replies = await asyncio.gather(*(client.get(url) for url in urls))
    return [r.content for r in replies]


async def fetch_all_batches(urls, limit):
    """Also right (if slower): gather `limit` at a time, one batch after another."""
    bodies = []
    async with httpx.AsyncClient(timeout=30) as client:
        for at in range(0, len(urls), limit):
            batch = await asyncio.gather(*(client.get(u) for u in urls[at : at + limit]))
            bodies += [r.content for r in batch]
    return bodies


async def fetch_all_unlimited(urls, limit):  # wrong: the limit is ignored
    async with httpx.AsyncClient(timeout=30) as client:
        return [r.content for r in await asyncio.gather(*(client.get(u) for u in urls))]


async def fetch_all_sequential(urls, limit):  # wrong: one at a time
    async with httpx.AsyncClient(timeout=30) as client:
        return [(await client.get(u)).content for u in urls]


async def fetch_all_semaphore_misplaced(urls, limit):  # wrong: held while *creating* tasks
    semaphore = asyncio.Semaphore(limit)
    async with httpx.AsyncClient(timeout=30) as client:
        async with semaphore:
            tasks = [asyncio.create_task(client.get(u)) for u in urls]
        return [r.content for r in await asyncio.gather(*tasks)]


async def survivors_from_task_results(urls):
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


async def survivors_catch_everything(urls):
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


async def survivors_unprotected(urls):  # wrong: one failure cancels the whole group
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


async def survivors_one_by_one(urls):  # wrong: survives, but one request after another
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


async def survivors_keep_errors(urls):  # wrong: a 503's body is not a page
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


def gather_instead(urls):  # wrong: not a TaskGroup (and not even a coroutine function)
    return asyncio.gather(*urls, return_exceptions=True)


async def fetch_all_in_arrival_order(urls, limit):  # wrong: bodies in the order they came
    semaphore, bodies = asyncio.Semaphore(limit), []

    async def fetch(client, url):
        async with semaphore:
            bodies.append((await client.get(url)).content)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(fetch(client, url) for url in urls))
    return bodies


async def _in_a_group(coroutines):
    """A helper of one's own that runs coroutines in one TaskGroup."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(c) for c in coroutines]
    return [t.result() for t in tasks]


async def survivors_through_a_helper(urls):
    """Right: the TaskGroup lives in a helper, not in this function's own source."""

    async def fetch(client, url):
        try:
            response = await client.get(url)
        except httpx.HTTPError:
            return None
        return response.content if response.status_code == 200 else None

    async with httpx.AsyncClient(timeout=30) as client:
        bodies = await _in_a_group([fetch(client, url) for url in urls])
    return {url: body for url, body in zip(urls, bodies) if body is not None}


CORRECT = {
    1: {
        "workers on a queue": lambda: fetch_all_workers,
        "httpx's pool as the limit": lambda: fetch_all_pool_limit,
        "batches": lambda: fetch_all_batches,
        "a partial": lambda: functools.partial(fetch_all),
        "a lambda": lambda: lambda urls, limit: fetch_all(urls, limit),
    },
    2: {
        "tasks that return their body": lambda: survivors_from_task_results,
        "catching every Exception": lambda: survivors_catch_everything,
        "a TaskGroup in a helper": lambda: survivors_through_a_helper,
        "a lambda": lambda: lambda urls: fetch_survivors(urls),
    },
    3: {
        "a number": lambda: 0.6,
        "a string with the unit": lambda: "about 0.62 s",
        "worked out": lambda: "3 rounds × 0.2 = 0.6",
        "milliseconds, with the unit": lambda: "600 ms",
    },
    4: {
        "a capital": lambda: "B",
        "a letter and a reason": lambda: "(b) time.sleep(1): it never awaits",
        "the call": lambda: "time.sleep(1)",
    },
    5: {
        "a whole number": lambda: 3,
        "with a word": lambda: "3 calls",
        "a measured mean": lambda: 3.004,
        "worked out": lambda: "1 select + 1 recv + 1 send = 3",
    },
}

WRONG = {
    1: {
        "the limit ignored": lambda: fetch_all_unlimited,
        "one at a time": lambda: fetch_all_sequential,
        "the semaphore held while creating tasks": lambda: fetch_all_semaphore_misplaced,
        "nothing fetched": lambda: lambda urls, limit: [],
        "bodies in the order they arrived": lambda: fetch_all_in_arrival_order,
    },
    2: {
        "one failure cancels the group": lambda: survivors_unprotected,
        "one request after another": lambda: survivors_one_by_one,
        "a 503's body kept": lambda: survivors_keep_errors,
        "not a TaskGroup, not a coroutine": lambda: gather_instead,
    },
    3: {
        "no limit": lambda: 0.2,
        "one after another": lambda: 1.0,
        "two rounds": lambda: 0.4,
        "two and a half rounds": lambda: 0.5,
    },
    4: {
        "a timer": lambda: "a",
        "a thread": lambda: "c",
        "a's code": lambda: "await asyncio.sleep(1)",
    },
    5: {
        "the server that asks first": lambda: 6,
        "no wait": lambda: 2,
        "between": lambda: 4.5,
        "no number": lambda: "six",
    },
}
