"""Lesson 07's exercises: select, poll and epoll."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any

from labkit.exercises import Exercise, NotYet, chosen_option, worked


def send_some(sock, buffer):
    try:
        sent = sock.send(buffer)  # takes what fits in the kernel's buffer, says how much
    except BlockingIOError:  # nothing fits right now
        return 0
    del buffer[:sent]  # keep exactly the rest for the next call
    return sent


def _drain(sock: socket.socket, into: bytearray) -> None:
    sock.setblocking(False)
    try:
        while chunk := sock.recv(65536):  # non-blocking: stops with BlockingIOError
            into += chunk
    except BlockingIOError:
        pass


def _fill_until_full(fn: Callable, sock: socket.socket, buffer: bytearray) -> None:
    """Call fn while nobody reads: it must report 0, and keep the buffer, once nothing fits."""
    for _ in range(10_000):
        before = bytes(buffer)
        sent = fn(sock, buffer)
        if sent == 0:
            if bytes(buffer) != before:
                raise NotYet("send_some returned 0 but changed the buffer.")
            return
        if sent is None or before[sent:] != bytes(buffer):
            raise NotYet(
                f"send_some returned {sent!r} but the buffer shrank by "
                f"{len(before) - len(buffer)}: return what was sent, and remove "
                "exactly that from the front of the buffer."
            )
    raise NotYet("the socket never filled up: does send_some send anything?")


def _check_send_some(fn: Callable) -> str:
    import os

    a, b = socket.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        a.setblocking(False)
        original = os.urandom(1 << 20)
        buffer, received, rounds = bytearray(original), bytearray(), 0
        _fill_until_full(fn, a, buffer)  # nobody reads yet: the socket fills up
        while buffer and rounds < 10_000:
            _drain(b, received)
            before = bytes(buffer)
            sent = fn(a, buffer)
            if sent is None or before[sent:] != bytes(buffer):
                raise NotYet(
                    f"send_some returned {sent!r} but the buffer shrank by "
                    f"{len(before) - len(buffer)}: return what was sent, and remove "
                    "exactly that from the front of the buffer."
                )
            rounds += 1
        _drain(b, received)
        if rounds <= 1:
            raise NotYet("everything went in one send: it should not, with a 4 KiB buffer.")
        if bytes(received) != original or buffer:
            raise NotYet("bytes were lost or reordered: keep buffer[sent:] for the next call.")
    return f"1 MiB went through a small socket buffer in {rounds} partial sends, nothing lost."


_CALLS = {
    "select": "select",
    "poll": "poll",
    "epoll": "epoll",
    "selectselector": "select",
    "pollselector": "poll",
    "epollselector": "epoll",
    "devpoll": "devpoll",
    "kqueue": "kqueue",
    "kqueueselector": "kqueue",
}


def _calls_named(text: str) -> list[str]:
    """The calls a text names, in order: select.epoll, selectors.EpollSelector,
    "EpollSelector", "epoll stays flat" all name epoll (a module prefix such as select. is not
    a call)."""
    text = re.sub(r"\b(select|selectors)\.", "", text.lower())
    return [_CALLS[word] for word in re.findall(r"[a-z]+", text) if word in _CALLS]


def _check_flat_cost(answer: Any) -> str:
    text = str(answer).lower()  # selectors.EpollSelector, the class, reads as its name too
    # "select and poll grow, but epoll stays flat": judge the clause that says "flat"
    clauses = re.split(r"\b(?:not|unlike|but|while|whereas|than|instead)\b", text)
    flat = [c for c in clauses if re.search(r"\b(?:flat|constant|stays|same)\b", c)]
    named = set(_calls_named(flat[0] if flat else clauses[0])) or set(_calls_named(text))
    if len(named) > 1:
        raise NotYet(
            f"your answer names {', '.join(sorted(named))}: name the one whose cost stays flat."
        )
    if named != {"epoll"}:
        raise NotYet("look at the log-log plot: which line stays flat?")
    return "epoll keeps the watched set in the kernel and returns only ready sockets."


def _check_edge(answer: Any) -> str:
    if isinstance(answer, bool | int):
        said_no = not answer
    else:  # the first yes or no of a sentence: "No: nothing new arrived", "It does not"
        words = re.findall(r"[a-z]+", str(answer).lower())
        first = next((w for w in words if w in _YES | _NO), None)
        said_no = first in _NO
    if not said_no:
        raise NotYet("edge-triggered reports changes; with no new data, what changed?")
    return "no new edge, no event: with EPOLLET, read until EAGAIN, or the rest waits for new data."


_YES = {"true", "yes", "y", "yep", "again"}
_NO = {"false", "no", "n", "nope", "not", "never", "nothing", "doesn", "didn", "won", "isn"}
_WINDOWS = {"a": "fd_setsize", "b": "out of ports", "c": "threads were too many"}


def _check_windows(answer: Any) -> str:
    """A letter, "(a)" or "a) because ...", or a sentence that names select's limit."""
    text = str(answer).strip().lower()
    letter = chosen_option(text, _WINDOWS)
    if letter is None and not re.search(r"\bports?\b|\bthreads?\b", text):
        letter = "a" if re.search(r"\bselect\b|512|fd_setsize", text) else None
    if letter != "a":
        raise NotYet("the error message was 'too many file descriptors in select()'.")
    return (
        "DefaultSelector is select on Windows, where Python's FD_SETSIZE is 512 sockets; "
        "Linux's select stops at descriptor 1024."
    )


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            Which call's cost stays flat as the number of watched sockets grows:
            `"select"`, `"poll"` or `"epoll"`?""",
            ["The figure of the cost section."],
            _check_flat_cost,
            answer="""
            check(1, "epoll")""",
            why="""select and poll hand the kernel the whole list of watched sockets on every
            call, and it scans them all, so their cost grows with the list. epoll keeps the
            watched set in the kernel and returns only the ready sockets: its cost stays
            flat.""",
        ),
        2: Exercise(
            """
            Write `send_some(sock, buffer)` for a non-blocking socket: send what the
            kernel takes, remove exactly that from the front of the `bytearray`, and return the
            count (0 if nothing fits).""",
            [
                "sent = sock.send(buffer); del buffer[:sent]",
                "send raises BlockingIOError when nothing fits.",
            ],
            _check_send_some,
            answer=worked(2, send_some),
            why="""On a non-blocking socket, send takes only what fits in the kernel's buffer
            and returns how much that was; `del buffer[:sent]` keeps exactly the rest, in
            order, for the next call. BlockingIOError means nothing fitted: 0 sent, buffer
            unchanged.""",
        ),
        3: Exercise(
            """
            Edge-triggered epoll reported `EPOLLIN` for 10 bytes; you read 4. If nothing
            new arrives, does the next `poll()` report the socket again? Answer `True` or
            `False`.""",
            ["The edge- vs level-triggered section has this exact experiment."],
            _check_edge,
            answer="""
            import select
            import socket

            a, b = socket.socketpair()
            a.setblocking(False)       # as an epoll server's sockets are: recv never waits
            with a, b, select.epoll() as ep:
                ep.register(a, select.EPOLLIN | select.EPOLLET)
                b.send(b"0123456789")
                ep.poll(1)             # the edge: 10 bytes arrived
                a.recv(4)              # read 4; 6 are left
                again = ep.poll(0.1)   # nothing new arrives
            check(3, bool(again))""",
            why="""Edge-triggered epoll reports changes: 10 bytes arriving is an edge, 6 bytes
            still unread are not. With nothing new, the next poll is silent, so with EPOLLET a
            server reads until BlockingIOError (EAGAIN). Otherwise the rest waits until new data
            brings a new edge: forever, if the client waits for its answer first.""",
        ),
        4: Exercise(
            """
            Why did the original course's selectors server fail at about 500 clients on
            Windows? (a) its `DefaultSelector` there is select, which takes at most 512 sockets
            on Windows, (b) the machine ran out of ports, (c) 500 threads were too many for
            Windows. Answer `"a"`, `"b"` or `"c"`.""",
            ["Read the error message of the select section again."],
            _check_windows,
            answer="""
            check(4, "a")""",
            why="""The error was "too many file descriptors in select()": on Windows,
            DefaultSelector is select, and Python builds it there for at most 512 sockets
            (FD_SETSIZE), so the server failed near 500 clients. Linux's select stops at
            descriptor 1024.""",
        ),
    }
