"""The framed file protocol of lesson 08, and an incremental parser for it.

TCP delivers a stream of bytes, not messages: one ``recv`` may return half a header, or a header
and the start of the data together. So every message says where it ends: a header line ending
in ``\\n``, and a body of exactly the length the header announces.

Requests (client to server)::

    GET <name>\\n                 send me the file <name>
    PUT <name> <size>\\n<bytes>   here are <size> bytes: store them as <name>
    LIST\\n                       which files do you have?

Responses (server to client)::

    OK <size> <sha256>\\n<bytes>  success; <size> bytes follow (GET: the file; LIST: one
                                 "<name> <size>" line per file; PUT: none, size 0) and
                                 <sha256> is the hex SHA-256 of the file (PUT: of what arrived)
    ERR <code> <message>\\n       failure: 400 bad request, 403 name refused, 404 no such
                                 file, 408 silent too long, 413 too large, 500 the server
                                 failed (a disk error), 503 busy (out of file descriptors).
                                 After 404, 500 or 503 the connection goes on; after the
                                 others the server closes it.

A header is UTF-8, at most 1,024 bytes with its ``\\n``. Sizes and codes are ASCII digits
(``str.isdigit`` would also accept "²" or "١٠"). A name is 1 to 200 bytes of UTF-8 (Linux allows
255 per file name, so any valid name can be stored), with no whitespace, no ``/`` or ``\\``, no
NUL, and does not start with ``.``.

``Parser`` takes the bytes in whatever pieces they arrive and returns complete events; tests feed
it every possible split of valid frames, and garbage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ProtocolError",
    "Request",
    "Response",
    "Body",
    "End",
    "Parser",
    "check_name",
    "MAX_HEADER",
    "request_bytes",
    "ok_header",
    "err_header",
]

MAX_HEADER = 1024
MAX_NAME_BYTES = 200  # of UTF-8: fits any file system's name
COMMANDS = {"GET": 1, "PUT": 2, "LIST": 0}  # command -> number of arguments
# Numbers on the wire are ASCII digits: [0-9], not \d or str.isdigit(), which also take "²".
SIZE, CODE, SHA256 = re.compile("[0-9]{1,19}"), re.compile("[0-9]{3}"), re.compile("[0-9a-f]{64}")


class ProtocolError(ValueError):
    """A frame that breaks the protocol; ``code`` is the ERR code to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message = code, message


@dataclass(frozen=True)
class Request:
    command: str  # GET, PUT or LIST
    name: str = ""
    size: int = 0  # PUT: the number of body bytes that follow


@dataclass(frozen=True)
class Response:
    ok: bool
    size: int = 0  # OK: the number of body bytes that follow
    sha256: str = ""
    code: int = 0  # ERR: the error code and message
    message: str = ""


@dataclass(frozen=True)
class Body:
    data: bytes  # part of the body of the current frame


@dataclass(frozen=True)
class End:
    """The current frame (header and its whole body) is complete."""


def check_name(name: str) -> str:
    """Return ``name`` if it may name a file in the server's folder; raise ProtocolError 403."""
    encoded = name.encode("utf-8", "replace")  # a lone surrogate becomes "?": refused below
    bad = (
        not name
        or len(encoded) > MAX_NAME_BYTES
        or encoded.decode() != name
        or name.startswith(".")
        or any(c in name for c in "/\\\0")
        or any(c.isspace() for c in name)
    )
    if bad:
        raise ProtocolError(403, f"file name refused: {name[:60]!r}")
    return name


def _size(text: str, limit: int) -> int:
    if not SIZE.fullmatch(text):
        raise ProtocolError(400, f"bad size {text[:30]!r}")
    size = int(text)
    if size > limit:
        raise ProtocolError(413, f"{size} bytes is more than the limit of {limit}")
    return size


def parse_request_header(line: str, max_body: int) -> Request:
    parts = line.split(" ")
    command = parts[0]
    if command not in COMMANDS or len(parts) != COMMANDS[command] + 1:
        raise ProtocolError(
            400, f"expected GET <name>, PUT <name> <size> or LIST, got {line[:60]!r}"
        )
    if command == "LIST":
        return Request("LIST")
    name = check_name(parts[1])
    return Request(command, name, _size(parts[2], max_body) if command == "PUT" else 0)


def parse_response_header(line: str, max_body: int) -> Response:
    parts = line.split(" ", 2)
    if parts[0] == "OK" and len(parts) == 3 and SHA256.fullmatch(parts[2]):
        return Response(True, _size(parts[1], max_body), parts[2])
    if parts[0] == "ERR" and len(parts) >= 2 and CODE.fullmatch(parts[1]):
        return Response(False, code=int(parts[1]), message=parts[2] if len(parts) > 2 else "")
    raise ProtocolError(
        400, f"expected OK <size> <sha256> or ERR <code> <message>, got {line[:60]!r}"
    )


class Parser:
    """Incremental parser: ``feed(data)`` returns the events completed by ``data``.

    ``kind`` is "request" (the server's side) or "response" (the client's side). Events are
    Request/Response (a header), Body (some of its body) and End (frame complete). After a
    ProtocolError the stream cannot be trusted: the parser refuses further input.
    """

    def __init__(self, kind: str = "request", max_body: int = 64 << 20) -> None:
        if kind not in ("request", "response"):
            raise ValueError("kind is 'request' or 'response'")
        self.kind, self.max_body = kind, max_body
        self._buffer = bytearray()
        self._remaining: int | None = None  # body bytes still expected; None: in a header
        self._failed = False

    @property
    def idle(self) -> bool:
        """True between frames (no partial header or body pending)."""
        return self._remaining is None and not self._buffer

    def feed(self, data: bytes) -> list:
        if self._failed:
            raise ProtocolError(400, "the stream was already broken")
        self._buffer += data
        events: list = []
        try:
            while self._step(events):
                pass
        except ProtocolError:
            self._failed = True
            raise
        return events

    def _step(self, events: list) -> bool:
        """Take one event from the buffer if a complete one is there; False if not."""
        if self._remaining is None:
            return self._header(events)
        if self._remaining and self._buffer:
            part = bytes(self._buffer[: self._remaining])
            del self._buffer[: len(part)]
            self._remaining -= len(part)
            events.append(Body(part))
        if self._remaining == 0:
            self._remaining = None
            events.append(End())
            return True
        return False

    def _header(self, events: list) -> bool:
        end = self._buffer.find(b"\n", 0, MAX_HEADER)
        if end < 0:
            if len(self._buffer) >= MAX_HEADER:
                raise ProtocolError(400, f"no header end within {MAX_HEADER} bytes")
            return False
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(400, "header is not UTF-8") from None
        parse = parse_request_header if self.kind == "request" else parse_response_header
        header = parse(line.rstrip("\r"), self.max_body)
        events.append(header)
        self._remaining = header.size
        return True


# -- building frames -------------------------------------------------------------------------
def request_bytes(command: str, name: str = "", body: bytes = b"") -> bytes:
    """The bytes of one request (for PUT, header and body)."""
    if command == "LIST":
        return b"LIST\n"
    if command == "GET":
        return f"GET {check_name(name)}\n".encode()
    return f"PUT {check_name(name)} {len(body)}\n".encode() + body


def ok_header(size: int, sha256: str) -> bytes:
    return f"OK {size} {sha256}\n".encode()


def err_header(code: int, message: str) -> bytes:
    line = f"ERR {code} {message}".replace("\n", " ").encode()[: MAX_HEADER - 1]
    return line.decode("utf-8", "ignore").encode() + b"\n"  # never cut a character in half
