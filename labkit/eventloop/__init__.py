"""An event loop from scratch, in three small runnable steps (lesson 05).

1. ``callbacks``  - sockets registered on a selector with a callback each; the loop calls them.
2. ``generators`` - tasks are generators that ``yield`` the socket they wait on.
3. ``futures``    - a minimal Future and Task, so tasks are ``async def`` coroutines that
                    ``await``; the same loop then serves many echo clients on one thread.

Each fetches pages from a labkit ``latency_http`` server (started for you when run from the
command line) and prints its elapsed time::

    python -m labkit.eventloop.callbacks -n 20
    python -m labkit.eventloop.generators -n 20
    python -m labkit.eventloop.futures -n 20 --clients 200
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from urllib.parse import urlsplit


def http_get_request(url: str) -> tuple[tuple[str, int], bytes]:
    """The address to connect to and the bytes of an HTTP/1.0 GET (the server closes after it)."""
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    request = f"GET {parts.path}{query} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n"
    return (parts.hostname or "localhost", parts.port or 80), request.encode()


def body_of(response: bytes) -> bytes:
    """The body of a whole HTTP response (everything after the blank line)."""
    return response.partition(b"\r\n\r\n")[2]


def command_line(
    fetch_many: Callable[[list[str]], list[bytes]],
    description: str,
    add_arguments: Callable | None = None,
) -> argparse.Namespace:
    """Shared ``main`` of the steps: fetch N pages from a latency server, print the time."""
    p = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    p.add_argument("-n", type=int, default=20, help="number of pages")
    p.add_argument("--delay", type=float, default=0.2, help="server latency per page, seconds")
    if add_arguments:
        add_arguments(p)
    args = p.parse_args()
    from labkit.background import serve  # only here: the loops themselves start no process

    with serve("latency_http", delay=args.delay) as srv:
        urls = [f"http://{srv.host}:{srv.port}/pages/page-48k.html?id={i}" for i in range(args.n)]
        started = time.perf_counter()
        bodies = fetch_many(urls)
        elapsed = time.perf_counter() - started
    sizes = {len(b) for b in bodies}
    print(
        f"{len(bodies)} pages of {sorted(sizes)} bytes, each delayed {args.delay} s, "
        f"in {elapsed:.2f} s on one thread"
    )
    return args
