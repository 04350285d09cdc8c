"""Lesson 06 (a gevent socket server): answers in other styles, and wrong ones."""

import time


def handle_recv_into(conn):
    buffer = bytearray(4096)
    while True:
        n = conn.recv_into(buffer)
        if n == 0:
            break
        conn.sendall(memoryview(buffer)[:n])
    conn.close()


def handle_makefile(conn):
    with conn, conn.makefile("rwb") as stream:
        for chunk in iter(lambda: stream.read1(65536), b""):
            stream.write(chunk)
            stream.flush()


def handle_send_loop(conn):
    try:
        while True:
            data = conn.recv(1024)
            if not data:
                return
            while data:  # send returns how much it took: send the rest too
                data = data[conn.send(data) :]
    finally:
        conn.close()


def handle_one_recv(conn):
    """Wrong: one recv is not the whole stream."""
    conn.sendall(conn.recv(65536))
    conn.close()


def handle_spinning(conn):
    """Wrong: the lesson's bug, never stops on b""."""
    while True:
        data = conn.recv(65536)
        conn.sendall(data)


def handle_echo_at_eof(conn):
    """Wrong: reads to the end first, so a client waiting for its echo waits forever."""
    data = bytearray()
    while chunk := conn.recv(65536):
        data += chunk
    conn.sendall(data)
    conn.close()


def handle_never_returns(conn):
    """Wrong: echoes, but waits forever once the client has closed."""
    while True:
        data = conn.recv(65536)
        if data:
            conn.sendall(data)
        else:
            time.sleep(0.01)


class Echo:
    """A callable object: the same loop as the worked answer, as a method."""

    def __init__(self, size=4096):
        self.size = size

    def __call__(self, conn):
        with conn:
            for chunk in iter(lambda: conn.recv(self.size), b""):
                conn.sendall(chunk)


CORRECT = {
    1: {
        "recv_into a buffer": lambda: handle_recv_into,
        "a file object": lambda: handle_makefile,
        "send until all is sent": lambda: handle_send_loop,
        "a callable object": lambda: Echo(),
    },
    2: {
        "a whole number": lambda: 1,
        "a little more": lambda: 1.1,
        "a string": lambda: "1.05",
        "milliseconds, with the unit": lambda: "1000 ms",
    },
    3: {
        "written": lambda: "b''",
        "in words": lambda: "empty bytes",
        "a sentence": lambda: 'An empty bytes object, b""',
    },
}

WRONG = {
    1: {
        "one recv": lambda: handle_one_recv,
        "never stops on b''": lambda: handle_spinning,
        "echoes only at the end": lambda: handle_echo_at_eof,
        "never returns": lambda: handle_never_returns,
    },
    2: {
        "one round": lambda: 0.1,
        "one after another": lambda: 10,
        "half": lambda: 0.5,
        "milliseconds without the unit": lambda: 1000,
    },
    3: {
        "a newline": lambda: b"\n",
        "a str": lambda: "",
        "zero": lambda: 0,
        "a bytearray": lambda: bytearray(),
        "a string in words": lambda: "an empty string",
        "None": lambda: "None",
    },
}
