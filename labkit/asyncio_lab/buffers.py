"""A stream handler's write buffer while one client reads slowly, sampled over time."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

Series = list[tuple[float, int]]  # (seconds from the start, a size)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]

KERNEL_BUFFER = 16 * 1024  # bytes asked for the server's send buffer (Linux doubles it)


@dataclass
class BufferGrowth:
    """What a handler's transport buffer did while a slow client read: its size over time, and
    the transport's flow-control limits (low and high water marks, bytes)."""

    series: Series
    limits: tuple[int, int]

    @property
    def peak(self) -> int:
        return max((size for _, size in self.series), default=0)


async def record_every(
    measure: Callable[[], int], series: Series, zero: float, every: float
) -> None:
    """Append ``(time, measure())`` every ``every`` seconds until cancelled."""
    while True:
        series.append((time.perf_counter() - zero, measure()))
        await asyncio.sleep(every)


async def slow_reader(reader: asyncio.StreamReader, every: float, size: int = 4096) -> None:
    """A client that takes ``size`` bytes every ``every`` seconds: far slower than the handler."""
    while await reader.read(size):
        await asyncio.sleep(every)


async def buffer_growth(
    handler: Handler, seconds: float = 0.5, read_every: float = 0.01, every: float = 0.01
) -> BufferGrowth:
    """Serve one slow client with ``handler`` for ``seconds``; sample the bytes waiting in the
    handler's transport buffer every ``every`` seconds. Then stop the handler's task, drop what
    is still buffered and close the server."""
    served: asyncio.Future[tuple[asyncio.Task[None], asyncio.StreamWriter]]
    served = asyncio.get_running_loop().create_future()

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.set_result((asyncio.create_task(handler(reader, writer)), writer))

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    client_reader, client_writer = await asyncio.open_connection(
        *server.sockets[0].getsockname()[:2], limit=4096
    )
    task, writer = await served
    # A small send buffer: the transport's own buffer fills at once, not after the few MB the
    # kernel would take first (in our runs its send buffer grew to about 4 MB).
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
    series: Series = []
    sampler = asyncio.create_task(
        record_every(writer.transport.get_write_buffer_size, series, time.perf_counter(), every)
    )
    reading = asyncio.create_task(slow_reader(client_reader, read_every))
    await asyncio.sleep(seconds)
    for job in (task, sampler, reading):
        job.cancel()
    await asyncio.gather(task, sampler, reading, return_exceptions=True)
    limits = writer.transport.get_write_buffer_limits()
    writer.transport.abort()  # drop what is still buffered: close() would wait to send it all
    client_writer.transport.abort()
    server.close()
    await server.wait_closed()
    return BufferGrowth(series, limits)
