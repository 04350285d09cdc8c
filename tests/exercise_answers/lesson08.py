"""Lesson 08 (the selectors file server): answers in other styles, and wrong ones."""

import io

from labkit.exercises.lesson08 import split_replies


def split_replies_by_offset(stream: bytes) -> list[bytes]:
    """Also right: walk an offset instead of slicing the stream down."""
    bodies, at = [], 0
    while at < len(stream):
        end = stream.index(b"\n", at)
        size = int(stream[at:end].split(b" ")[1])
        bodies.append(stream[end + 1 : end + 1 + size])
        at = end + 1 + size
    return bodies


def split_replies_file_like(stream: bytes) -> list[bytes]:
    """Also right: read it like a file, a header line then exactly <size> bytes."""
    f, bodies = io.BytesIO(stream), []
    while header := f.readline():
        bodies.append(f.read(int(header.decode().split()[1])))
    return bodies


def split_replies_lazily(stream: bytes):
    """Also right: yield each body as it is found (a generator, not a list)."""
    while stream:
        header, _, rest = stream.partition(b"\n")
        size = int(header.split()[1])
        yield rest[:size]
        stream = rest[size:]


class RepliesCounting:
    """Also right: a state machine that counts the body bytes still missing."""

    def __init__(self):
        self.header, self.body, self.missing = b"", b"", None

    def feed(self, chunk):
        done = []
        while chunk or self.missing == 0:
            if self.missing is None:
                line, newline, chunk = chunk.partition(b"\n")
                self.header += line
                if newline:
                    self.missing, self.body = int(self.header.split()[1]), b""
                    self.header = b""
            else:
                take = chunk[: self.missing]
                self.body, chunk, self.missing = (
                    self.body + take,
                    chunk[len(take) :],
                    self.missing - len(take),
                )
                if self.missing == 0:
                    done.append(self.body)
                    self.missing = None
        return done


class RepliesOnLabkitParser:
    """Also right: let the lesson's own protocol.Parser do the framing."""

    def __init__(self):
        from labkit.protocol import Parser

        self.parser, self.body = Parser("response"), b""

    def feed(self, chunk):
        from labkit.protocol import Body, End

        done = []
        for event in self.parser.feed(chunk):
            if isinstance(event, Body):
                self.body += event.data
            elif isinstance(event, End):
                done.append(self.body)
                self.body = b""
        return done


class RepliesPerChunk:  # wrong: forgets what the last chunk left
    def feed(self, chunk):
        try:
            return split_replies(chunk)
        except (ValueError, IndexError):
            return []


class RepliesByLines:  # wrong: a body is not one line
    def __init__(self):
        self.buffer = b""

    def feed(self, chunk):
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line for line in lines if not line.startswith(b"OK ")]


CORRECT = {
    1: {
        "a float": lambda: 949.0,
        "worked out": lambda: "1,024 - 75 = 949 bytes",
        "the result first": lambda: "949 (the header takes 75 of the 1,024)",
    },
    2: {
        "an offset": lambda: split_replies_by_offset,
        "a file object": lambda: split_replies_file_like,
        "a generator": lambda: split_replies_lazily,
    },
    3: {
        "the name": lambda: "../secret",
        "a capital": lambda: "B",
        "a letter and a reason": lambda: "(b) ../secret: its path leads out of the folder",
    },
    4: {
        "the clients and the listener": lambda: 10_001,
        "a string": lambda: "10,000",
        "a sentence": lambda: "10,001: one per client, plus the listener",
    },
    5: {
        "counting what is missing": lambda: RepliesCounting,
        "on labkit's parser": lambda: RepliesOnLabkitParser,
    },
}

WRONG = {
    1: {
        "all of it": lambda: 1024,
        "all but the newline": lambda: 1023,
        "the header": lambda: 75,
        "a header of 73": lambda: 951,
        "the header, in words": lambda: "75 bytes of header",
    },
    2: {
        "split at OK": lambda: (
            lambda stream: [part.split(b"\n", 1)[1] for part in stream.split(b"OK ")[1:]]
        ),
        "split at newlines": lambda: lambda stream: stream.split(b"\n")[1::2],
    },
    3: {
        "Chinese characters": lambda: "a",
        "digits and a dash": lambda: "c",
        "a's name": lambda: "歌词.txt",
        "c's name": lambda: "notes-2024.txt",
        "two names": lambda: "../secret or 歌词.txt",
    },
    4: {
        "select's limit": lambda: 1024,
        "twice": lambda: 20_000,
        "one": lambda: 1,
        "a tenth": lambda: "about 1,000",
    },
    5: {
        "forgets what a chunk leaves": lambda: RepliesPerChunk,
        "a body is not one line": lambda: RepliesByLines,
    },
}
