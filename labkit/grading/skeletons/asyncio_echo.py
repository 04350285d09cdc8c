"""My echo server on asyncio (lesson 12's capstone): every byte a client sends comes back.

It runs as it is, and fails some of the grader's checks: the TODOs say what is left to do.

    labkit.grade("my_server.py")        # in the notebook: the course's batteries
    python my_server.py --port 0        # by hand
"""

import asyncio

from labkit import launch


async def handle(reader, writer):
    data = await reader.read(65536)  # waits for bytes; b"" once the client closed
    # TODO: go on echoing until the client closes, not only the first bytes.
    writer.write(data)  # never blocks: the transport keeps what the socket won't take
    # TODO: await writer.drain(): it waits while that buffer is full, so a client that does
    #       not read cannot make it grow without bound.
    # TODO: a reset raises OSError (ConnectionResetError) in read or in drain: end this
    #       client quietly.
    writer.close()


async def main(listener):
    server = await asyncio.start_server(handle, sock=listener)  # launch bound it for us
    await server.serve_forever()


def serve(listener, args):
    asyncio.run(main(listener))


if __name__ == "__main__":
    launch.run(serve, __doc__)
