"""gevent's WSGI server with deadlines and the accept policy: what latency_http needs to serve
HTTP safely, apart from its idea (slow pages).

* ``serve_app(listener, app, header_timeout, client_timeout)``: a client gets
  ``header_timeout`` seconds for its request line and as long again for its headers; a
  connection silent (or not reading) for ``client_timeout`` seconds, also between kept-alive
  requests, is closed. Clients come in through a ``Door`` (labkit/accept_policy.py), which may
  close the kept-alive connection idle longest to make room (as nginx does).
* ``reply``: a status line, a body and its length; ``number`` and ``first`` read the query
  string, and ``BadRequest`` says what was wrong with it.

Import it after ``gevent.monkey.patch_all()``, as the server does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

from labkit.accept_policy import AcceptsThroughDoor

__all__ = ["serve_app", "reply", "number", "first", "BadRequest", "STATUS_TEXT"]

STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}


class BadRequest(ValueError):
    """What was wrong with a request's query: the server answers 400 with this message."""


class DeadlineHandler(WSGIHandler):
    """gevent's request handler with deadlines: a slow or silent client cannot hold a greenlet
    and a descriptor for ever."""

    header_timeout = client_timeout = 10.0  # set by serve_app

    def handle(self) -> None:
        self.socket.settimeout(self.client_timeout)  # every recv and send on this connection
        super().handle()

    def read_requestline(self) -> Any:
        with self.server.between_requests(self.socket):  # the door may close it meanwhile
            self.rfile.peek(1)  # idle keep-alive: wait (client_timeout at most) for a request
        with gevent.Timeout(self.header_timeout, TimeoutError("request line too slow")):
            return super().read_requestline()

    def read_request(self, raw_requestline: Any) -> Any:
        with gevent.Timeout(self.header_timeout, BadRequest("headers too slow")):
            return super().read_request(raw_requestline)


class DoorWSGIServer(AcceptsThroughDoor, WSGIServer):
    """The door closes a connection only between requests: its handler, waiting for a request
    line, ends quietly."""


def serve_app(listener: Any, app: Callable, header_timeout: float, client_timeout: float) -> None:
    """Serve the WSGI ``app`` on ``listener`` until stopped, with those deadlines."""
    DeadlineHandler.header_timeout = header_timeout
    DeadlineHandler.client_timeout = client_timeout
    server = DoorWSGIServer(listener, app, log=None, error_log=None, handler_class=DeadlineHandler)
    server.serve_forever()


def reply(start_response: Callable, status: int, body: bytes, content_type: str) -> list[bytes]:
    start_response(
        f"{status} {STATUS_TEXT[status]}",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def first(query: dict[str, list[str]], key: str, default: Any) -> Any:
    """The first value of ``key`` in a parsed query string, or ``default``."""
    return query.get(key, [default])[0]


def number(query: dict[str, list[str]], key: str, default: float, upper: float) -> float:
    """``key``'s value as a number from 0 to ``upper``, or ``default``; BadRequest otherwise."""
    text = first(query, key, None)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{key}={text!r} is not a number") from None
    if not 0 <= value <= upper:
        raise BadRequest(f"{key}={value} is outside 0..{upper}")
    return value
