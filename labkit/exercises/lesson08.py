"""Lesson 08's exercises: the selectors file server."""
from __future__ import annotations

from typing import Any, Callable

from labkit.exercises.core import NotYet, Exercise


def _check_data_in_first_recv(answer: Any) -> str:
    if answer != 951:
        raise NotYet(f"{answer}. Count the header: 'OK', a space, '1989', a space, 64 hex "
                     "digits, and the newline.")
    return "73 bytes of header, so 951 bytes of the file came with it: never assume they don't."


def _split_replies_reference(stream: bytes) -> list[bytes]:
    bodies = []
    while stream:
        header, _, rest = stream.partition(b"\n")
        size = int(header.split()[1])
        bodies.append(rest[:size])
        stream = rest[size:]
    return bodies


def _check_split_replies(fn: Callable) -> str:
    import hashlib
    import random
    rng = random.Random(8)
    for _ in range(20):
        bodies = [rng.randbytes(rng.randint(0, 300)) + b"\n OK 5 " for _ in range(rng.randint(1, 5))]
        stream = b"".join(f"OK {len(b)} {hashlib.sha256(b).hexdigest()}\n".encode() + b
                          for b in bodies)
        got = fn(stream)
        if got != bodies:
            raise NotYet("the bodies came out wrong. A body may contain newlines and even 'OK': "
                         "after a header, take exactly <size> bytes, whatever they are.")
    return "the length in the header, not the content, says where each body ends."


def _check_refused_name(answer: Any) -> str:
    if str(answer).strip().lower() != "b":
        raise NotYet("two of them are plain names, Chinese characters included.")
    return "a name with a path in it could reach outside the served folder: refused with 403."


def _check_fds(answer: Any) -> str:
    if not 10_000 <= int(answer) <= 10_100:
        raise NotYet(f"{answer}. Each connected client is one socket, and a socket is a file "
                     "descriptor, in the server's process.")
    return "10,000 sockets plus a handful (the listener, the selector, stdin...): ulimit -n matters."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise("A GET reply's header is 'OK 1989 <64 hex digits>\\n'. The client's first "
                    "recv(1024) returned 1024 bytes. How many of them are file data?",
                    ["Add up the header's characters, newline included."],
                    _check_data_in_first_recv, lambda: 951),
        2: Exercise("Write split_replies(stream) -> list of bodies, for a byte string holding "
                    "several 'OK <size> <sha256>\\n<body>' replies back to back.",
                    ["header, _, rest = stream.partition(b'\\n')",
                     "size = int(header.split()[1]); the body is rest[:size]"],
                    _check_split_replies, lambda: _split_replies_reference),
        3: Exercise("Which name does the server refuse? (a) 歌词.txt (b) ../secret "
                    "(c) notes-2024.txt", ["labkit.protocol.check_name decides."],
                    _check_refused_name, lambda: "b"),
        4: Exercise("At least how many file descriptors does the server process need to hold "
                    "10,000 clients connected at once?",
                    ["What is a socket, to the operating system?"], _check_fds, lambda: 10_005),
    }
