"""My file server on selectors (lesson 12's capstone): lesson 08's GET, PUT and LIST.

The protocol's framing is ``labkit.protocol.Parser``'s, and the folder is ``labkit.filestore``'s
(``--root``, ``--upload-dir``): what is left is the server. It runs as it is, and fails some of
the grader's checks: the TODOs say what is left to do.

    labkit.grade("my_file_server.py", protocol="files")     # in the notebook
    python my_file_server.py --port 0 --root data           # by hand
"""

import selectors

from labkit import filestore, launch, protocol
from labkit.protocol import Body, End, Request

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Connection:
    """What the server remembers about one client."""

    def __init__(self, sock):
        self.sock = sock
        self.parser = protocol.Parser("request")  # bytes in, whole requests out
        self.outgoing = bytearray()  # replies the client has not taken yet
        self.upload = None  # the PUT whose body is arriving


def serve(listener, args):
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, READ, data=None)
    while True:
        for key, events in sel.select():  # blocks until a socket is ready
            if key.data is None:
                sock, _ = listener.accept()  # TODO: out of descriptors: OSError; pause
                sock.setblocking(False)
                sel.register(sock, READ, data=Connection(sock))
                continue
            # TODO: a client's reset raises OSError in recv or in send: close that client only.
            if events & READ:
                receive(sel, key.data, args.store)
            if events & WRITE:
                send(key.data)


def receive(sel, conn, store):
    data = conn.sock.recv(65536)  # readable: returns at once
    # TODO: b"" (the client is done): close this connection.
    for event in conn.parser.feed(data):  # TODO: ProtocolError: answer ERR, then close
        answer(conn, event, store)
    # TODO: ask for WRITE only while bytes wait; stop reading from a client far behind.
    sel.modify(conn.sock, READ | WRITE, data=conn)


def answer(conn, event, store):
    if isinstance(event, Request) and event.command == "GET":
        header, file = store.open(event.name)  # TODO: 404 is a ProtocolError: answer ERR
        with file:
            conn.outgoing += header + file.read()  # TODO: big files: a chunk at a time
    elif isinstance(event, Request) and event.command == "LIST":
        conn.outgoing += store.listing()
    elif isinstance(event, Request):  # PUT: its body follows, in pieces
        conn.upload = store.upload(event.name)
    elif isinstance(event, Body) and conn.upload:
        conn.upload.write(event.data)
    elif isinstance(event, End) and conn.upload:  # complete: now it may be seen
        conn.outgoing += conn.upload.finish()
        conn.upload = None


def send(conn):
    sent = conn.sock.send(conn.outgoing)  # writable: takes what fits, maybe not all
    del conn.outgoing[:sent]


if __name__ == "__main__":
    launch.run(serve, __doc__, filestore.add_arguments, setup=filestore.setup)
