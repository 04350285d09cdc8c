"""A file server on selectors: GET, PUT and LIST for thousands of clients, on one thread.

The protocol (framing, commands, errors) is in labkit/protocol.py. Each connection's state is
a ``Connection`` object kept in its selector key's ``data``: the incremental request parser,
the replies still to send (bytes, or a file being streamed), and the upload in progress.

* Files are served only from ``--root``, by plain names: no ``..``, no paths, no links out.
* A file is streamed in chunks as the client takes them; we ask for EVENT_WRITE only while
  something is waiting to be sent, and stop reading from a client that is far behind.
* Uploads go to ``--upload-dir`` (written to a temporary file, renamed when complete); the
  answer confirms the SHA-256 of exactly what arrived.
* A bad request gets an ``ERR`` reply and the connection is closed; the server goes on.

    python -m labkit.servers.selectors_files --port 0 --root data --upload-dir /tmp/up
"""
import selectors
from collections import deque

from labkit import filestore, protocol
from labkit.protocol import Body, End, Request
from labkit.servers import launch

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
CHUNK = 64 * 1024
HIGH_WATER = 256 * 1024            # refill from files, and read requests, only below this


class Connection:
    """What the server remembers about one client (kept in the selector key's data)."""

    def __init__(self, sock, max_upload):
        self.sock = sock
        self.parser = protocol.Parser("request", max_body=max_upload)
        self.replies = deque()     # bytes, or open files to stream, in the order requested
        self.outgoing = bytearray()
        self.upload = None         # the Upload in progress, while a PUT's body arrives
        self.closing = False       # after a bad request or the client's EOF: close once the
                                   # replies are out


class FileServer:
    def __init__(self, store, max_upload):
        self.store, self.max_upload = store, max_upload
        self.sel = selectors.DefaultSelector()
        self.active = 0

    def run(self, listener):
        listener.setblocking(False)
        self.sel.register(listener, READ, data=None)
        while True:
            for key, events in self.sel.select():     # sleeps until something is ready
                if key.data is None:
                    self.accept(listener)
                    continue
                conn = key.data
                if events & READ:
                    self.receive(conn)
                if events & WRITE and conn.sock.fileno() != -1:
                    self.send(conn)

    def accept(self, listener):
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        sock.setblocking(False)
        self.sel.register(sock, READ, data=Connection(sock, self.max_upload))
        self.active += 1
        launch.counters.add(connections=1)
        launch.counters.peak(most_connected=self.active)

    # -- reading requests ------------------------------------------------------------------
    def receive(self, conn):
        try:
            data = conn.sock.recv(CHUNK)               # readable: returns at once
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(conn, error=True)
        if not data:                   # the client has finished sending (or left): answer
            conn.closing = True        # what it already asked, then close
            return self.update_interest(conn)
        launch.counters.add(bytes_in=len(data))
        try:
            for event in conn.parser.feed(data):
                self.handle(conn, event)
        except protocol.ProtocolError as err:
            launch.counters.add(refused=1)
            conn.replies.append(protocol.err_header(err.code, err.message))
            conn.closing = True                        # the stream can't be trusted: hang up
            self.discard_upload(conn)
        self.update_interest(conn)

    def handle(self, conn, event):
        if isinstance(event, Request) and event.command == "GET":
            try:
                path, header = self.store.lookup(event.name)
            except protocol.ProtocolError as err:       # 404: the connection goes on
                launch.counters.add(not_found=1)
                conn.replies.append(protocol.err_header(err.code, err.message))
                return
            conn.replies += [header, open(path, "rb")]  # the file is streamed by refill()
            launch.counters.add(gets=1)
        elif isinstance(event, Request) and event.command == "PUT":
            conn.upload = self.store.upload(event.name)
        elif isinstance(event, Request):                # LIST
            conn.replies.append(self.store.listing())
        elif isinstance(event, Body) and conn.upload:
            conn.upload.write(event.data)
        elif isinstance(event, End) and conn.upload:
            conn.replies.append(conn.upload.finish())   # complete: now it is visible
            conn.upload = None
            launch.counters.add(puts=1)

    # -- sending replies -------------------------------------------------------------------
    def refill(self, conn):
        """Move replies into the outgoing buffer until it holds HIGH_WATER bytes."""
        while conn.replies and len(conn.outgoing) < HIGH_WATER:
            head = conn.replies[0]
            if isinstance(head, bytes):
                conn.outgoing += head
                conn.replies.popleft()
                continue
            chunk = head.read(CHUNK)
            if chunk:
                conn.outgoing += chunk
            else:                                      # the whole file is queued
                head.close()
                conn.replies.popleft()

    def send(self, conn):
        try:
            sent = conn.sock.send(conn.outgoing)       # writable: takes what fits
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(conn, error=True)
        del conn.outgoing[:sent]                       # keep exactly what was not sent
        launch.counters.add(bytes_out=sent)
        self.update_interest(conn)

    def update_interest(self, conn):
        """After every read or write: top up the outgoing buffer, then ask the selector for
        what we need now (or close, if we are done)."""
        self.refill(conn)
        pending = bool(conn.outgoing or conn.replies)
        if conn.closing and not pending:
            return self.close(conn)
        wanted = (0 if conn.closing or len(conn.outgoing) >= HIGH_WATER else READ) | \
            (WRITE if pending else 0)
        if self.sel.get_key(conn.sock).events != wanted:
            self.sel.modify(conn.sock, wanted, data=conn)

    # -- housekeeping ----------------------------------------------------------------------
    def close(self, conn, error=False):
        self.sel.unregister(conn.sock)
        conn.sock.close()
        self.active -= 1
        for reply in conn.replies:
            if not isinstance(reply, bytes):
                reply.close()
        conn.replies.clear()
        self.discard_upload(conn)
        if error:
            launch.counters.add(errors=1)

    def discard_upload(self, conn):
        if conn.upload:                                # incomplete: never make it visible
            conn.upload.discard()
            conn.upload = None


def serve(listener, args):
    FileServer(filestore.from_arguments(args), args.max_upload).run(listener)


if __name__ == "__main__":
    launch.run(serve, __doc__, filestore.add_arguments)
