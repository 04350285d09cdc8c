"""The threaded echo clients of labkit.clients.load, run on greenlets.

    labkit.run_script("gevent_echo_clients", HOST, PORT, N[, MESSAGES, SIZE, PAUSE])

After monkey patching, ``threading.Thread`` starts a greenlet and ``socket`` is gevent's: the
very same client code now runs N clients on one OS thread. The script reports the most OS
threads it had while they ran (from /proc, which counts real threads whatever gevent calls a
Thread): besides the main one, there are labkit's two watchers (the stdin lifeline and the
parent watch, see labkit.child), and gevent's pool of helper threads for ``getaddrinfo``: the
standard call blocks, so gevent's default (thread) resolver runs it in a thread.
"""

from gevent import monkey

monkey.patch_all()  # first: threading and socket become gevent's

import os  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from labkit.clients.load import run_echo_clients  # noqa: E402
from labkit.scripts import progress, report  # noqa: E402

os_threads: list[int] = []  # sampled at every progress step, while the clients run


def progress_and_count(done, total):
    os_threads.append(len(os.listdir("/proc/self/task")))
    progress(done, total)


if __name__ == "__main__":
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    messages = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 1024
    pause = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    result = run_echo_clients(
        (host, port), n, messages, size, progress=progress_and_count, pause=pause
    )
    report(
        result=result.to_dict(),
        most_os_threads=max(os_threads),
        resolver_pool_size=gevent.get_hub().threadpool.maxsize,
    )
