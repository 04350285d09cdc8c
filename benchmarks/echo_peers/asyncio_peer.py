"""A peer for benchmarks/echo: asyncio's own echo server, as its documentation writes it.

``--api protocol`` is the documentation's ``EchoServerProtocol`` ("TCP Echo Server", transports
and protocols), ``--api streams`` its ``handle_echo`` coroutine (streams), reading up to 64 KiB
instead of 100 bytes. ``--loop uvloop`` runs either on uvloop. No counters, no timeouts: the
field's code, for our servers to be measured against. The plumbing (port 0, READY, dying with
the parent) is labkit's, so that ``benchmarks/echo.py`` starts it like our servers.

    python benchmarks/echo_peers/asyncio_peer.py --api protocol --loop uvloop
"""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # labkit, from a plain checkout

from labkit import launch


class EchoServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def handle_echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def main(listener, api, backlog):
    # Both calls listen() again, with a backlog of 100 unless told: we pass labkit's (4,096),
    # so that a burst of clients meets the same listen queue as at our servers.
    if api == "protocol":
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServerProtocol, sock=listener, backlog=backlog)
    else:
        server = await asyncio.start_server(handle_echo, sock=listener, backlog=backlog)
    await server.serve_forever()


def serve(listener, args):
    if args.loop == "uvloop":
        import uvloop

        new_loop = uvloop.new_event_loop
    else:
        new_loop = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main(listener, args.api, args.backlog))


def add_arguments(p):
    p.add_argument("--api", choices=["protocol", "streams"], default="protocol")
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
