"""Step 3: a minimal Future and Task, so that tasks are ``async def`` coroutines.

A ``Future`` is a result that is not there yet; ``await future`` suspends the coroutine until
someone sets it. A ``Task`` drives one coroutine: it runs it until it awaits a Future, and
resumes it when that Future is done. The ``Loop`` turns "this socket is ready" and "this
timer is due" into finished Futures. A Future can also fail (``set_exception``) or be
cancelled (``cancel``): the awaiting coroutine then gets that exception thrown in where it
awaits, and may catch it. This is, in miniature, what asyncio does.

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


class CancelledError(BaseException):
    """Thrown into a task whose Future was cancelled. Like asyncio's (since Python 3.8) it is a
    BaseException, so a task's ``except Exception:`` cannot swallow its own cancellation."""


class Future:
    def __init__(self) -> None:
        self._state = "pending"  # then, once: "finished" or "cancelled"
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future], object]] = []

    def done(self) -> bool:
        return self._state != "pending"

    def cancelled(self) -> bool:
        return self._state == "cancelled"

    def result(self) -> Any:
        """The result; or raise what the Future failed with (CancelledError if cancelled)."""
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        if self.cancelled():
            raise CancelledError
        return self._exception

    def set_result(self, result: Any) -> None:
        self._finish("finished", result, None)

    def set_exception(self, exception: BaseException) -> None:
        self._finish("finished", None, exception)

    def cancel(self) -> bool:
        """A pending Future becomes cancelled: whoever awaits it gets CancelledError."""
        if self.done():
            return False
        self._finish("cancelled", None, CancelledError())
        return True

    def _finish(self, state: str, result: Any, exception: BaseException | None) -> None:
        if self.done():
            raise RuntimeError(f"this Future is already {self._state}")
        self._state, self._result, self._exception = state, result, exception
        callbacks, self._callbacks = self._callbacks, []  # each callback runs once
        for callback in callbacks:
            callback(self)

    def add_done_callback(self, callback: Callable[[Future], object]) -> None:
        if self.done():
            callback(self)
        else:
            self._callbacks.append(callback)

    def __await__(self):
        if not self.done():
            yield self  # hand ourselves to the Task: "resume me when I am done"
        return self.result()


class Task(Future):
    """Runs a coroutine step by step; is itself a Future for the coroutine's return value.

    A coroutine that raises stops the whole loop (``run_until_complete`` raises its error):
    our loop fails fast, where asyncio keeps the error in the Task until someone awaits it.
    A coroutine that lets CancelledError out ends cancelled."""

    def __init__(self, loop: Loop, coro: Coroutine) -> None:
        super().__init__()
        self.loop, self.coro = loop, coro
        self.waits_for: Future | None = None  # the Future of its latest await
        loop.tasks.append(self)
        loop.call_soon(self.step, None)

    def step(self, waited: Future | None) -> None:
        """Run to the next ``await``: send in the result of the Future awaited last, or throw
        in what it failed with (CancelledError too)."""
        if self.done():  # cancelled before it started
            return
        try:
            try:
                value = None if waited is None else waited.result()
            except BaseException as error:
                future = self.coro.throw(error)  # raised where the coroutine awaits
            else:
                future = self.coro.send(value)  # run until the coroutine awaits a Future
        except StopIteration as finished:
            self.set_result(finished.value)
        except CancelledError:
            Future.cancel(self)
        else:
            self.waits_for = future
            future.add_done_callback(lambda f: self.loop.call_soon(self.step, f))

    def cancel(self) -> bool:
        """Cancel the Future this task waits for: the task gets CancelledError where it waits
        (it may catch it). A task that has not started yet never starts."""
        if self.waits_for is not None:
            return self.waits_for.cancel()
        self.coro.close()  # not started yet: it never will
        return Future.cancel(self)


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
            if not task.done():
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
        future.add_done_callback(lambda _: self.selector.unregister(sock))  # ready or cancelled
        return future

    def run_until_complete(self, coro: Coroutine) -> Any:
        """Run until ``coro`` returns. If any task raises, the loop is closed (every task
        stopped, every socket closed) and the error is raised here."""
        main = self.create_task(coro)
        try:
            while not main.done():
                while self.ready:
                    callback, args = self.ready.popleft()
                    callback(*args)
                if main.done():
                    break
                self._wait_for_events()
        except BaseException:
            self.close()
            raise
        return main.result()

    def _wait_for_events(self) -> None:
        timeout = (
            max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else self.idle_timeout
        )
        events = self.selector.select(timeout)  # sleeps until a socket is ready or a timer due
        for key, _ in events:
            key.data.set_result(None)  # its callback unregisters the socket
        while self.timers and self.timers[0][0] <= time.monotonic():
            timer = heapq.heappop(self.timers)[2]
            if not timer.done():  # not cancelled
                timer.set_result(None)
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
