"""A real HTTP/1.1 server that is slow on purpose: it stands in for web sites far away.

It serves the files of ``--root`` at ``/pages/NAME`` after a delay, and fails some requests with
``503 Service Unavailable``. The delay, jitter and error rate have defaults from the command
line and can be set per request in the query string::

    GET /pages/page-48k.html?delay=0.2&jitter=0.05&error_rate=0.1&id=7

Random choices (jitter, errors) are seeded by ``--seed`` and the request's ``id``, so a run can
be repeated exactly. ``GET /_log`` returns the access log as JSON (one record per request, with
``time.time()`` stamps), and ``GET /_log?clear=1`` empties it.

gevent's WSGI server handles each request in its own greenlet, so a thousand requests that are
all waiting out their delay cost a thousand small greenlets, not a thousand threads.

    python -m labkit.servers.latency_http --port 0 --root data/pages --delay 0.2
"""
from gevent import monkey

monkey.patch_all()   # first: the listener that launch creates must be a gevent socket

import json                                   # noqa: E402
import random                                 # noqa: E402
import time                                   # noqa: E402
from pathlib import Path                      # noqa: E402
from urllib.parse import parse_qs             # noqa: E402

import gevent                                 # noqa: E402
from gevent.pywsgi import WSGIServer          # noqa: E402

from labkit.servers import launch             # noqa: E402

MAX_DELAY = 30.0
access_log = []


class BadRequest(ValueError):
    pass


def serve(listener, args):
    pages = {p.name: p.read_bytes() for p in Path(args.root).iterdir() if p.is_file()}
    app = make_app(pages, args)
    WSGIServer(listener, app, log=None, error_log=None).serve_forever()


def make_app(pages, args):
    def app(environ, start_response):
        started = time.time()
        path = environ.get("PATH_INFO", "")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/_log":
            return reply(start_response, 200, json.dumps(read_log(query)).encode(),
                         "application/json")
        try:
            status, body = handle_page(pages, path, query, args)
        except BadRequest as err:
            status, body = 400, f"bad request: {err}\n".encode()
        access_log.append({"path": path, "id": first(query, "id", ""), "status": status,
                           "bytes": len(body), "start": started, "end": time.time()})
        launch.counters.add(requests=1, bytes_out=len(body), **{f"status_{status}": 1})
        return reply(start_response, status, body)
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


def read_log(query):
    records = list(access_log)
    if first(query, "clear", "") == "1":
        access_log.clear()
    return records


STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}


def reply(start_response, status, body, content_type="text/html; charset=utf-8"):
    start_response(f"{status} {STATUS_TEXT[status]}",
                   [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def add_arguments(p):
    default_root = Path(__file__).resolve().parents[2] / "data" / "pages"
    p.add_argument("--root", default=str(default_root), help="folder of pages to serve")
    p.add_argument("--delay", type=float, default=0.2, help="seconds before each answer")
    p.add_argument("--jitter", type=float, default=0.0, help="delay varies by up to +- this")
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction answered with 503")
    p.add_argument("--seed", type=int, default=0, help="seed for jitter and errors")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments)
