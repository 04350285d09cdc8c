"""An echo server on asyncio, written with either of its two APIs, on either of two loops.

``--api streams`` (the default) is the code most people write: one coroutine per client, with
``reader.read`` and ``writer.write`` + ``await writer.drain()``, as readable as a blocking
server. ``--api protocol`` is the layer underneath: the loop calls ``data_received`` on a
``Protocol`` object, as our selectors server calls its handlers, and ``transport.write`` never
blocks (the transport keeps what the socket would not take).

``--loop asyncio`` is the standard library's own loop (on ``selectors``, like lesson 00's server);
``--loop uvloop`` swaps in uvloop, the same loop API written in Cython on libuv (the C loop
under Node.js). Only the loop changes: the coroutines and protocols are the same code.

Like our other non-blocking echo servers: a client that does not read our echo stops being
read (``drain`` waits; the protocol pauses reading past the transport's high-water mark), a
client that half-closes gets the rest of its echo and then a close, a silent client costs only
its socket. Out of descriptors (EMFILE), asyncio stops accepting for a second and tells its
exception handler (we count ``accept_paused``); uvloop (libuv) says nothing: it accepts the
waiting clients with a descriptor kept spare for this and closes them at once.

    python -m labkit.servers.asyncio_echo --port 0 --api protocol --loop uvloop
"""

import asyncio

from labkit import launch

counts = launch.counters.for_this_thread()  # the loop's one thread counts here: no lock


# -- the streams API: one coroutine per client -----------------------------------------------
async def handle(reader, writer):
    counts["connections"] += 1
    try:
        while data := await reader.read(65536):  # waits for bytes; b"": the client closed
            counts["bytes_in"] += len(data)
            writer.write(data)  # never blocks: the transport keeps what the socket won't take
            counts["bytes_out"] += len(data)
            await writer.drain()  # waits while the client is behind in reading our echo
    except OSError:  # reset, or gone while we waited
        counts["errors"] += 1
    finally:
        writer.close()  # after the echo still buffered has gone out


# -- the protocol API: the loop calls us back ------------------------------------------------
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        counts["connections"] += 1

    def data_received(self, data):
        counts["bytes_in"] += len(data)
        self.transport.write(data)  # never blocks; past the high-water mark: pause_writing
        counts["bytes_out"] += len(data)

    def pause_writing(self):  # the client is behind in reading: stop reading from it
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()

    def eof_received(self):
        return False  # the client closed its side: close ours once the echo has gone out

    def connection_lost(self, exc):
        if exc is not None:
            counts["errors"] += 1


async def main(listener, api, backlog):
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(count_accept_pauses)
    # asyncio calls listen() again on our socket, with a backlog of 100 unless told: pass ours,
    # or a burst of thousands of clients overflows the accept queue and waits on SYN retries.
    if api == "streams":
        server = await asyncio.start_server(handle, sock=listener, backlog=backlog)
    else:
        server = await loop.create_server(Echo, sock=listener, backlog=backlog)
    await server.serve_forever()


def count_accept_pauses(loop, context):
    """asyncio stops accepting for a second when out of descriptors, and says so here (once
    for every accept() that failed: it tries up to 100 in a row before it stops)."""
    if context.get("message") == "socket.accept() out of system resource":
        counts["accept_paused"] += 1
    else:
        loop.default_exception_handler(context)


def serve(listener, args):
    with asyncio.Runner(loop_factory=args.new_loop) as runner:
        runner.run(main(listener, args.api, args.backlog))


def setup(args):
    """Pick the loop before READY, so that a missing uvloop stops the start with a clear error."""
    if args.loop == "asyncio":
        args.new_loop = asyncio.new_event_loop
        return
    try:
        import uvloop
    except ImportError as err:
        raise launch.SetupError(
            f"--loop uvloop needs the uvloop package ({err}): install it with "
            "`pip install uvloop==0.23.0` (Linux and macOS only), or use --loop asyncio"
        ) from None
    args.new_loop = uvloop.new_event_loop


def add_arguments(p):
    p.add_argument("--api", choices=["streams", "protocol"], default="streams")
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, setup=setup)
