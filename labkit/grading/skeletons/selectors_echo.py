"""My echo server on selectors (lesson 12's capstone): every byte a client sends comes back.

It runs as it is, and fails some of the grader's checks: the TODOs say what is left to do.

    labkit.grade("my_server.py")        # in the notebook: the course's batteries
    python my_server.py --port 0        # by hand
"""

import selectors

from labkit import launch

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Client:
    """What the server remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.outgoing = bytearray()  # echoed bytes the client has not taken yet


def serve(listener, args):
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, READ, data=None)
    while True:
        for key, events in sel.select():  # blocks until a socket is ready
            if key.data is None:
                conn, _ = listener.accept()  # TODO: out of descriptors: OSError; pause
                conn.setblocking(False)
                sel.register(conn, READ, data=Client(conn))
            else:  # TODO: a client's reset raises OSError (ConnectionResetError or
                # BrokenPipeError) in recv or in send: catch it here, close that client only.
                handle(sel, key.data, events)


def handle(sel, client, events):
    if events & READ:
        data = client.conn.recv(65536)  # readable: returns at once
        # TODO: b"" means the client closed its side: send what is left, then close.
        client.outgoing += data
        # TODO: stop reading from a client that is far behind (a high-water mark).
        sel.modify(client.conn, READ | WRITE, data=client)
    if events & WRITE:
        sent = client.conn.send(client.outgoing)  # takes what fits, maybe not all
        del client.outgoing[:sent]
        if not client.outgoing:  # nothing left to send: stop asking for EVENT_WRITE
            sel.modify(client.conn, READ, data=client)


if __name__ == "__main__":
    launch.run(serve, __doc__)
