"""Locust, the load tester built on gevent, run headless in child processes: lesson 11.

Locust monkey-patches with gevent as it is imported, so it never runs in the Jupyter kernel:
every Locust here is a child process (``labkit/scripts/locust_run.py`` under ``_run.py``) in its
own session with a stdin lifeline, like every child of labkit. We read what Locust itself wrote
(its CSV history, ``--csv-full-history``, and its final stats, ``--json-file``) into a
``LocustRun``::

    with labkit.serve("latency_http") as srv:
        run = run_locust("pages", srv, users=20, seconds=5, options={"error_rate": 0.1})
    print(run.summary())               # requests/s, failures, p50/p95/p99
    plot_over_time({"20 users": run})  # requests/s and p50/p95, second by second

A locustfile of your own runs the same way, by its path::

    mine = start_locustfile(WORK / "my_locustfile.py")  # the skeleton, copied once: yours
    run = run_locust(mine, srv, users=10, seconds=3)

One job per module:

* ``run``: ``run_locust`` (``processes=N`` forks, ``workers=N`` a master and workers),
  ``distributed_commands``, and ``LocustWay``, one run as a way of ``labkit.Timing``;
* ``locustfile``: the course's locustfiles and yours, checked before they run
  (``check_locustfile``, with ``ast``: nothing of the file runs in the kernel);
* ``results``: ``LocustRun``, read from Locust's own files, and ``LocustError``;
* ``file_load``: ``FileLoad``, one load on a file server by our greenlets or by Locust;
* ``figures``: ``plot_over_time``.
"""

from labkit.locust_lab.figures import plot_over_time
from labkit.locust_lab.file_load import FileLoad
from labkit.locust_lab.locustfile import (
    LOCUSTFILES,
    SKELETON,
    LocustfileError,
    check_locustfile,
    start_locustfile,
)
from labkit.locust_lab.results import LocustError, LocustRun, locusts_percentiles
from labkit.locust_lab.run import LocustWay, distributed_commands, run_locust

__all__ = [
    "LOCUSTFILES",
    "SKELETON",
    "LocustRun",
    "LocustError",
    "LocustfileError",
    "check_locustfile",
    "start_locustfile",
    "run_locust",
    "distributed_commands",
    "locusts_percentiles",
    "plot_over_time",
    "LocustWay",
    "FileLoad",
]
