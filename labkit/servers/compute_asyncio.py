"""Lesson 10's compute server (``labkit.compute``: PING, WORK) on asyncio, one task a client.

``--offload none``: a WORK request burns the CPU inside its task. A task gives way only at an
``await``; there is none inside ``burn``, so the loop, and every other client, waits.
``--offload pool``: ``await loop.run_in_executor(pool, burn, ms)`` runs it in a process pool
(``--pool-size`` workers, each with its own GIL): the task waits, the loop goes on.
``--monitor``: debug mode with ``slow_callback_duration = 0.1``: any step of a task that keeps
the loop for longer is logged (``Executing <Task ... handle() ...> took 0.301 seconds``).

Like asyncio_echo (streams): lines are framed in a receive buffer (``compute.take_lines``; a
line over ``compute.MAX_LINE`` bytes gets ``ERR line too long`` and a close), and a client
behind in reading its replies is not read from (``await writer.drain()``).

    python -m labkit.servers.compute_asyncio --port 0 --offload pool --monitor
"""

import asyncio
import functools
import logging
import os

from labkit import compute, launch


async def handle(reader, writer, pool):
    launch.counters.add(connections=1)
    inbox = bytearray()  # the start of a line not yet complete
    try:
        while data := await reader.read(65536):  # b"": the client closed
            launch.counters.add(bytes_in=len(data))
            inbox += data
            lines, too_long = compute.take_lines(inbox)
            for line in lines:
                writer.write(await answer(line, pool))
            if too_long:
                writer.write(compute.TOO_LONG)
                break
            await writer.drain()  # waits while the client is behind in reading replies
    except OSError:  # reset, or gone while we waited
        launch.counters.add(errors=1)
    finally:
        writer.close()  # after the replies still buffered have gone out


async def answer(line, pool):
    request = compute.parse(line)
    if request[0] != "WORK" or pool is None:
        return compute.answer(line, os.getpid())  # WORK here: the loop waits for it
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(pool, compute.burn, int(request[1]))  # this task waits
    return compute.reply(request, os.getpid())


async def main(listener, args):
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(count_accept_pauses)
    if args.monitor:
        loop.slow_callback_duration = 0.1  # seconds: log any step that keeps the loop longer
    client = functools.partial(handle, pool=args.pool)
    # asyncio calls listen() again on our socket: pass our backlog, not its default of 100.
    server = await asyncio.start_server(client, sock=listener, backlog=args.backlog)
    await server.serve_forever()


def count_accept_pauses(loop, context):
    """asyncio stops accepting for a second when out of descriptors, and says so here."""
    if context.get("message") == "socket.accept() out of system resource":
        launch.counters.add(accept_paused=1)
    else:
        loop.default_exception_handler(context)


def serve(listener, args):
    if args.monitor:  # asyncio's warnings go to the log (stderr)
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    with asyncio.Runner(debug=args.monitor) as runner:
        runner.run(main(listener, args))


def add_arguments(p):
    p.add_argument("--offload", choices=["none", "pool"], default="none", help="where WORK runs")
    p.add_argument("--pool-size", type=int, default=2, help="worker processes with --offload pool")
    p.add_argument("--monitor", action="store_true", help="debug mode: log slow callbacks")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, setup=compute.start_pool)
