"""What one select / poll / epoll call costs, against the number of sockets it watches.

    python labkit/scripts/_run.py labkit/scripts/watch_cost.py 10 100 1000 10000

Runs in a fresh process, so the sockets get the lowest descriptor numbers (select cannot watch
a descriptor >= 1024) and the notebook's own descriptors are not used up. All sockets are idle:
we measure the cost of *asking*, with a timeout of 0, when nothing is ready.
"""
import select
import socket
import sys
import time

from labkit.limits import raise_open_file_limit
from labkit.scripts import progress, report

SELECT_LIMIT = 1024          # FD_SETSIZE on Linux: select() cannot take a larger descriptor


def idle_sockets(n):
    pairs = [socket.socketpair() for _ in range((n + 1) // 2)]
    return [s for pair in pairs for s in pair][:n], pairs


def per_call(call, budget=0.02):
    """Seconds per call: the best of 7 rounds, each repeating the call for about `budget` s."""
    reps, best = 1, float("inf")
    while True:                                  # find a repeat count that takes ~budget
        start = time.perf_counter()
        for _ in range(reps):
            call()
        if time.perf_counter() - start > budget / 4 or reps > 1 << 20:
            break
        reps *= 4
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(reps):
            call()
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def costs_for(n):
    socks, pairs = idle_sockets(n)
    fds = [s.fileno() for s in socks]
    result = {}
    if max(fds) < SELECT_LIMIT:
        result["select"] = per_call(lambda: select.select(fds, [], [], 0))
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    result["poll"] = per_call(lambda: poller.poll(0))
    ep = select.epoll()
    for fd in fds:
        ep.register(fd, select.EPOLLIN)
    result["epoll"] = per_call(lambda: ep.poll(0))
    ep.close()
    for a, b in pairs:
        a.close()
        b.close()
    return result


if __name__ == "__main__":
    counts = [int(a) for a in sys.argv[1:]] or [10, 100, 1000, 10000]
    raise_open_file_limit()
    costs = {}
    for i, n in enumerate(counts, 1):
        costs[n] = costs_for(n)
        progress(i, len(counts))
    report(counts=counts, costs={str(n): c for n, c in costs.items()})
