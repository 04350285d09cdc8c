"""Step 1: an event loop of callbacks on a selector.

Every socket is non-blocking, so no call ever waits. Instead, each socket is registered with the
selector together with the function to call when it is ready, and one loop asks the selector
"who is ready?" and calls those functions. N pages download at once, on one thread.

    python -m labkit.eventloop.callbacks -n 20
"""

from __future__ import annotations

import selectors
import socket

from labkit.eventloop import body_of, command_line, http_get_request


class Fetcher:
    """One download, written as callbacks: each method runs when its socket is ready."""

    def __init__(self, url: str, selector: selectors.BaseSelector, on_done) -> None:
        self.address, self.outgoing = http_get_request(url)
        self.selector, self.on_done = selector, on_done
        self.response = bytearray()
        self.sock = socket.socket()
        self.sock.setblocking(False)  # no call on it will ever wait

    def start(self) -> None:
        self.sock.connect_ex(self.address)  # returns at once: "in progress"
        self.selector.register(self.sock, selectors.EVENT_WRITE, self.writable)

    def writable(self) -> None:  # connected, or able to send more
        if err := self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            raise ConnectionError(f"connect to {self.address} failed: errno {err}")
        sent = self.sock.send(self.outgoing)  # writable: takes at least something
        self.outgoing = self.outgoing[sent:]
        if not self.outgoing:  # request sent: now wait to read
            self.selector.modify(self.sock, selectors.EVENT_READ, self.readable)

    def readable(self) -> None:
        chunk = self.sock.recv(65536)  # readable: returns at once
        if chunk:
            self.response += chunk
            return
        self.selector.unregister(self.sock)  # b"": the server closed, all here
        self.close()
        self.on_done(self)

    def close(self) -> None:
        self.sock.close()  # closing twice does no harm


def fetch_many(urls: list[str]) -> list[bytes]:
    finished: list[Fetcher] = []
    with selectors.DefaultSelector() as selector:
        fetchers: list[Fetcher] = []
        try:
            for url in urls:
                fetchers.append(Fetcher(url, selector, finished.append))
                fetchers[-1].start()
            while len(finished) < len(fetchers):  # the event loop
                events = selector.select(timeout=30)
                if not events:
                    raise TimeoutError("no socket became ready within 30 s")
                for key, _ in events:
                    key.data()  # call the registered callback
        finally:  # done or failed: no socket left open
            for f in fetchers:
                f.close()
    return [body_of(bytes(f.response)) for f in fetchers]


if __name__ == "__main__":
    command_line(fetch_many, __doc__)
