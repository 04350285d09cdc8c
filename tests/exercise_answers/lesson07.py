"""Lesson 07 (select, poll and epoll): answers in other styles, and wrong ones."""

import selectors


def send_some_sliced(sock, buffer):
    """Also right: send at most 64 KiB per call, and cut the buffer with a slice assignment."""
    try:
        sent = sock.send(memoryview(buffer)[:65536])
    except (BlockingIOError, InterruptedError):
        sent = 0
    buffer[:] = buffer[sent:]
    return sent


def send_some_until_full(sock, buffer):
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


class SendSome:
    """A callable object that sends a memoryview, so no copy of the buffer is made."""

    def __call__(self, sock, buffer):
        try:
            sent = sock.send(memoryview(buffer))
        except BlockingIOError:
            return 0
        buffer[:sent] = b""
        return sent


def send_some_forgets(sock, buffer):  # wrong: never drops what was sent
    try:
        return sock.send(buffer)
    except BlockingIOError:
        return 0


def send_some_raises(sock, buffer):  # wrong: a full socket raises, not 0
    sent = sock.send(buffer)
    del buffer[:sent]
    return sent


def send_some_drops_all(sock, buffer):  # wrong: what send did not take is lost
    try:
        sent = sock.send(buffer)
    except BlockingIOError:
        return 0
    buffer.clear()
    return sent


CORRECT = {
    1: {
        "the selector's name": lambda: "EpollSelector",
        "the selector class": lambda: selectors.EpollSelector,
        "the call": lambda: "select.epoll()",
        "a sentence": lambda: "epoll stays flat",
        "a sentence naming the others": lambda: "select and poll grow, but epoll stays flat",
    },
    2: {
        "64 KiB at most, sliced": lambda: send_some_sliced,
        "until the socket is full": lambda: send_some_until_full,
        "a callable object": lambda: SendSome(),
    },
    3: {
        "no": lambda: "no",
        "zero": lambda: 0,
        "a sentence": lambda: "No: nothing new arrived, so there is no new edge",
    },
    4: {
        "a letter in brackets": lambda: "(a)",
        "a letter and a reason": lambda: "a) DefaultSelector is select, 512 sockets at most",
        "a sentence": lambda: "select's FD_SETSIZE is 512 on Windows",
    },
}

WRONG = {
    1: {
        "poll": lambda: "poll",
        "select": lambda: "select",
        "not on Linux": lambda: "kqueue",
        "poll's selector": lambda: "PollSelector",
        "two of them": lambda: "select and poll",
    },
    2: {
        "never drops what was sent": lambda: send_some_forgets,
        "raises when full": lambda: send_some_raises,
        "drops what was not sent": lambda: send_some_drops_all,
    },
    3: {
        "True": lambda: True,
        "yes": lambda: "yes",
        "one": lambda: 1,
        "a sentence": lambda: "Yes, 6 bytes are still unread",
    },
    4: {
        "ports": lambda: "b",
        "threads": lambda: "c",
        "ports, with a reason": lambda: "(b) it ran out of ports",
        "threads, in words": lambda: "too many threads",
    },
}
