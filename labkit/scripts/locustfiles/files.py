"""A locustfile for lesson 08's file protocol: Locust drives something that is not HTTP.

    locust -f files.py --headless -u 10 -r 10 -t 5s --host tcp://127.0.0.1:PORT \\
        --file lyrics.txt --expected-sha256 HEX

Locust times and counts only what it is told about. Its documented way to test another protocol
is a plain ``User`` whose tasks do the talking themselves and report each request with
``self.environment.events.request.fire(...)``. Here each user keeps one connection to the file
server (a gevent socket: Locust has monkey-patched this process) and, again and again, GETs
the file and PUTs it back with the very client code of lesson 08 (``labkit.clients.files``),
checking every byte as our clients do: a download must be as long as the header says and have
the SHA-256 we expect (and the header's), an upload must be confirmed with the SHA-256 of what
we sent. A mismatch is reported as a failure, so it shows in Locust's failure counts.
"""

import hashlib
import socket
import time
from urllib.parse import urlsplit

from locust import User, constant, events, task

from labkit.clients.files import get_file, put_file

TIMEOUT = 10.0  # seconds: every socket call of a user has a deadline


@events.init_command_line_parser.add_listener
def add_options(parser):
    parser.add_argument("--file", default="lyrics.txt", help="the file to GET and PUT back")
    parser.add_argument("--expected-sha256", default="", help="the file's SHA-256 (hex)")


class Mismatch(Exception):
    """Bytes that came back different from what was expected."""


class FileUser(User):
    wait_time = constant(0)

    def on_start(self):
        where = urlsplit(self.host)  # tcp://127.0.0.1:PORT
        self.address = (str(where.hostname), int(where.port or 0))
        self.sock = socket.create_connection(self.address, timeout=TIMEOUT)

    def on_stop(self):
        self.sock.close()

    def timed(self, request_type, name, talk):
        """Run ``talk()``, which returns the bytes moved, and report it to Locust's stats."""
        start, error, length = time.perf_counter(), None, 0
        try:
            length = talk()
        except (OSError, ValueError, Mismatch) as err:  # ValueError: a broken frame
            error = err
            self.sock.close()  # the stream cannot be trusted any more: start afresh
            self.sock = socket.create_connection(self.address, timeout=TIMEOUT)
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=(time.perf_counter() - start) * 1000,  # Locust counts milliseconds
            response_length=length,
            exception=error,
            context={},
        )

    @task
    def get_and_put_back(self):
        opts = self.environment.parsed_options
        got = {}

        def download():
            header, body = get_file(self.sock, opts.file)
            if not header.ok:
                raise Mismatch(f"ERR {header.code} {header.message}")
            digest = hashlib.sha256(body).hexdigest()
            if len(body) != header.size or digest != header.sha256:
                raise Mismatch("the body does not match its header")
            if opts.expected_sha256 and digest != opts.expected_sha256:
                raise Mismatch("SHA-256 mismatch")
            got["body"] = body
            return len(body)

        def upload():
            confirmed = put_file(self.sock, f"locust-{id(self)}-{opts.file}", got["body"])
            if not confirmed.ok or confirmed.sha256 != hashlib.sha256(got["body"]).hexdigest():
                raise Mismatch("the upload was not confirmed with our SHA-256")
            return len(got["body"])

        self.timed("GET", opts.file, download)
        if "body" in got:
            self.timed("PUT", opts.file, upload)
