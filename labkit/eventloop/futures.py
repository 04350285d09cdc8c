"""Step 3: a minimal Future and Task, so that tasks are ``async def`` coroutines.

A ``Future`` is a result that is not there yet; ``await future`` suspends the coroutine until
someone sets it. A ``Task`` drives one coroutine: it runs it until it awaits a Future, and
resumes it when that Future is done. The ``Loop`` turns "this socket is ready" and "this
timer is due" into finished Futures. This is, in miniature, what asyncio does.

On this loop: fetch pages, and run an echo server that serves many clients on one thread.

    python -m labkit.eventloop.futures -n 20 --clients 200
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from labkit.eventloop import body_of, http_get_request


class Future:
    def __init__(self) -> None:
        self.done, self.result = False, None
        self._callbacks: list[Callable[[Future], None]] = []

    def set_result(self, result: Any) -> None:
        self.done, self.result = True, result
        for callback in self._callbacks:
            callback(self)

    def add_done_callback(self, callback: Callable[[Future], None]) -> None:
        self._callbacks.append(callback)

    def __await__(self):
        if not self.done:
            yield self  # hand ourselves to the Task: "resume me when I am done"
        return self.result


class Task(Future):
    """Runs a coroutine step by step; is itself a Future for the coroutine's return value."""

    def __init__(self, loop: Loop, coro: Coroutine) -> None:
        super().__init__()
        self.loop, self.coro = loop, coro
        loop.tasks.append(self)
        loop.call_soon(self.step, None)

    def step(self, value: Any) -> None:
        try:
            future = self.coro.send(value)  # run until the coroutine awaits a Future
        except StopIteration as finished:
            self.set_result(finished.value)
            return
        future.add_done_callback(lambda f: self.loop.call_soon(self.step, f.result))


class Loop:
    def __init__(self, idle_timeout: float = 30.0) -> None:
        self.idle_timeout = idle_timeout  # never hang: give up if nothing happens this long
        self.selector = selectors.DefaultSelector()
        self.ready: deque[tuple[Callable, tuple]] = deque()
        self.timers: list[tuple[float, int, Future]] = []
        self.tasks: list[Task] = []
        self._tie = itertools.count()

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every unfinished task: ``close()`` raises GeneratorExit where its coroutine
        waits, so its ``with`` blocks close its sockets. Then release the selector."""
        for task in self.tasks:
            if not task.done:
                task.coro.close()
        self.tasks.clear()
        self.selector.close()

    def call_soon(self, callback: Callable, *args: Any) -> None:
        self.ready.append((callback, args))

    def create_task(self, coro: Coroutine) -> Task:
        return Task(self, coro)

    def sleep(self, seconds: float) -> Future:
        future = Future()
        heapq.heappush(self.timers, (time.monotonic() + seconds, next(self._tie), future))
        return future

    def wait_for(self, sock: socket.socket, event: int) -> Future:
        """A Future that is done when ``sock`` is ready for ``event`` (read or write)."""
        future = Future()
        self.selector.register(sock, event, future)
        return future

    def run_until_complete(self, coro: Coroutine) -> Any:
        """Run until ``coro`` returns. If any task raises, the loop is closed (every task
        stopped, every socket closed) and the error is raised here."""
        main = self.create_task(coro)
        try:
            while not main.done:
                while self.ready:
                    callback, args = self.ready.popleft()
                    callback(*args)
                if main.done:
                    break
                self._wait_for_events()
        except BaseException:
            self.close()
            raise
        return main.result

    def _wait_for_events(self) -> None:
        timeout = (
            max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else self.idle_timeout
        )
        events = self.selector.select(timeout)  # sleeps until a socket is ready or a timer due
        for key, _ in events:
            self.selector.unregister(key.fileobj)
            key.data.set_result(None)
        while self.timers and self.timers[0][0] <= time.monotonic():
            heapq.heappop(self.timers)[2].set_result(None)
        if not events and not self.timers and not self.ready:
            raise TimeoutError(
                f"nothing happened for {self.idle_timeout:g} s: "
                "every task waits for something that never comes"
            )


async def gather(loop: Loop, coros: list[Coroutine]) -> list:
    tasks = [loop.create_task(c) for c in coros]
    return [await t for t in tasks]


# -- on this loop: an HTTP client ... ------------------------------------------------------------
async def fetch(loop: Loop, url: str) -> bytes:
    address, outgoing = http_get_request(url)
    with socket.socket() as sock:  # closed however the task ends
        sock.setblocking(False)
        sock.connect_ex(address)
        await loop.wait_for(sock, selectors.EVENT_WRITE)
        if err := sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            raise ConnectionError(f"connect to {address} failed: errno {err}")
        while outgoing:
            outgoing = outgoing[sock.send(outgoing) :]
            if outgoing:
                await loop.wait_for(sock, selectors.EVENT_WRITE)
        response = bytearray()
        while True:
            await loop.wait_for(sock, selectors.EVENT_READ)
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    return body_of(bytes(response))


def fetch_many(urls: list[str]) -> list[bytes]:
    with Loop() as loop:
        return loop.run_until_complete(gather(loop, [fetch(loop, url) for url in urls]))


# -- ... and an echo server with its clients, all on one thread ---------------------------------
async def echo_server(loop: Loop, listener: socket.socket, connections: int) -> int:
    """Accept ``connections`` clients, one Task each; return how many bytes were echoed."""
    listener.setblocking(False)
    handlers = []
    for _ in range(connections):
        await loop.wait_for(listener, selectors.EVENT_READ)
        conn, _ = listener.accept()
        conn.setblocking(False)
        handlers.append(loop.create_task(echo(loop, conn)))
    return sum([await h for h in handlers])


async def echo(loop: Loop, conn: socket.socket) -> int:
    echoed = 0
    with conn:  # closed however the task ends
        while True:
            await loop.wait_for(conn, selectors.EVENT_READ)
            data = conn.recv(65536)
            if not data:  # the client is done
                return echoed
            while data:
                await loop.wait_for(conn, selectors.EVENT_WRITE)
                sent = conn.send(data)
                data, echoed = data[sent:], echoed + sent


async def echo_client(loop: Loop, address: tuple, payload: bytes, pause: float) -> bool:
    with socket.socket() as sock:  # closed however the task ends
        sock.setblocking(False)
        sock.connect_ex(address)
        await loop.wait_for(sock, selectors.EVENT_WRITE)
        await loop.sleep(pause)  # every client stays connected for a while
        outgoing, received = payload, bytearray()
        while len(received) < len(payload):
            if outgoing:
                await loop.wait_for(sock, selectors.EVENT_WRITE)
                outgoing = outgoing[sock.send(outgoing) :]
            else:
                await loop.wait_for(sock, selectors.EVENT_READ)
                chunk = sock.recv(65536)
                if not chunk:  # the server closed early: the echo is short
                    break
                received += chunk
    return bytes(received) == payload


def serve_clients(n_clients: int, payload: bytes, pause: float = 0.1) -> tuple[int, int, float]:
    """Server and ``n_clients`` clients on one loop. Returns (clients ok, bytes echoed, seconds).

    Each client holds two sockets open at once (its own and the server's end): size
    ``n_clients`` with ``labkit.fit_clients(n, per_client=2)``. A failed run closes them all."""
    with Loop() as loop, socket.create_server(("127.0.0.1", 0), backlog=n_clients) as listener:
        address = listener.getsockname()

        async def main():
            server = loop.create_task(echo_server(loop, listener, n_clients))
            ok = await gather(
                loop, [echo_client(loop, address, payload, pause) for _ in range(n_clients)]
            )
            return sum(ok), await server

        started = time.perf_counter()
        ok, echoed = loop.run_until_complete(main())
    return ok, echoed, time.perf_counter() - started


if __name__ == "__main__":
    from labkit.eventloop import command_line

    args = command_line(
        fetch_many,
        __doc__,
        lambda p: p.add_argument(
            "--clients", type=int, default=200, help="echo clients served at once"
        ),
    )
    ok, echoed, took = serve_clients(args.clients, b"x" * 4096)
    print(
        f"echo server: {ok} of {args.clients} clients served, {echoed:,} bytes echoed, "
        f"in {took:.2f} s on one thread"
    )
