"""What goes wrong when monkey patching comes too late.

    python labkit/scripts/_run.py labkit/scripts/patch_too_late.py URL N [--late]

N greenlets each fetch URL over a plain socket. The two runs differ in one thing only: whether
``from socket import socket`` runs before or after ``patch_all()``. A name bound before patching
keeps the standard, blocking class, and patching cannot reach it any more.
"""

import sys

LATE = "--late" in sys.argv
if LATE:
    from socket import socket  # bound now: the standard library's blocking socket class

from gevent import monkey  # noqa: E402  (after the late import, on purpose)

monkey.patch_all()

if not LATE:
    from socket import socket  # bound after patching: gevent's cooperative socket class

import time  # noqa: E402

import gevent  # noqa: E402

from labkit.eventloop import http_get_request  # noqa: E402
from labkit.scripts import report  # noqa: E402
from labkit.timeline import Recorder  # noqa: E402


def get(url):
    """A minimal HTTP GET over one socket; returns the whole response."""
    address, request = http_get_request(url)  # HTTP/1.0: the server closes after answering
    sock = socket()
    sock.settimeout(30)
    sock.connect(address)
    sock.sendall(request)
    chunks = []
    while data := sock.recv(65536):  # the server closes after the response
        chunks.append(data)
    sock.close()
    return b"".join(chunks)


def task(rec, name, url):
    start = time.perf_counter()
    response = get(url)
    rec.add(name, "waiting", start, time.perf_counter())
    return response.split(b"\r\n", 1)[0].endswith(b" 200 OK")


if __name__ == "__main__":
    url, n = sys.argv[1], int(sys.argv[2])
    rec = Recorder()
    jobs = [gevent.spawn(task, rec, f"Request {i}", f"{url}&id={i}") for i in range(1, n + 1)]
    gevent.joinall(jobs)
    report(
        late=LATE,
        socket_class=f"{socket.__module__}.{socket.__name__}",
        ok=sum(job.value is True for job in jobs),
        elapsed=rec.now(),
        spans=rec.close(),
    )
