"""Lesson 08's file clients as a load generator: N greenlets GET and PUT back for S seconds.

    python labkit/scripts/_run.py labkit/scripts/gevent_file_loop.py HOST PORT N SECONDS NAME SHA

The same work as Locust's FileUser (labkit/scripts/locustfiles/files.py), with the same client
code and the same checks of every byte, but none of Locust's bookkeeping: each greenlet only
counts what it did. Reports the requests, the mismatches, and the CPU time this process used
while the load ran (start-up not included), so the cost per request can be compared.
"""

from gevent import monkey

monkey.patch_all()  # first: socket becomes gevent's

import hashlib  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from labkit.clients.files import get_file, put_file  # noqa: E402
from labkit.scripts import report  # noqa: E402

TIMEOUT = 10.0  # seconds: every socket call has a deadline


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client(address, name, expected, until, index, tally):
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        while time.monotonic() < until:
            header, body = get_file(sock, name)
            digest = hashlib.sha256(body).hexdigest()
            good = header.ok and len(body) == header.size and digest == header.sha256 == expected
            tally["requests"] += 1
            tally["mismatches"] += not good
            confirmed = put_file(sock, f"loop-{index}-{name}", body)
            tally["requests"] += 1
            tally["mismatches"] += confirmed.sha256 != digest


if __name__ == "__main__":
    host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    name, expected = sys.argv[5], sys.argv[6]
    tally = {"requests": 0, "mismatches": 0}
    cpu, started = cpu_seconds(), time.monotonic()
    until = started + seconds
    clients = [
        gevent.spawn(client, (host, port), name, expected, until, i, tally) for i in range(n)
    ]
    gevent.joinall(clients, timeout=seconds + 3 * TIMEOUT)
    errors = [repr(g.exception) for g in clients if g.exception]
    report(
        requests=tally["requests"],
        mismatches=tally["mismatches"],
        errors=errors,
        cpu_seconds=cpu_seconds() - cpu,
        seconds=time.monotonic() - started,
    )
