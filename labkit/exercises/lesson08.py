"""Lesson 08's exercises: the selectors file server."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

from labkit.exercises import Exercise, NotYet, chosen_option, close_to, first_reading, worked


def _check_data_in_first_recv(answer: Any) -> str:
    if first_reading(answer, lambda n: close_to(n, 949, 1e-9)) is None:
        raise NotYet(
            f"{answer}. Count this header: 'OK', a space, '123456' (6 digits, not the "
            "4 of the lesson's file), a space, 64 hex digits, and the newline."
        )
    return "75 bytes of header, so 949 bytes of the file came with it: never assume they don't."


# -- exercise 2: split a whole stream of replies ----------------------------------------------
def split_replies(stream):
    bodies = []
    while stream:
        header, _, rest = stream.partition(b"\n")  # a header ends at the first newline
        size = int(header.split()[1])  # OK <size> <sha256>
        bodies.append(rest[:size])  # a body ends where its size says, whatever it holds
        stream = rest[size:]
    return bodies


def _replies(rng: random.Random, count: int) -> tuple[bytes, list[bytes]]:
    """A stream of OK replies whose bodies hold newlines and even 'OK 5 ' (and may be empty)."""
    bodies = [
        rng.choice(
            [
                b"",
                rng.randbytes(rng.randint(1, 300)) + b"\n OK 5 ",
                b"OK 3 abc\n" * rng.randint(1, 3),
            ]
        )
        for _ in range(count)
    ]
    stream = b"".join(f"OK {len(b)} {hashlib.sha256(b).hexdigest()}\n".encode() + b for b in bodies)
    return stream, bodies


def _check_split_replies(fn: Callable) -> str:
    rng = random.Random(8)
    for _ in range(20):
        stream, bodies = _replies(rng, rng.randint(1, 5))
        got = fn(stream)
        if got is None:
            raise NotYet("split_replies returned None: return the list of bodies.")
        if list(got) != bodies:  # a generator of the bodies is right too
            raise NotYet(
                "the bodies came out wrong. A body may contain newlines and even 'OK', "
                "or be empty: after a header, take exactly <size> bytes, whatever "
                "they are."
            )
    return "the length in the header, not the content, says where each body ends."


# -- exercise 3 and 4 -------------------------------------------------------------------------
_NAMES = {"a": "歌词.txt", "b": "../secret", "c": "notes-2024.txt"}


def _check_refused_name(answer: Any) -> str:
    """A letter, "(b)" or "b) because ...", or the name itself, alone or in a sentence."""
    letter = chosen_option(answer, _NAMES)
    if letter is None and len([k for k, name in _NAMES.items() if name in str(answer)]) > 1:
        raise NotYet("your answer names more than one of them: which one is refused?")
    if letter != "b":
        raise NotYet("two of them are plain names, Chinese characters included.")
    return "a name with a path in it could reach outside the served folder: refused with 403."


def _check_fds(answer: Any) -> str:
    if first_reading(answer, lambda n: 10_000 <= n <= 10_100) is None:
        raise NotYet(
            f"{answer}. Each connected client is one socket, and a socket is a file "
            "descriptor, in the server's process."
        )
    return (
        "10,000 sockets plus a handful (the listener, the selector, stdin...): ulimit -n matters."
    )


# -- exercise 5: parse replies incrementally ---------------------------------------------------
class Replies:
    """Bytes in, in any pieces; each body out as soon as its last byte is in."""

    def __init__(self):
        self.buffer, self.size = bytearray(), None  # size: the body we are in, if any

    def feed(self, chunk):
        self.buffer += chunk
        bodies: list[bytes] = []
        while True:
            if self.size is None:  # waiting for a header line
                end = self.buffer.find(b"\n")
                if end < 0:
                    return bodies
                self.size = int(self.buffer[:end].split()[1])
                del self.buffer[: end + 1]
            if len(self.buffer) < self.size:  # the body is not all here yet
                return bodies
            bodies.append(bytes(self.buffer[: self.size]))
            del self.buffer[: self.size]
            self.size = None


def _pieces(stream: bytes, how: str, rng: random.Random) -> list[bytes]:
    if how == "byte by byte":
        return [stream[i : i + 1] for i in range(len(stream))]
    if how == "whole":
        return [stream]
    pieces, at = [], 0
    while at < len(stream):
        size = rng.choice([1, 2, 3, 7, 64, 500, 4096])
        pieces.append(stream[at : at + size])
        at += size
    return pieces


def _bodies_as_fed(make: Callable, pieces: list[bytes], how: str) -> list[tuple[int, bytes]]:
    """(index of the piece that completed it, body) for each body the parser returned."""
    parser, got = make(), []
    for i, piece in enumerate(pieces):
        out = parser.feed(piece)
        if not isinstance(out, list):
            raise NotYet(
                f"feed returned {out!r}: return the list of bodies that this piece "
                "completed (often [], an empty list)."
            )
        got += [(i, bytes(body)) for body in out]
    return got


def _check_replies(make: Callable) -> str:
    rng = random.Random(5)
    for _ in range(25):
        stream, bodies = _replies(rng, rng.randint(1, 6))
        for how in ("byte by byte", "random pieces", "whole"):
            pieces = _pieces(stream, how, rng)
            got = _bodies_as_fed(make, pieces, how)
            if [body for _, body in got] != bodies:
                raise NotYet(
                    f"fed {how}, {len(bodies)} replies gave {len(got)} bodies, not the "
                    "same ones: keep the bytes a piece leaves over (half a header, part "
                    "of a body) for the next feed, and take exactly <size> bytes."
                )
            if how == "byte by byte":
                at, ends = 0, []  # where each body's last byte is
                for body in bodies:
                    at = stream.index(b"\n", at) + 1 + len(body)
                    ends.append(at - 1)
                if [i for i, _ in got] != ends:
                    raise NotYet(
                        "every body came out, but not as soon as its last byte arrived: "
                        "return each body from the feed that completes it."
                    )
    return "byte by byte or in any pieces, the same bodies: that is an incremental parser."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            r"""
            A GET reply for a 123,456-byte file starts with the header
            `OK 123456 <64 hex digits>\n`. The client's first `recv(1024)` returned 1,024 bytes.
            How many of them are file data?""",
            ["Add up the header's characters, newline included."],
            _check_data_in_first_recv,
            answer="""
            header = b"OK 123456 " + b"0" * 64 + b"\\n"   # OK, 6 digits, 64 hex, 2 spaces, \\n
            check(1, 1024 - len(header))""",
            why="""The header is 2 + 1 + 6 + 1 + 64 + 1 = 75 bytes, so the other 1,024 - 75 =
            949 bytes of that first recv are the start of the file: a client keeps them, and
            never assumes that a recv holds only the header.""",
        ),
        2: Exercise(
            r"""
            Write `split_replies(stream)`, returning the list of bodies in a byte string
            that holds several `OK <size> <sha256>\n<body>` replies back to back. (Bodies may
            contain anything, newlines and the letters `OK` included.)""",
            [
                "header, _, rest = stream.partition(b'\\n')",
                "size = int(header.split()[1]); the body is rest[:size]",
            ],
            _check_split_replies,
            answer=worked(2, split_replies),
            why="""A header ends at the first newline, but a body may hold anything, newlines
            and 'OK' included: the size in its header, not its content, says where it ends. So
            take exactly `size` bytes after each header, and start again with the rest.""",
        ),
        3: Exercise(
            """
            Which name does the server refuse? (a) `歌词.txt`, (b) `../secret`,
            (c) `notes-2024.txt`. Answer `"a"`, `"b"` or `"c"`.""",
            ["labkit.protocol.check_name decides."],
            _check_refused_name,
            answer="""
            check(3, "b")""",
            why="""A name with a path in it, such as `../secret`, could reach outside the
            served folder, so check_name refuses it (403). Chinese characters, digits and
            dashes make plain names.""",
        ),
        4: Exercise(
            """
            At least how many file descriptors does the server process need to hold
            10,000 clients connected at once?""",
            ["What is a socket, to the operating system?"],
            _check_fds,
            answer="""
            # a socket per client; the listener, the selector, stdin, stdout, stderr
            check(4, 10_000 + 5)""",
            why="""To the operating system a socket is a file descriptor: 10,000 connected
            clients are 10,000 descriptors in the server's process, plus the listening socket
            and a handful more, so its open-file limit (ulimit -n) must be above 10,000.
            selectors_files asks for more: its door keeps room for three per client (the
            socket, a file it sends, an upload) and a reserve, so it holds 10,000 clients at
            once only under a limit above 30,000.""",
        ),
        5: Exercise(
            r"""
            The skill of this lesson: parse incrementally. Write a class `Replies` whose
            `feed(chunk)` takes the bytes of a stream of `OK <size> <sha256>\n<body>` replies,
            in pieces of any size (one byte, half a header, three replies at once), and returns
            the list of bodies that this piece completed (often `[]`). The check feeds it byte
            by byte and in random pieces.""",
            [
                "Keep a buffer in the object: bytes that arrive before they are useful "
                "wait there for the next feed.",
                "Two states: waiting for a header line (look for b'\\n' in the buffer), "
                "or inside a body of <size> bytes (wait until the buffer holds them).",
                "After a body, loop: the same piece may hold the next header too.",
            ],
            _check_replies,
            answer=worked(5, Replies),
            why="""The object keeps what a piece leaves over (half a header, part of a body)
            in its buffer, and remembers whether it waits for a header or is inside a body of
            `size` bytes. Each body is returned from the feed that completes it, and the loop
            goes on, because one piece may hold several replies.""",
        ),
    }
