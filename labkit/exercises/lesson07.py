"""Lesson 07's exercises: select, poll and epoll."""
from __future__ import annotations

from typing import Any, Callable

from labkit.exercises.core import NotYet, Exercise


def _send_some_reference(sock, buffer):
    try:
        sent = sock.send(buffer)
    except BlockingIOError:
        return 0
    del buffer[:sent]
    return sent


def _check_send_some(fn: Callable) -> str:
    import os
    import socket
    a, b = socket.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        a.setblocking(False)
        original = os.urandom(1 << 20)
        buffer, received, rounds = bytearray(original), bytearray(), 0
        while buffer and rounds < 10_000:
            before = len(buffer)
            sent = fn(a, buffer)
            if sent is None or before - len(buffer) != sent:
                raise NotYet(f"send_some returned {sent!r} but the buffer shrank by "
                             f"{before - len(buffer)}: return what was sent, and remove "
                             "exactly that from the front of the buffer.")
            b.setblocking(False)
            try:
                while chunk := b.recv(65536):
                    received += chunk
            except BlockingIOError:
                pass
            rounds += 1
        if rounds == 1:
            raise NotYet("everything went in one send: it should not, with a 4 KiB buffer.")
        if bytes(received) != original[:len(received)] or buffer:
            raise NotYet("bytes were lost or reordered: keep buffer[sent:] for the next call.")
    return f"1 MiB went through a small socket buffer in {rounds} partial sends, nothing lost."


def _check_flat_cost(answer: Any) -> str:
    if str(answer).strip().lower() != "epoll":
        raise NotYet("look at the log-log plot: which line stays flat?")
    return "epoll keeps the watched set in the kernel and returns only ready sockets."


def _check_edge(answer: Any) -> str:
    if answer not in (False, "no", "No"):
        raise NotYet("edge-triggered reports changes; with no new data, what changed?")
    return "no new edge, no event: with EPOLLET, read until EAGAIN or the rest waits forever."


def _check_windows(answer: Any) -> str:
    if str(answer).strip().lower() != "a":
        raise NotYet("the error message was 'too many file descriptors in select()'.")
    return "Python's Windows build sets FD_SETSIZE to 512; Linux's select stops at fd 1024."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise("Which call's cost stays flat as the number of watched sockets grows: select, "
                    "poll or epoll?", ["The figure of the cost section."],
                    _check_flat_cost, lambda: "epoll"),
        2: Exercise("Write send_some(sock, buffer) for a non-blocking socket: send what the "
                    "kernel takes, remove exactly that from the front of the bytearray, return "
                    "the count (0 if it would block).",
                    ["sent = sock.send(buffer); del buffer[:sent]",
                     "send raises BlockingIOError when nothing fits."],
                    _check_send_some, lambda: _send_some_reference),
        3: Exercise("Edge-triggered epoll reported EPOLLIN for 10 bytes; you read 4. If nothing "
                    "new arrives, does the next poll() report the socket again? (True/False)",
                    ["The edge- vs level-triggered section has this exact experiment."],
                    _check_edge, lambda: False),
        4: Exercise("Why did the original course's select server fail at about 500 clients on "
                    "Windows? (a) Python's Windows select takes at most 512 sockets, (b) the "
                    "machine ran out of ports, (c) 500 threads were too many for Windows",
                    ["Read the error message of the select section again."],
                    _check_windows, lambda: "a"),
    }
