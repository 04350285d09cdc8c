"""A file server on selectors: GET, PUT and LIST for thousands of clients, on one thread.

The protocol (framing, commands, errors) is in labkit/protocol.py. Each connection's state is
a ``Connection`` object kept in its selector key's ``data``: the incremental request parser,
the replies still to send, and the upload in progress.

* Files are served only from ``--root``, by plain names: no ``..``, no paths, no links out.
* A file is opened only when its reply reaches the head of the queue, and streamed in chunks as
  the client takes them. We ask for EVENT_WRITE only while something is waiting to be sent, and
  stop reading from a client that is far behind (too many bytes or replies waiting).
* Uploads go to ``--upload-dir`` (written to a temporary file, renamed when complete); the
  answer confirms the SHA-256 of exactly what arrived.
* Every refusal is an ``ERR`` reply. After a bad request the connection is closed; after a
  refusal of the folder (404, or 503 when out of descriptors) it goes on.
* Clients come in through a ``Door`` (labkit/accept_policy.py) that keeps three descriptors for
  each (its socket, the file it is sent, its upload) and a reserve: a client we hold never hears
  "Too many open files". At the limit the door closes the client idle longest (after an
  ``ERR 503``), or stays shut a moment. A client silent for ``--client-timeout`` s is dropped.

    python -m labkit.servers.selectors_files --port 0 --root data --upload-dir /tmp/up
"""

import contextlib
import selectors
import time
from collections import deque

from labkit import accept_policy, filestore, launch, protocol
from labkit.protocol import Body, End, Request

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
CHUNK = 64 * 1024
HIGH_WATER = 256 * 1024  # refill from files, and read requests, only below this
MAX_QUEUED = 64  # replies waiting per client before we stop reading requests
TICK = 0.5  # seconds: select() wakes at least this often for housekeeping


class Connection:
    """What the server remembers about one client (kept in the selector key's data)."""

    def __init__(self, sock, max_upload):
        self.sock = sock
        self.parser = protocol.Parser("request", max_body=max_upload)
        self.replies = deque()  # in the order requested: bytes, the name of a file to GET
        # (opened when its turn comes), or the open file being sent
        self.outgoing = bytearray()
        self.upload = None  # the Upload in progress, while a PUT's body arrives
        self.closing = False  # after a bad request or the client's EOF: close once the
        # replies are out
        self.last_heard = time.monotonic()  # when the client last sent or took any bytes


class FileServer:
    def __init__(self, store, max_upload, client_timeout):
        self.store, self.max_upload, self.client_timeout = store, max_upload, client_timeout
        self.sel = selectors.DefaultSelector()
        self.active = 0
        self.door = accept_policy.Door(per_client=3)  # a socket, a file sent, an upload
        self.next_sweep = 0.0  # when to look for silent clients next

    def run(self, listener):
        listener.setblocking(False)
        self.listener = listener
        self.sel.register(listener, READ, data=None)
        while True:
            for key, events in self.sel.select(timeout=TICK):  # sleeps until ready, or TICK
                if key.data is None:
                    self.accept()
                    continue
                conn = key.data
                if events & READ and conn.sock.fileno() != -1:  # (not closed to make room)
                    self.receive(conn)
                if events & WRITE and conn.sock.fileno() != -1:
                    self.send(conn)
            self.housekeeping()

    def accept(self):
        sock = self.door.accept(self.listener, self.close_idle)  # ready: does not block
        if sock == accept_policy.PAUSED:  # the door is shut a moment:
            self.sel.unregister(self.listener)  # stop watching the listener
        if sock is None or sock == accept_policy.PAUSED:  # (None: the client gave up)
            return
        sock.setblocking(False)
        self.sel.register(sock, READ, data=Connection(sock, self.max_upload))
        self.active += 1
        launch.counters.add(connections=1)
        launch.counters.peak(most_connected=self.active)

    # -- reading requests ------------------------------------------------------------------
    def receive(self, conn):
        try:
            data = conn.sock.recv(CHUNK)  # readable: returns at once
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(conn, error=True)
        conn.last_heard = time.monotonic()
        if not data:  # the client has finished sending (or left): answer
            conn.closing = True  # what it already asked, then close
            return self.update_interest(conn)
        launch.counters.add(bytes_in=len(data))
        try:
            for event in conn.parser.feed(data):
                self.handle(conn, event)
        except protocol.ProtocolError as err:  # a broken frame: say why, then hang up
            self.refuse(conn, err)
            conn.closing = True  # the stream can't be trusted
            self.discard_upload(conn)
        self.update_interest(conn)

    def handle(self, conn, event):
        """One request event. If the folder refuses (a disk error, no descriptor left), the
        client is told why and the connection goes on: the stream is still in step."""
        try:
            self.answer(conn, event)
        except protocol.ProtocolError as err:
            self.refuse(conn, err)
            conn.upload = None  # a failed upload deleted its own file

    def refuse(self, conn, err):
        launch.counters.add(refused=1)
        conn.replies.append(protocol.err_header(err.code, err.message))

    def answer(self, conn, event):
        if isinstance(event, Request) and event.command == "GET":
            conn.replies.append(event.name)  # its file is opened by refill()
        elif isinstance(event, Request) and event.command == "PUT":
            conn.upload = self.store.upload(event.name)
        elif isinstance(event, Request):  # LIST
            conn.replies.append(self.store.listing())
        elif isinstance(event, Body) and conn.upload:
            conn.upload.write(event.data)
        elif isinstance(event, End) and conn.upload:
            conn.replies.append(conn.upload.finish())  # complete: now it is visible
            conn.upload = None
            launch.counters.add(puts=1)

    # -- sending replies -------------------------------------------------------------------
    def refill(self, conn):
        """Move replies into the outgoing buffer until it holds HIGH_WATER bytes."""
        while conn.replies and len(conn.outgoing) < HIGH_WATER:
            head = conn.replies[0]
            if isinstance(head, str):  # a GET's turn: only now open its file
                header, conn.replies[0] = self.open_file(head)
                conn.outgoing += header
            elif isinstance(head, bytes):
                conn.outgoing += head
                conn.replies.popleft()
            elif chunk := head.read(CHUNK):  # a local file: fast enough not to matter
                conn.outgoing += chunk
            else:  # the whole file is queued
                head.close()
                conn.replies.popleft()

    def open_file(self, name):
        """The header to send and what follows it: the open file, or nothing after an ERR."""
        try:
            header, file = self.store.open(name)
        except protocol.ProtocolError as err:  # 404, or 503: the connection goes on
            launch.counters.add(refused=1)
            return protocol.err_header(err.code, err.message), b""
        launch.counters.add(gets=1)
        return header, file

    def send(self, conn):
        try:
            sent = conn.sock.send(conn.outgoing)  # writable: takes what fits
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(conn, error=True)
        del conn.outgoing[:sent]  # keep exactly what was not sent
        conn.last_heard = time.monotonic()
        launch.counters.add(bytes_out=sent)
        self.update_interest(conn)

    def update_interest(self, conn):
        """After every read or write: top up the outgoing buffer, then ask the selector for
        what we need now (or close, if we are done)."""
        try:
            self.refill(conn)
        except OSError:  # a disk error mid-file: we can't send what the header promised
            return self.close(conn, error=True)
        pending = bool(conn.outgoing or conn.replies)
        if conn.closing and not pending:
            return self.close(conn)
        behind = len(conn.outgoing) >= HIGH_WATER or len(conn.replies) >= MAX_QUEUED
        wanted = (0 if conn.closing or behind else READ) | (WRITE if pending else 0)
        if self.sel.get_key(conn.sock).events != wanted:
            self.sel.modify(conn.sock, wanted, data=conn)

    # -- housekeeping ----------------------------------------------------------------------
    def housekeeping(self):
        """Resume accepting after a pause; once per TICK, drop the silent clients."""
        if self.door.over():
            self.sel.register(self.listener, READ, data=None)
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + TICK
            self.drop_silent(now)

    def drop_silent(self, now):
        """Close clients that neither sent nor took a byte for --client-timeout seconds."""
        for key in list(self.sel.get_map().values()):
            conn = key.data
            if conn and now - conn.last_heard > self.client_timeout:
                if not (conn.outgoing or conn.replies):  # between replies: room to say why
                    self.say(conn, 408, f"silent for more than {self.client_timeout:g} s")
                launch.counters.add(timed_out=1)
                self.close(conn)

    def close_idle(self, sock):
        """The door's way to make room: close this client if it has no request in progress
        and nothing to send. A busy client is never dropped: it would lose its reply."""
        conn = self.sel.get_key(sock).data
        if conn.outgoing or conn.replies or conn.upload or not conn.parser.idle:
            return False
        self.say(conn, 503, "the server is full: closed this idle connection")
        self.close(conn)
        return True

    def say(self, conn, code, message):
        """A last ERR line before we close: non-blocking, so it fits (nothing waits) or is lost."""
        with contextlib.suppress(OSError):
            conn.sock.send(protocol.err_header(code, message))

    def close(self, conn, error=False):
        self.sel.unregister(conn.sock)
        self.door.closed(conn.sock)
        conn.sock.close()
        self.active -= 1
        for reply in conn.replies:
            if not isinstance(reply, (bytes, str)):  # only the head can be an open file
                reply.close()
        conn.replies.clear()
        self.discard_upload(conn)
        if error:
            launch.counters.add(errors=1)

    def discard_upload(self, conn):
        if conn.upload:  # incomplete: never make it visible
            conn.upload.discard()
            conn.upload = None


def serve(listener, args):
    FileServer(args.store, args.max_upload, args.client_timeout).run(listener)


if __name__ == "__main__":
    launch.run(serve, __doc__, filestore.add_arguments, setup=filestore.setup)
