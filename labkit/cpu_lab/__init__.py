"""CPU work on an event loop, and over worker processes: the measurements of lesson 10.

One client asks for CPU work while many others send small PINGs; how long do the others
wait, before, during and after? Each server is started by ``labkit.serve``, measured, stopped::

    runs = compare_offload("compute_asyncio", modes=("none", "pool"), n_clients=50)
    print(latency_table(runs))                  # p50/p99 per phase, in ms
    during_over_before(runs["none"])            # p99 during / p99 before: the others' slowdown
    waited_for_work(runs["pool"])               # p99 during / the WORK's time: ~0 if none waited
    plot_latency(runs)                          # every PING's latency over time, WORK shaded

    spreads = measure_spread({"shared": ("prefork_compute", {"workers": 2}),
                              "reuseport": ("prefork_compute", {"workers": 2,
                                                                "balance": "reuseport"})})
    print(spread_table(spreads, n_workers=2))   # requests and connections per worker
    plot_spread(spreads, n_workers=2)           # one bar per worker, Jain's fairness index
    plot_spread_latency(spreads)                # each server's request latency histogram

A lesson's claims about these runs are timing claims (``labkit.Timing``): ``LatencyRounds``
runs ``latency_under_cpu`` against each server in interleaved rounds, and
``newcomers_while_busy`` and ``accept_wakeups`` give one round's numbers as a dict::

    with LatencyRounds({"gevent": ("compute_gevent", {})}, rounds=3) as rounds:
        rounds.claim("the others waited for the WORK", lambda t: t.best("gevent", "waited"),
                     above=0.5)              # p99 during the WORK / the WORK's own time
        plot_latency(rounds.latest())

    accept_wakeups("shared", waiters=4)     # {"wake-ups": ..., "accepted": ..., "empty": ...}

One job per module:

* ``clients``: the compute protocol's clients (``connect``, ``ping``, ``work``,
  ``latency_under_cpu``, ``spread``), which check every reply they get;
* ``latency``: the others' latency while one client asks for CPU work (``LatencyRounds``,
  ``latency_metrics``, ``waited_for_work``, ``latency_table``);
* ``balance``: how pre-fork workers share connections and work (``measure_spread``,
  ``newcomers_while_busy``, ``accept_wakeups``);
* ``figures``: ``plot_latency``, ``plot_spread``, ``plot_spread_latency``.
"""

from labkit.cpu_lab.balance import (
    ACCEPT_MODES,
    accept_wakeups,
    measure_spread,
    newcomers_while_busy,
    spread_table,
)
from labkit.cpu_lab.clients import connect, latency_under_cpu, ping, work
from labkit.cpu_lab.figures import plot_latency, plot_spread, plot_spread_latency
from labkit.cpu_lab.latency import (
    LatencyRounds,
    compare_offload,
    during_over_before,
    latency_metrics,
    latency_runs,
    latency_table,
    waited_for_work,
)

__all__ = [
    "connect",
    "ping",
    "work",
    "latency_under_cpu",
    "latency_runs",
    "LatencyRounds",
    "latency_metrics",
    "compare_offload",
    "during_over_before",
    "waited_for_work",
    "latency_table",
    "plot_latency",
    "measure_spread",
    "spread_table",
    "plot_spread",
    "plot_spread_latency",
    "newcomers_while_busy",
    "accept_wakeups",
    "ACCEPT_MODES",
]
