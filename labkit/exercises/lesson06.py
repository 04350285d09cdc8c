"""Lesson 06's exercises: a gevent socket server."""

from __future__ import annotations

import hashlib
import random
import re
import socket
import threading
from collections.abc import Callable
from typing import Any

from labkit.exercises import Exercise, NotYet, first_reading, worked

FIRST, REST = 1000, 200_000  # bytes the checker sends: a first piece, then more than one recv


# -- exercise 1: handle(conn) ------------------------------------------------------------------
def handle(conn):
    with conn:  # closes the socket when we are done
        while data := conn.recv(65536):  # whatever has arrived; b"" once the client closed
            conn.sendall(data)


def _check_handle(fn: Callable) -> str:
    """Run ``fn`` in a thread on one end of a socketpair; be a client on the other end."""
    server_side, client = socket.socketpair()
    client.settimeout(2)
    worker = threading.Thread(target=_run_quietly, args=(fn, server_side), daemon=True)
    worker.start()
    payload = random.Random(6).randbytes(FIRST + REST)
    try:
        echoed = _talk(client, payload)
        worker.join(2.0)  # it should return soon after our EOF
        if worker.is_alive():
            raise NotYet(
                "after the client closed, handle() kept running (spinning on b'' or "
                "waiting for more). Return when recv returns b''."
            )
        server_side.close()  # the handler may leave it open: that is fine
        echoed += _read_to_eof(client, len(payload) - len(echoed))
    finally:
        _unblock(server_side)
        client.close()
    return _verdict(payload, echoed)


def _run_quietly(fn: Callable, conn: socket.socket) -> None:
    try:
        fn(conn)
    except OSError:  # we shut its socket down to stop it
        pass


def _talk(client: socket.socket, payload: bytes) -> bytes:
    """Send a first piece and wait for its echo, then send the rest; our side then closes.

    Waiting for the first echo makes a one-recv handler fail every time, not only sometimes.
    A thread sends the rest while we read, so a correct handler never blocks on a full buffer."""
    try:
        client.sendall(payload[:FIRST])
        echoed = _read_exactly(client, FIRST)
    except OSError as err:
        raise NotYet(
            f"sent {FIRST} bytes, no echo came back within 2 s ({type(err).__name__}). "
            "Echo each piece as soon as recv returns it: the client waits for the echo "
            "of its first message before it sends more or closes."
        ) from None

    def send_rest():
        try:
            client.sendall(payload[FIRST:])
            client.shutdown(socket.SHUT_WR)  # the client is done: EOF for the handler
        except OSError:
            pass

    sender = threading.Thread(target=send_rest, daemon=True)
    sender.start()
    echoed += _read_to_eof(client, len(payload) - FIRST, stop=lambda: not sender.is_alive())
    sender.join(2.0)
    return echoed


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))  # the 2 s timeout ends any wait
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _read_to_eof(sock: socket.socket, size: int, stop: Callable[[], bool] = lambda: True) -> bytes:
    """Read up to ``size`` bytes; end early on EOF, or on a timeout once ``stop()`` is true."""
    data = bytearray()
    while len(data) < size:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if stop():
                break
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _unblock(conn: socket.socket) -> None:
    """Wake a handler blocked in recv (close alone does not) so its thread ends."""
    for step in (lambda: conn.shutdown(socket.SHUT_RDWR), conn.close):
        try:
            step()
        except OSError:
            pass


def _verdict(payload: bytes, echoed: bytes) -> str:
    if hashlib.sha256(echoed).digest() != hashlib.sha256(payload).digest():
        if payload.startswith(echoed):
            raise NotYet(
                f"sent {len(payload):,} bytes, {len(echoed):,} came back. One recv "
                "returns whatever has arrived, not the whole stream: keep reading "
                "until recv returns b''."
            )
        raise NotYet("the bytes that came back differ from those sent.")
    return (
        f"all {len(payload):,} bytes came back intact (length and SHA-256), and it returned "
        "once the client had closed."
    )


# -- exercises 2 and 3 -------------------------------------------------------------------------
def _check_pool_rounds(answer: Any) -> str:
    if first_reading(answer, lambda s: 0.9 <= s <= 1.3, "s") is not None:
        return (
            "100 clients, 10 at a time, 0.1 s each: 10 rounds, about 1 s (a little more in "
            "practice)."
        )
    if first_reading(answer, lambda s: 900 <= s <= 1300, "s") is not None:
        raise NotYet(
            f"{answer}: that looks like milliseconds; the question asks for seconds "
            '(write the unit, "1000 ms", if you mean milliseconds).'
        )
    raise NotYet(f"{answer} (seconds)? At most 10 at a time, each 0.1 s: how many rounds?")


def _check_eof_value(answer: Any) -> str:
    if isinstance(answer, str) and _names_empty_bytes(answer):
        answer = b""
    if isinstance(answer, str):
        raise NotYet(f"{answer!r} is a str; sockets deal in bytes.")
    if isinstance(answer, bytearray):
        raise NotYet(f"{answer!r}: recv returns bytes, not a bytearray (recv_into fills one).")
    if answer != b"" or not isinstance(answer, bytes):
        raise NotYet(f"{answer!r}? Look at the test in gevent_echo's handler.")
    return "b'' (empty bytes) means the peer closed; it is returned at once, every time."


def _names_empty_bytes(text: str) -> bool:
    """A written answer: "b''", 'b""', "empty bytes", "an empty bytes object, b''"..."""
    text = text.strip().lower()
    return "b''" in text or 'b""' in text or re.search(r"\bempty bytes\b", text) is not None


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            Write `handle(conn)`: echo each piece of data as soon as it arrives, and
            return when the client closes. (The check runs it in a plain thread against a
            socket pair; like the lesson's clients, it waits for the echo of its first message
            before it sends the rest.)""",
            [
                "recv returns b'' once the other side has closed.",
                "while data := conn.recv(65536): conn.sendall(data)",
            ],
            _check_handle,
            answer=worked(1, handle),
            why="""recv returns whatever has arrived, so echoing each piece at once keeps a
            client that waits for its echo going; sendall sends all of it. recv returns b''
            only once the client has closed: that ends the loop, and `with` closes the
            socket.""",
        ),
        2: Exercise(
            """
            A `StreamServer` with `spawn=Pool(10)` gets 100 clients at once; each keeps
            its handler busy for 0.1 s. About how many seconds until all are served?""",
            ["Pool(10): an 11th handler starts only when one of the 10 ends."],
            _check_pool_rounds,
            answer="""
            check(2, 100 / 10 * 0.1)   # 10 rounds of 10 handlers, 0.1 s each""",
            why="""Pool(10) runs at most 10 handlers at once, and an 11th starts only when one
            of them ends: 100 clients are served in 10 rounds of 0.1 s, about 1 s (a little
            more in practice).""",
        ),
        3: Exercise(
            """
            What does `sock.recv(1024)` return once the other side has closed the
            connection and everything it sent has been read?""",
            ["Try it: a, b = socket.socketpair(); b.close(); a.recv(1024)"],
            _check_eof_value,
            answer="""
            import socket

            a, b = socket.socketpair()
            b.close()                  # the other side closes
            a.settimeout(2)            # a test never waits forever (this recv returns at once)
            with a:
                check(3, a.recv(1024))""",
            why="""Once the other side has closed and everything it sent has been read, recv
            returns b'', empty bytes, at once and every time: that is how a socket says "end
            of stream", so a receive loop stops on it.""",
        ),
    }
