"""Step 2: tasks as generators that ``yield`` the socket they wait on.

Callbacks chop one download into several functions. Here a download is one generator, written
top to bottom like blocking code; where it would block, it yields ``(sock, event)`` instead,
and the loop resumes it when the selector says that socket is ready.

    python -m labkit.eventloop.generators -n 20
"""

from __future__ import annotations

import selectors
import socket
from collections import deque

from labkit.eventloop import body_of, command_line, http_get_request

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def fetch(url: str):
    """A task: downloads one page, yielding (socket, event) wherever it has to wait."""
    address, outgoing = http_get_request(url)
    with socket.socket() as sock:  # closed however the task ends
        sock.setblocking(False)
        sock.connect_ex(address)
        yield sock, WRITE  # wait until connected
        if err := sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            raise ConnectionError(f"connect to {address} failed: errno {err}")
        while outgoing:
            sent = sock.send(outgoing)
            outgoing = outgoing[sent:]
            if outgoing:
                yield sock, WRITE  # wait until there is room to send more
        response = bytearray()
        while True:
            yield sock, READ  # wait until there is something to read
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    return body_of(bytes(response))


def run(tasks: list) -> list:
    """The event loop: resume each task until it waits, then resume it when its socket is ready.

    If a task fails, the others are closed (``GeneratorExit`` at their ``yield``, so their
    ``with`` blocks close their sockets) before the error is raised here."""
    try:
        with selectors.DefaultSelector() as selector:
            return _loop(selector, tasks)
    finally:
        for task in tasks:
            task.close()  # a finished generator ignores this


def _loop(selector: selectors.BaseSelector, tasks: list) -> list:
    results: dict = {}
    ready = deque(tasks)
    while True:
        while ready:
            task = ready.popleft()
            try:
                sock, event = next(task)  # run the task up to its next wait
            except StopIteration as finished:
                results[id(task)] = finished.value
                continue
            selector.register(sock, event, task)
        if not selector.get_map():
            break  # nothing left to wait for
        events = selector.select(timeout=30)
        if not events:
            raise TimeoutError("no socket became ready within 30 s")
        for key, _ in events:
            selector.unregister(key.fileobj)
            ready.append(key.data)  # its socket is ready: resume it
    return [results[id(t)] for t in tasks]


def fetch_many(urls: list[str]) -> list[bytes]:
    return run([fetch(url) for url in urls])


if __name__ == "__main__":
    command_line(fetch_many, __doc__)
