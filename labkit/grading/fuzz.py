"""Careless and hostile clients, seeded: the grader's fuzz (the ideas of the course's own fuzz
tests, tests/storm.py, for students' servers).

    junk(rng, 5000)                                 # random bytes, odd words, bad UTF-8
    vanish(load, address, data, half_close=False)   # send, then leave with a reset
"""

from __future__ import annotations

import contextlib
import random
import socket

from labkit.grading.core import LoadTrace

__all__ = ["NASTY_NUMBERS", "NASTY_NAMES", "junk", "vanish"]

# Sizes and names that non-ASCII "digits" and long or odd names should never crash.
NASTY_NUMBERS = ["²", "①", "٣", "１２", "-1", "+5", " 7", "1e3", "0x10", "9" * 40, "", "١٠"]
NASTY_NAMES = ["é" * 128, "a" * 300, "😀" * 70, "..", ".", "a/b", "\\x", "\x00", "x\ud800"]
RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends a reset


def junk(rng: random.Random, size: int) -> bytes:
    """``size`` random bytes, with newlines, protocol words and nasty numbers and names mixed
    in, as fuzzers send."""
    parts, total = [], 0
    while total < size:
        kind = rng.random()
        if kind < 0.4:
            parts.append(rng.randbytes(rng.randint(1, 64)))
        elif kind < 0.7:
            parts.append(rng.choice([b"\n", b"\r\n", b" ", b"\x00", b"\xff\xfe"]))
        else:
            word = rng.choice(["GET", "PUT", "LIST", "OK", "ERR", *NASTY_NUMBERS, *NASTY_NAMES])
            parts.append(word.encode("utf-8", "surrogatepass"))
        total += len(parts[-1])
    return b"".join(parts)[:size]


def vanish(load: LoadTrace, address: tuple[str, int], data: bytes, half_close: bool) -> None:
    """Connect, send ``data`` (as much as the server takes within 2 s), then leave without
    reading: by half-closing then closing, or by a reset."""
    with contextlib.suppress(OSError), load.connect(address, timeout=2) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
