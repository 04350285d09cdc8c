"""A real HTTP/1.1 server that is slow on purpose: it stands in for web sites far away.

It serves the files of ``--root`` at ``/pages/NAME`` after a delay, and fails some requests with
``503 Service Unavailable``. The delay, jitter and error rate have defaults from the command
line and can be set per request in the query string::

    GET /pages/page-48k.html?delay=0.2&jitter=0.05&error_rate=0.1&id=7

Random choices (jitter, errors) are seeded by ``--seed`` and the request's ``id``, so a run can
be repeated exactly. ``GET /_log`` returns the access log as JSON: a list, oldest first, of one
record per request with ``time.time()`` stamps. It keeps the last ``--log-size`` records (older
ones are dropped, so memory stays bounded); ``GET /_log?clear=1`` empties it.

gevent's WSGI server handles each request in its own greenlet, so a thousand requests that are
all waiting out their delay cost a thousand small greenlets, not a thousand threads. Its
defences: a client gets ``--header-timeout`` seconds for its request line and as long again
for its headers; a connection silent (or not reading) for ``--client-timeout`` seconds, also
between kept-alive requests, is closed; error replies are plain text; and clients come in
through a ``Door`` (labkit/accept_policy.py) that keeps descriptors spare, closes the kept-alive
connection idle longest to make room (as nginx does), or stays shut for a moment.

    python -m labkit.servers.latency_http --port 0 --root data/pages --delay 0.2
"""

from gevent import monkey

monkey.patch_all()  # first: the listener that launch creates must be a gevent socket

import collections  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from labkit import accept_policy, launch  # noqa: E402

MAX_DELAY = 30.0
idle = set()  # kept-alive connections waiting for their next request: the door may close them


class BadRequest(ValueError):
    pass


def setup(args):
    """Load the pages before READY, so that a bad --root stops the start with a clear error."""
    root = Path(args.root)
    if not root.is_dir():
        raise launch.SetupError(f"--root {args.root}: no such folder")
    args.pages = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}
    if not args.pages:
        raise launch.SetupError(f"--root {args.root}: no files to serve in it")
    if args.log_size < 0:
        raise launch.SetupError(f"--log-size {args.log_size}: must be 0 or more")


class DeadlineHandler(WSGIHandler):
    """gevent's request handler with deadlines: a slow or silent client cannot hold a greenlet
    and a descriptor for ever."""

    header_timeout = client_timeout = 10.0  # set from the command line in serve()

    def handle(self):
        self.socket.settimeout(self.client_timeout)  # every recv and send on this connection
        super().handle()

    def read_requestline(self):
        idle.add(self.socket)
        try:
            self.rfile.peek(1)  # idle keep-alive: wait (client_timeout at most) for a request
        finally:
            idle.discard(self.socket)
        with gevent.Timeout(self.header_timeout, TimeoutError("request line too slow")):
            return super().read_requestline()

    def read_request(self, raw_requestline):
        with gevent.Timeout(self.header_timeout, BadRequest("headers too slow")):
            return super().read_request(raw_requestline)


class DoorWSGIServer(accept_policy.AcceptsThroughDoor, WSGIServer):
    def close_idle(self, conn):
        """The door's way to make room: close a connection only between requests."""
        if conn not in idle:
            return False
        conn.close()  # its handler, waiting for a request line, ends quietly
        return True


def serve(listener, args):
    DeadlineHandler.header_timeout = args.header_timeout
    DeadlineHandler.client_timeout = args.client_timeout
    app = make_app(args.pages, args)
    DoorWSGIServer(
        listener, app, log=None, error_log=None, handler_class=DeadlineHandler
    ).serve_forever()


def make_app(pages, args):
    access_log = collections.deque(maxlen=args.log_size)  # the oldest records drop off

    def app(environ, start_response):
        started = time.time()
        path = environ.get("PATH_INFO", "")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/_log":
            return reply(
                start_response,
                200,
                json.dumps(read_log(access_log, query)).encode(),
                "application/json",
            )
        try:
            status, body = handle_page(pages, path, query, args)
        except BadRequest as err:
            status, body = 400, f"bad request: {err}\n".encode()
        access_log.append(
            {
                "path": path,
                "id": first(query, "id", ""),
                "status": status,
                "bytes": len(body),
                "start": started,
                "end": time.time(),
            }
        )
        launch.counters.add(requests=1, bytes_out=len(body), **{f"status_{status}": 1})
        return reply(
            start_response,
            status,
            body,
            "text/html; charset=utf-8" if status == 200 else "text/plain; charset=utf-8",
        )  # errors quote the request: never HTML

    return app


def handle_page(pages, path, query, args):
    name = path.removeprefix("/pages/")
    if not path.startswith("/pages/") or name not in pages:  # only names we loaded: no "../"
        return 404, f"no such page: {path}\n".encode()
    delay = number(query, "delay", args.delay)
    jitter = number(query, "jitter", args.jitter)
    error_rate = number(query, "error_rate", args.error_rate, upper=1.0)
    rng = random.Random(f"{args.seed}:{path}:{first(query, 'id', '')}")
    gevent.sleep(max(0.0, delay + rng.uniform(-jitter, jitter)))  # other requests go on
    if rng.random() < error_rate:
        return 503, b"service unavailable (injected error)\n"
    return 200, pages[name]


def number(query, key, default, upper=MAX_DELAY):
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


def first(query, key, default):
    return query.get(key, [default])[0]


def read_log(access_log, query):
    records = list(access_log)
    if first(query, "clear", "") == "1":
        access_log.clear()
    return records


STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}


def reply(start_response, status, body, content_type):
    start_response(
        f"{status} {STATUS_TEXT[status]}",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def add_arguments(p):
    default_root = Path(__file__).resolve().parents[2] / "data" / "pages"
    p.add_argument("--root", default=str(default_root), help="folder of pages to serve")
    p.add_argument("--delay", type=float, default=0.2, help="seconds before each answer")
    p.add_argument("--jitter", type=float, default=0.0, help="delay varies by up to +- this")
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction answered with 503")
    p.add_argument("--seed", type=int, default=0, help="seed for jitter and errors")
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a client has for its request line, and again for its headers",
    )
    p.add_argument(
        "--log-size",
        type=int,
        default=10_000,
        help="access log records kept for /_log (older ones are dropped)",
    )


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, setup=setup)
