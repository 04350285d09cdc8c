"""Locust, the load tester built on gevent, run headless in child processes: ``run_locust``.

Locust monkey-patches with gevent as it is imported, so it never runs in the Jupyter kernel:
every Locust here is a child process (``labkit/scripts/locust_run.py`` under ``_run.py``) in its
own session with a stdin lifeline, like every child of labkit. ``processes=2`` runs Locust's
``--processes 2`` (a master and two forked workers); ``workers=2`` starts a master and two
``--worker`` processes ourselves, as one would on several machines (``distributed_commands``
prints those command lines). ``LocustWay`` is one Locust run as a way of ``labkit.Timing``.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from labkit import scripts
from labkit.background import ServerHandle
from labkit.child import Child
from labkit.locust_lab.locustfile import LOCUSTFILES, SCHEMES, locustfile
from labkit.locust_lab.results import LocustError, LocustRun, _read, where_it_broke
from labkit.progress import Progress

RUNNER = Path(scripts.__file__).with_name("_run.py")
WRAPPER = Path(scripts.__file__).with_name("locust_run.py")
START_GRACE = 30.0  # seconds a run may take beyond its own length (start-up, workers joining)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for Locust's master.

    Locust's master binds its port itself and must be given a number (it cannot be handed a
    bound socket, and does not report a port 0 back). So we ask the OS for a free one by
    binding port 0, and close it for Locust to take a moment later: in between, another program
    could take it, and the master would then fail to start (``run_locust`` says so)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        flags += [flag] if value is True else [] if value is False else [flag, str(value)]
    return flags


def locust_command(
    name: str | Path,
    host: str,
    users: int,
    spawn_rate: float,
    seconds: float,
    options: dict[str, Any] | None = None,
) -> list[str]:
    """The arguments of a headless Locust run, as one would type them after ``locust``."""
    return [
        "-f", str(locustfile(name)), "--headless", "--host", host,
        "-u", str(users), "-r", f"{spawn_rate:g}", "-t", f"{seconds:g}s",
        "--exit-code-on-error", "0",  # failures are results here, not a failed run
        *_flags(options or {}),
    ]  # fmt: skip


def distributed_commands(name: str | Path, host: str, users: int, workers: int) -> list[str]:
    """The command lines that spread one run over machines: one master, N workers."""
    file = Path(name).name if str(name).endswith(".py") else f"{name}.py"
    return [
        f"# on the master machine (say 10.0.0.1): waits for {workers} workers, then runs\n"
        f"locust -f {file} --master --expect-workers {workers} --headless "
        f"-u {users} -r {users} -t 30s --host {host}",
        "# on each worker machine (the same locustfile there):\n"
        f"locust -f {file} --worker --master-host 10.0.0.1",
    ]


class _Runs:
    """The children of one run and what they report, read in their reader threads."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.result: dict[str, Any] = {}
        self.workers: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.children: list[Child] = []

    def on_progress(self, step: dict[str, Any]) -> None:
        if self.progress:
            self.progress(step["done"], step["total"])

    def on_worker(self, report: dict[str, Any]) -> None:
        with self.lock:
            self.workers.append(report)

    def start(self, argv: list[str], name: str) -> Child:
        handlers: dict[str, Callable[[Any], None]] = {
            "PROGRESS": self.on_progress,
            "RESULT": self.result.update,
            "WORKER": self.on_worker,
        }
        child = Child(argv, name, on=handlers)
        self.children.append(child)
        return child


def _wrapper(workdir: str, locust_args: list[str]) -> list[str]:
    return [sys.executable, str(RUNNER), str(WRAPPER), "--workdir", workdir, "--", *locust_args]


def run_locust(
    name: str | Path,
    server: ServerHandle | tuple[str, int],
    users: int = 10,
    spawn_rate: float | None = None,
    seconds: float = 3.0,
    processes: int = 1,
    workers: int = 0,
    options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> LocustRun:
    """Run a locustfile headless against ``server``: the course's ``name`` ("pages" or
    "files"), or the path of your own, whose users are given ``http://HOST:PORT`` as their
    host (``check_locustfile`` reads it first, and refuses what is not a locustfile).

    ``processes`` > 1 is Locust's ``--processes``; ``workers`` > 0 starts a ``--master`` and
    that many ``--worker`` processes. Every process stops when the run ends, when this call
    is interrupted, and when this process dies; a run that outlives ``seconds`` by
    START_GRACE is stopped. ``progress(done, total)`` counts tenths of a second."""
    host_port = server.address if isinstance(server, ServerHandle) else server
    scheme = SCHEMES.get(name, "http") if isinstance(name, str) else "http"
    host = f"{scheme}://{host_port[0]}:{host_port[1]}"
    rate = spawn_rate or users
    args = locust_command(name, host, users, rate, seconds, options)
    with tempfile.TemporaryDirectory(prefix="labkit-locust-") as workdir, ExitStack() as stack:
        port = str(free_port())  # the master's port: see free_port for why a number
        master = [*args, "--master-bind-host", "127.0.0.1", "--master-bind-port", port]
        master += ["--csv", "run", "--csv-full-history", "--json-file", "run"]
        if processes > 1:  # forked workers connect to the master at --master-port
            master += ["--processes", str(processes), "--master-port", port]
        if workers:
            master += ["--master", "--expect-workers", str(workers)]
        runs = _Runs(progress)
        lead = stack.enter_context(runs.start(_wrapper(workdir, master), "locust-master"))
        for i in range(workers):
            worker = ["-f", args[1], "--worker", "--master-host", "127.0.0.1",
                      "--master-port", port, *_flags(options or {})]  # fmt: skip
            stack.enter_context(runs.start(_wrapper(workdir, worker), f"locust-worker-{i + 1}"))
        _wait(lead, runs.children, seconds + START_GRACE, Path(args[1]))
        run = _read(Path(workdir), lead, users, max(processes, workers, 1))
    run.command = ["locust", *master]
    run.log = lead.log(last=40)
    run.cpu_seconds = runs.result.get("cpu_seconds", 0.0)
    run.own_requests = runs.result.get("requests", 0)
    run.worker_peak_users = runs.result.get("worker_peak_users", {})
    run.errors = runs.result.get("errors", run.errors)  # complete, unlike the CSV's last second
    run.workers = sorted(runs.workers, key=lambda w: w["pid"])
    return run


def _wait(lead: Child, children: list[Child], timeout: float, file: Path) -> None:
    """Wait for the master (or only) process to finish; then every process must be done."""
    if not lead.wait(timeout):
        raise LocustError(f"Locust ran over {timeout:g} s and was stopped.\n{lead.log(last=20)}")
    for child in children:
        child.wait(5.0)  # workers quit when their master tells them; stop() does the rest
    lead.finish_reading()
    if lead.returncode != 0:
        log = lead.log(last=40)
        if file.parent != LOCUSTFILES and "Starting Locust" not in log:
            raise LocustError(f"Locust could not load {file.name}:\n{where_it_broke(log, file)}")
        raise LocustError(f"Locust exited with code {lead.returncode}.\n{lead.log(last=20)}")


# -- a way of running Locust, for labkit.Timing ----------------------------------------------
class LocustWay:
    """``run_locust`` with fixed arguments, as one way of a ``labkit.Timing``: each call runs
    Locust once and returns what it measured (``LocustRun.metrics``); ``last`` is the latest
    run and ``runs`` every run, for figures and tables::

        ways = {"one": LocustWay("pages", srv, users=120), "two": LocustWay("pages", srv,
                users=120, processes=2)}
        timing = labkit.Timing(ways, rounds=3)
    """

    def __init__(self, name: str, server: ServerHandle | tuple[str, int], **options: Any):
        self.name, self.server, self.options = name, server, options
        self.runs: list[LocustRun] = []

    def __call__(self) -> dict[str, float]:
        self.runs.append(run_locust(self.name, self.server, **self.options))
        return self.last.metrics()

    @property
    def last(self) -> LocustRun:
        if not self.runs:
            raise LookupError("this way has not run yet")
        return self.runs[-1]
