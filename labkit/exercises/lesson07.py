"""Lesson 07's exercises: select, poll and epoll."""

from __future__ import annotations

import re
import select
import selectors
import socket
from collections.abc import Callable
from typing import Any

from labkit.exercises import Exercise, NotYet, worked


def send_some(sock, buffer):
    try:
        sent = sock.send(buffer)  # takes what fits in the kernel's buffer, says how much
    except BlockingIOError:  # nothing fits right now
        return 0
    del buffer[:sent]  # keep exactly the rest for the next call
    return sent


def _send_some_sliced(sock, buffer):
    """Also right: send at most 64 KiB per call, and cut the buffer with a slice assignment."""
    try:
        sent = sock.send(memoryview(buffer)[:65536])
    except (BlockingIOError, InterruptedError):
        sent = 0
    buffer[:] = buffer[sent:]
    return sent


def _send_some_until_full(sock, buffer):
    """Also right: keep sending until the kernel takes no more, return the total."""
    total = 0
    while buffer:
        try:
            sent = sock.send(buffer)
        except BlockingIOError:
            break
        del buffer[:sent]
        total += sent
    return total


def _send_some_forgets(sock, buffer):  # wrong: never drops what was sent
    try:
        return sock.send(buffer)
    except BlockingIOError:
        return 0


def _send_some_raises(sock, buffer):  # wrong: a full socket raises, not 0
    sent = sock.send(buffer)
    del buffer[:sent]
    return sent


def _send_some_drops_all(sock, buffer):  # wrong: what send did not take is lost
    try:
        sent = sock.send(buffer)
    except BlockingIOError:
        return 0
    buffer.clear()
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


def _calls_named(answer: Any) -> set[str]:
    """The calls an answer names: select.epoll, selectors.EpollSelector, "EpollSelector",
    "epoll stays flat" all name epoll (a module prefix such as select. is not a call)."""
    if answer in (select.epoll, selectors.EpollSelector):
        return {"epoll"}
    text = re.sub(r"\b(select|selectors)\.", "", str(answer).lower())
    return {_CALLS[word] for word in re.findall(r"[a-z]+", text) if word in _CALLS}


def _check_flat_cost(answer: Any) -> str:
    named = _calls_named(answer)
    if len(named) > 1:
        raise NotYet(
            f"your answer names {', '.join(sorted(named))}: name the one whose cost stays flat."
        )
    if named != {"epoll"}:
        raise NotYet("look at the log-log plot: which line stays flat?")
    return "epoll keeps the watched set in the kernel and returns only ready sockets."


def _check_edge(answer: Any) -> str:
    words = re.findall(r"[a-z]+", str(answer).lower())  # "No: nothing new arrived" too
    said_no = (
        answer is False
        or answer == 0
        or bool(words)
        and words[0] in ("false", "no", "n", "nope", "not", "never")
    )
    if not said_no:
        raise NotYet("edge-triggered reports changes; with no new data, what changed?")
    return "no new edge, no event: with EPOLLET, read until EAGAIN or the rest waits forever."


def _check_windows(answer: Any) -> str:
    """A letter, "(a)" or "a) because ...", or a sentence that names select's limit."""
    text = str(answer).strip().lower()
    letter = re.match(r"\(?([abc])\)?(?![a-z])", text)
    if letter:
        right = letter[1] == "a"
    else:
        right = bool(re.search(r"\bselect\b|512|fd_setsize", text)) and not re.search(
            r"\bports?\b|\bthreads?\b", text
        )
    if not right:
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
            also_correct=[
                lambda: "EpollSelector",
                lambda: selectors.EpollSelector,
                lambda: "select.epoll()",
                lambda: "epoll stays flat",
            ],
            wrong=[
                lambda: "poll",
                lambda: "select",
                lambda: "kqueue",
                lambda: "PollSelector",
                lambda: "select and poll",
            ],
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
            also_correct=[lambda: _send_some_sliced, lambda: _send_some_until_full],
            wrong=[
                lambda: _send_some_forgets,
                lambda: _send_some_raises,
                lambda: _send_some_drops_all,
            ],
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
            server reads until BlockingIOError (EAGAIN), or the rest waits forever.""",
            also_correct=[
                lambda: "no",
                lambda: 0,
                lambda: "No: nothing new arrived, so there is no new edge",
            ],
            wrong=[lambda: True, lambda: "yes", lambda: 1, lambda: "Yes, 6 bytes are still unread"],
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
            also_correct=[
                lambda: "(a)",
                lambda: "a) DefaultSelector is select, 512 sockets at most",
                lambda: "select's FD_SETSIZE is 512 on Windows",
            ],
            wrong=[
                lambda: "b",
                lambda: "c",
                lambda: "(b) it ran out of ports",
                lambda: "too many threads",
            ],
        ),
    }
