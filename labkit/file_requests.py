"""One client of lesson 08's file server, without its I/O: what it asked, and what it is owed.

Both file servers (``selectors_files``, ``gevent_files``) hand the bytes a client sends to
``FileRequests.feed``, and send what ``next_piece()`` gives, in order, each in its own way: the
selectors loop while the client takes it, the gevent handler with ``sendall``. So GET, PUT and
LIST mean the same on both, and so do their ERR replies:

* A GET's file is opened only when its reply's turn comes, and read ``CHUNK`` by ``CHUNK``.
* A PUT's body goes to an ``Upload`` (labkit/filestore.py), visible only once complete.
* A refusal of the folder (404, a disk error, 503 when out of descriptors) is an ERR reply and
  the connection goes on: the stream is still in step. After a broken frame (``feed`` says
  False) the server sends the ERR that says why, and hangs up.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from labkit import protocol
from labkit.counters import counters
from labkit.filestore import FileStore, Upload
from labkit.protocol import Body, End, Request

__all__ = ["FileRequests", "CHUNK", "SERVER_FULL"]

CHUNK = 64 * 1024  # bytes of a file read at once
SERVER_FULL = protocol.err_header(503, "the server is full: closed this idle connection")
# (the last word to an idle client that the door closes to make room)


class FileRequests:
    """A client's parser, its replies not sent yet, and its upload in progress."""

    def __init__(self, store: FileStore, max_upload: int) -> None:
        self.store = store
        self.parser = protocol.Parser("request", max_body=max_upload)
        self.replies: deque[Any] = deque()  # in the order requested: bytes, the name of a
        # file to GET (opened when its turn comes), or the open file being sent
        self.upload: Upload | None = None  # the Upload in progress, while a PUT's body arrives

    @property
    def between_requests(self) -> bool:
        """No request half-read and no upload in progress (replies may still be owed)."""
        return self.parser.idle and self.upload is None

    def feed(self, data: bytes) -> bool:
        """Handle every request in ``data``. False after a broken frame: the stream cannot be
        trusted, an ERR says why, and the connection ends once it has gone out."""
        try:
            events = self.parser.feed(data)
        except protocol.ProtocolError as err:
            self.refuse(err)
            self.discard_upload()
            return False
        for event in events:
            self.handle(event)
        return True

    def handle(self, event: Request | Body | End) -> None:
        """One request event. If the folder refuses, the client is told why."""
        try:
            self._answer(event)
        except protocol.ProtocolError as err:
            self.refuse(err)
            self.upload = None  # a failed upload deleted its own file

    def _answer(self, event: Request | Body | End) -> None:
        if isinstance(event, Request) and event.command == "GET":
            self.replies.append(event.name)  # its file is opened by next_piece()
        elif isinstance(event, Request) and event.command == "PUT":
            self.upload = self.store.upload(event.name)
        elif isinstance(event, Request):  # LIST
            self.replies.append(self.store.listing())
        elif isinstance(event, Body) and self.upload:
            self.upload.write(event.data)
        elif isinstance(event, End) and self.upload:
            self.replies.append(self.upload.finish())  # complete: now it is visible
            self.upload = None
            counters.add(puts=1)

    def refuse(self, err: protocol.ProtocolError) -> None:
        counters.add(refused=1)
        self.replies.append(protocol.err_header(err.code, err.message))

    def next_piece(self) -> bytes | None:
        """The next bytes to send (a reply, a header, a CHUNK of a file); None when nothing is
        owed. A disk error mid-file raises OSError: what the header promised cannot be sent."""
        while self.replies:
            head = self.replies[0]
            if isinstance(head, str):  # a GET's turn: only now open its file
                header, self.replies[0] = self._open(head)
                return header
            if isinstance(head, bytes):
                return self.replies.popleft()
            if chunk := head.read(CHUNK):  # a local file: fast enough not to matter
                return chunk
            head.close()  # the whole file is sent
            self.replies.popleft()
        return None

    def _open(self, name: str) -> tuple[bytes, Any]:
        """The header to send and what follows it: the open file, or nothing after an ERR."""
        try:
            header, file = self.store.open(name)
        except protocol.ProtocolError as err:  # 404, or 503: the connection goes on
            counters.add(refused=1)
            return protocol.err_header(err.code, err.message), b""
        counters.add(gets=1)
        return header, file

    def discard_upload(self) -> None:
        if self.upload:  # incomplete: never make it visible
            self.upload.discard()
            self.upload = None

    def close(self) -> None:
        """The connection is gone: close the file being sent, forget an incomplete upload."""
        for reply in self.replies:
            if not isinstance(reply, (bytes, str)):  # only the head can be an open file
                reply.close()
        self.replies.clear()
        self.discard_upload()
