"""A real HTTP/1.1 server that is slow on purpose: it stands in for web sites far away.

It serves the files of ``--root`` at ``/pages/NAME`` after a delay, and fails some requests with
``503 Service Unavailable``. The delay, jitter and error rate have defaults from the command
line and can be set per request in the query string::

    GET /pages/page-48k.html?delay=0.2&jitter=0.05&error_rate=0.1&id=7

Random choices (jitter, errors) are seeded by ``--seed`` and the request's ``id``, so a run can
be repeated exactly. ``GET /_log`` returns the access log as JSON: one record per request,
oldest first, with ``time.time()`` stamps; it keeps the last ``--log-size`` records, and
``GET /_log?clear=1`` empties it.

gevent's WSGI server handles each request in its own greenlet, so a thousand requests that are
all waiting out their delay cost a thousand small greenlets, not a thousand threads. Its
defences (labkit/wsgi_deadlines.py): a client gets ``--header-timeout`` seconds for its
request line and as long again for its headers; a connection silent (or not reading) for
``--client-timeout`` seconds, also between kept-alive requests, is closed; error replies are
plain text; and clients come in through a ``Door`` (labkit/accept_policy.py) that may close
the kept-alive connection idle longest to make room (as nginx does), or stay shut a moment.

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

from labkit import launch  # noqa: E402
from labkit.wsgi_deadlines import BadRequest, first, number, reply, serve_app  # noqa: E402

MAX_DELAY = 30.0  # seconds: the longest delay or jitter a request may ask for


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


def serve(listener, args):
    app = make_app(args.pages, args)
    serve_app(listener, app, args.header_timeout, args.client_timeout)


def make_app(pages, args):
    access_log = collections.deque(maxlen=args.log_size)  # the oldest records drop off

    def app(environ, start_response):
        started = time.time()
        path = environ.get("PATH_INFO", "")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/_log":
            records = json.dumps(read_log(access_log, query)).encode()
            return reply(start_response, 200, records, "application/json")
        try:
            status, body = handle_page(pages, path, query, args)
        except BadRequest as err:
            status, body = 400, f"bad request: {err}\n".encode()
        record = {"path": path, "id": first(query, "id", ""), "status": status}
        access_log.append({**record, "bytes": len(body), "start": started, "end": time.time()})
        launch.counters.add(requests=1, bytes_out=len(body), **{f"status_{status}": 1})
        kind = "html" if status == 200 else "plain"  # errors quote the request: never HTML
        return reply(start_response, status, body, f"text/{kind}; charset=utf-8")

    return app


def handle_page(pages, path, query, args):
    name = path.removeprefix("/pages/")
    if not path.startswith("/pages/") or name not in pages:  # only names we loaded: no "../"
        return 404, f"no such page: {path}\n".encode()
    delay = number(query, "delay", args.delay, upper=MAX_DELAY)
    jitter = number(query, "jitter", args.jitter, upper=MAX_DELAY)
    error_rate = number(query, "error_rate", args.error_rate, upper=1.0)
    rng = random.Random(f"{args.seed}:{path}:{first(query, 'id', '')}")
    gevent.sleep(max(0.0, delay + rng.uniform(-jitter, jitter)))  # other requests go on
    if rng.random() < error_rate:
        return 503, b"service unavailable (injected error)\n"
    return 200, pages[name]


def read_log(access_log, query):
    records = list(access_log)
    if first(query, "clear", "") == "1":
        access_log.clear()
    return records


def add_arguments(p):  # in launch.parser's argparse form, on purpose: one call per option
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
