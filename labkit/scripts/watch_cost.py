"""What one select / poll / epoll call costs, against the number of sockets it watches.

    python labkit/scripts/_run.py labkit/scripts/watch_cost.py 10 100 1000 10000

Runs in a fresh process, so the sockets get the lowest descriptor numbers (select cannot watch
a descriptor >= 1024) and the notebook's own descriptors are not used up. All sockets are idle:
we measure the cost of *asking*, with a timeout of 0, when nothing is ready.

The machine may be busy with other work, so we count CPU time (time spent waiting for a core
is not counted), and we interleave: each round measures every call at every size once, so a
busy moment slows all of them alike. The cost kept is each call's best round.
"""

import select
import socket
import sys
import time
from collections.abc import Callable

from labkit.limits import raise_open_file_limit
from labkit.scripts import progress, report

SELECT_LIMIT = 1024  # FD_SETSIZE on Linux: select() cannot take a larger descriptor
ROUNDS = 9


def idle_sockets(n):
    """n connected sockets nobody writes to (socketpairs), lowest descriptor numbers first."""
    pairs = [socket.socketpair() for _ in range((n + 1) // 2)]
    return [s for pair in pairs for s in pair][:n], pairs


def watchers(fds):
    """One zero-timeout call per kind that watches exactly ``fds`` for reading."""
    calls: dict[str, Callable[[], object]] = {}
    if max(fds) < SELECT_LIMIT:
        calls["select"] = lambda: select.select(fds, [], [], 0)
    poller = select.poll()
    ep = select.epoll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
        ep.register(fd, select.EPOLLIN)
    calls["poll"] = lambda: poller.poll(0)
    calls["epoll"] = lambda: ep.poll(0)
    return calls, ep


def repeats_for(call, budget=0.005):
    """How many calls take about ``budget`` seconds of CPU (so one timing is not all noise)."""
    reps = 1
    while reps < 1 << 20:
        start = time.process_time()
        for _ in range(reps):
            call()
        if time.process_time() - start > budget:
            break
        reps *= 4
    return reps


def cpu_per_call(call, reps):
    start = time.process_time()
    for _ in range(reps):
        call()
    return (time.process_time() - start) / reps


def measure(counts):
    """{n: {kind: seconds of CPU per call}}, each the best of ROUNDS interleaved rounds."""
    socks, pairs = idle_sockets(max(counts))
    fds = [s.fileno() for s in socks]
    plan = {}
    closers = []
    for n in counts:
        calls, ep = watchers(fds[:n])  # the n lowest descriptors
        closers.append(ep)
        plan[n] = {kind: (call, repeats_for(call)) for kind, call in calls.items()}
    best = {n: {kind: float("inf") for kind in plan[n]} for n in counts}
    for r in range(1, ROUNDS + 1):
        for n in counts:
            for kind, (call, reps) in plan[n].items():
                best[n][kind] = min(best[n][kind], cpu_per_call(call, reps))
        progress(r, ROUNDS)
    for closer in closers:
        closer.close()
    for a, b in pairs:
        a.close()
        b.close()
    return best


if __name__ == "__main__":
    counts = sorted({int(a) for a in sys.argv[1:]} or {10, 100, 1000, 10000})
    raise_open_file_limit()
    costs = measure(counts)
    report(counts=counts, costs={str(n): c for n, c in costs.items()})
