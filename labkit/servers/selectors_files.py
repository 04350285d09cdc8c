"""A file server on selectors: GET, PUT and LIST for thousands of clients, on one thread.

Each connection is a ``Connection`` in its selector key's ``data``: what the client asked and is
owed (``FileRequests``, labkit/file_requests.py, shared with gevent_files), the bytes on their
way out, and when we last heard from it. A file is opened only when its reply reaches the head
of the queue, and read in chunks as the client takes them. We ask for EVENT_WRITE only while
something waits to be sent, stop reading a client far behind, and drop one silent for
``--client-timeout`` s. A ``Door`` (labkit/accept_policy.py) keeps three descriptors per client
(its socket, the file it is sent, its upload) and a reserve: a client we hold never hears "Too
many open files". At the limit it closes the client idle longest (after an ``ERR 503``).

    python -m labkit.servers.selectors_files --port 0 --root data --upload-dir /tmp/up
"""

import selectors
import time

from labkit import accept_policy, filestore, launch, protocol
from labkit.file_requests import CHUNK, SERVER_FULL, FileRequests  # CHUNK: a file read at once
from labkit.serving import counts, hang_up, last_word

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
HIGH_WATER = 256 * 1024  # read files and requests only below this: < HIGH_WATER + CHUNK held
MAX_QUEUED = 64  # replies waiting per client before we stop reading requests
TICK = 0.5  # seconds: select() wakes at least this often for housekeeping


class Connection(FileRequests):
    """What the server remembers about one client: its requests (FileRequests), and more."""

    def __init__(self, sock, args):
        super().__init__(args.store, args.max_upload)
        self.sock = sock
        self.outgoing = bytearray()  # bytes of the replies, ready to send
        self.closing = False  # after a bad request or the client's EOF: close once sent
        self.last_heard = time.monotonic()  # when the client last sent or took any bytes


class FileServer:
    def __init__(self, listener, args):
        self.listener, self.args = listener, args
        self.sel = selectors.DefaultSelector()
        self.door = accept_policy.Door(per_client=3)  # a socket, a file sent, an upload
        self.next_sweep = 0.0  # when to look for silent clients next

    def run(self):
        self.listener.setblocking(False)
        self.sel.register(self.listener, READ, data=None)
        while True:
            for key, events in self.sel.select(timeout=TICK):  # sleeps until ready, or TICK
                conn = key.data
                if conn is None:  # the listener: a client is waiting
                    self.accept()
                    continue
                try:
                    if events & READ and conn.sock.fileno() != -1:  # (not closed to make room)
                        self.receive(conn)
                    if events & WRITE and conn.sock.fileno() != -1:
                        self.send(conn)
                except OSError:  # reset; or a disk error mid-file: the header promised more
                    self.close(conn, error=True)
            self.housekeeping()

    def accept(self):
        sock = self.door.accept(self.listener, self.close_idle)  # ready: does not block
        if sock == accept_policy.PAUSED:  # no room: the next clients wait in the listen
            self.sel.unregister(self.listener)  # backlog, and housekeeping() lets them in
        elif sock is not None:  # (None: the client gave up, or another process took it)
            sock.setblocking(False)
            self.sel.register(sock, READ, data=Connection(sock, self.args))
            counts["connections"] += 1
            launch.counters.peak(most_connected=len(self.door.held))

    def receive(self, conn):
        data = conn.sock.recv(CHUNK)  # readable, and only we read it: returns at once
        counts["bytes_in"] += len(data)
        conn.last_heard = time.monotonic()
        if not data or not conn.feed(data):  # it has finished sending (or left), or sent a
            conn.closing = True  # broken frame (an ERR says why): answer, then close
        self.update_interest(conn)

    def send(self, conn):
        try:
            sent = conn.sock.send(conn.outgoing)  # non-blocking: takes what fits, maybe less
        except BlockingIOError:  # its buffer is full after all: wait until writable
            return
        counts["bytes_out"] += sent
        del conn.outgoing[:sent]  # keep exactly what was not sent yet
        conn.last_heard = time.monotonic()
        self.update_interest(conn)

    def update_interest(self, conn):
        """Top up the outgoing buffer from the replies; ask for what we need now, or close."""
        while len(conn.outgoing) < HIGH_WATER and (piece := conn.next_piece()) is not None:
            conn.outgoing += piece
        pending = bool(conn.outgoing or conn.replies)
        if conn.closing and not pending:
            return self.close(conn)
        behind = len(conn.outgoing) >= HIGH_WATER or len(conn.replies) >= MAX_QUEUED
        wanted = (0 if conn.closing or behind else READ) | (WRITE if pending else 0)
        if self.sel.get_key(conn.sock).events != wanted:
            self.sel.modify(conn.sock, wanted, data=conn)

    def housekeeping(self):
        """Resume accepting after a pause; once per TICK, drop the clients silent too long."""
        if self.door.over():
            self.sel.register(self.listener, READ, data=None)
        now, timeout = time.monotonic(), self.args.client_timeout
        if now < self.next_sweep:
            return
        self.next_sweep = now + TICK
        for conn in [key.data for key in self.sel.get_map().values() if key.data]:
            if now - conn.last_heard > timeout:
                if not (conn.outgoing or conn.replies):  # between replies: room to say why
                    why = f"silent for more than {timeout:g} s"
                    last_word(conn.sock, protocol.err_header(408, why))
                counts["timed_out"] += 1
                self.close(conn)

    def close_idle(self, sock):
        """The door's way to make room: close this client only between requests, owed nothing."""
        conn = self.sel.get_key(sock).data
        if conn.outgoing or conn.replies or not conn.between_requests:
            return False
        last_word(conn.sock, SERVER_FULL)
        self.close(conn)
        return True

    def close(self, conn, error=False):
        self.sel.unregister(conn.sock)
        hang_up(conn.sock, self.door, error)
        conn.close()  # the file being sent, an incomplete upload


def serve(listener, args):
    FileServer(listener, args).run()


if __name__ == "__main__":
    launch.run(serve, __doc__, filestore.add_arguments, setup=filestore.setup)
