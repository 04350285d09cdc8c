"""Lesson 06's exercises: a gevent socket server."""
from __future__ import annotations

from typing import Any, Callable

from labkit.exercises.core import NotYet, Exercise, close_to


def _handle_reference(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _check_handle(fn: Callable) -> str:
    import socket
    import threading
    server_side, client = socket.socketpair()
    client.settimeout(2)

    def run():
        try:
            fn(server_side)
        except OSError:                      # we close its socket if it spins: that ends it
            pass

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        client.sendall(b"ping")
        echoed = client.recv(100)
    except OSError as err:
        raise NotYet(f"no echo came back ({type(err).__name__}).") from None
    finally:
        client.shutdown(socket.SHUT_WR)               # the client is done
    worker.join(1.0)
    if worker.is_alive():
        server_side.close()                  # stop the spinning thread
        raise NotYet("after the client closed, handle() kept running: it spins on b''. "
                     "Stop when recv returns b''.")
    client.close()
    if echoed != b"ping":
        raise NotYet(f"sent b'ping', got back {echoed!r}.")
    return "it echoes, and returns as soon as recv() says the client has closed."


def _check_pool_rounds(answer: Any) -> str:
    if not close_to(answer, 1.0, 0.1):
        raise NotYet(f"{answer} s. At most 10 at a time, each 0.1 s: how many rounds?")
    return "100 clients, 10 at a time, 0.1 s each: 10 rounds, about 1 s."


def _check_eof_value(answer: Any) -> str:
    if answer != b"":
        raise NotYet(f"{answer!r}? Look at the test in gevent_echo's handler.")
    return "b'' (empty bytes) means the peer closed; it is returned at once, every time."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise("Write handle(conn): echo everything the client sends, and return when the "
                    "client closes. (It is tested with a plain thread and a socketpair.)",
                    ["recv returns b'' once the other side has closed.",
                     "while data := conn.recv(65536): conn.sendall(data)"],
                    _check_handle, lambda: _handle_reference),
        2: Exercise("A StreamServer with spawn=Pool(10) gets 100 clients at once; each keeps its "
                    "handler busy 0.1 s. About how many seconds until all are served?",
                    ["Pool(10): an 11th handler starts only when one of the 10 ends."],
                    _check_pool_rounds, lambda: 1.0),
        3: Exercise("What does sock.recv(1024) return once the other side has closed the "
                    "connection (and everything it sent has been read)?",
                    ["Try it: a, b = socket.socketpair(); b.close(); a.recv(1024)"],
                    _check_eof_value, lambda: b""),
    }
