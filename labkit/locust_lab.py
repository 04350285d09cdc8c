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

``processes=2`` runs Locust's ``--processes 2`` (a master and two forked workers);
``workers=2`` starts a master and two ``--worker`` processes ourselves, as one would on
several machines (``distributed_commands`` prints those command lines).
``FileLoad`` makes one load on a file server with lesson 08's clients on greenlets or with
Locust, and ``LocustWay`` is one Locust run as a way of ``labkit.Timing``.

A locustfile of your own runs the same way, by its path::

    mine = start_locustfile(WORK / "my_locustfile.py")  # the skeleton, copied once: yours
    run = run_locust(mine, srv, users=10, seconds=3)

``run_locust`` first reads the file (``check_locustfile``, with ``ast``: nothing of it runs
here) and refuses what Locust could not run, with a message that says why: no such file, not
Python, no ``User`` class, a ``User`` without a task. What only running it can show (an import
that fails, a name not defined) comes back as Locust's own last lines.
"""

from __future__ import annotations

import ast
import builtins
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit import scripts
from labkit.background import ServerHandle, run_script
from labkit.child import Child
from labkit.progress import Progress

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

__all__ = [
    "LOCUSTFILES",
    "SKELETON",
    "LocustRun",
    "LocustError",
    "LocustfileError",
    "check_locustfile",
    "start_locustfile",
    "run_locust",
    "locust_command",
    "distributed_commands",
    "free_port",
    "plot_over_time",
    "LocustWay",
    "FileLoad",
]

LOCUSTFILES = Path(scripts.__file__).with_name("locustfiles")
RUNNER = Path(scripts.__file__).with_name("_run.py")
WRAPPER = Path(scripts.__file__).with_name("locust_run.py")
SCHEMES = {"pages": "http", "files": "tcp"}  # how each locustfile names its host
SKELETON = LOCUSTFILES / "skeleton_pages.py"  # where a student's own locustfile starts
START_GRACE = 30.0  # seconds a run may take beyond its own length (start-up, workers joining)


class LocustError(RuntimeError):
    """Locust failed or ran too long. The message ends with its log."""


class LocustfileError(LocustError, ValueError):
    """A file that Locust cannot run as a locustfile; the message says why."""


@dataclass
class LocustRun:
    """What Locust measured in one run, read from its own CSV and JSON files."""

    users: int
    processes: int  # processes that generated load: 1, or the number of workers
    seconds: float  # how long the test ran
    requests: int = 0
    failures: int = 0
    p50: float = 0.0  # ms, over the whole run, as Locust computes them (locusts_percentiles)
    p95: float = 0.0
    p99: float = 0.0
    per_second: list[tuple[int, int, int]] = field(default_factory=list)  # (s, reqs, fails)
    history: list[dict[str, float]] = field(default_factory=list)  # s, users, p50, p95, p99
    by_name: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)  # Locust's failures table
    cpu_seconds: float = 0.0  # CPU time of the process that ran (or mastered) the test
    own_requests: int = 0  # requests made in that process (all of them, unless distributed)
    workers: list[dict[str, Any]] = field(default_factory=list)  # each worker's own report
    worker_peak_users: dict[str, int] = field(default_factory=dict)  # as the master saw them
    command: list[str] = field(default_factory=list)
    log: str = field(default="", repr=False)  # the last lines the master (or only) Locust wrote
    label: str = ""  # how figures and tables name the run
    server_cpu_seconds: float = 0.0  # the server's CPU time during the run, where measured

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def steady_rps(self) -> float:
        """Requests/s over the whole seconds of the run (the first and last are partial)."""
        inner = [reqs for _, reqs, _ in self.per_second[1:-1]]
        return statistics.fmean(inner) if inner else self.rps

    @property
    def load_cpu_seconds(self) -> float:
        """CPU time of the processes that made the requests: the workers', if there were."""
        return sum(w["cpu_seconds"] for w in self.workers) if self.workers else self.cpu_seconds

    def metrics(self) -> dict[str, float]:
        """What ``labkit.Timing`` compares: requests, requests/s, and the CPU milliseconds the
        load-making processes spent per request (``cpu_ms``)."""
        return {
            "requests": float(self.requests),
            "rps": self.rps,
            "cpu_ms": self.load_cpu_seconds / max(self.requests, 1) * 1e3,
        }

    def task_error(self, file: str | Path) -> str:
        """Where a task of ``file`` last raised, from Locust's log (or ""): Locust logs the
        exception and the user goes on with its next task."""
        if "Traceback" not in self.log:
            return ""
        return where_it_broke(self.log[self.log.rindex("Traceback") :], Path(file).resolve())

    def summary(self) -> str:
        return (
            f"{self.users} users in {self.processes} process(es): {self.requests:,} requests "
            f"in {self.seconds:.1f} s ({self.rps:,.0f}/s), {self.failures:,} failures "
            f"({self.failure_ratio:.0%}), p50 {self.p50:.0f} ms, p95 {self.p95:.0f} ms, "
            f"p99 {self.p99:.0f} ms"
        )


# -- running Locust ---------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for Locust's master.

    Locust's master binds its port itself and must be given a number (it cannot be handed a
    bound socket, and does not report a port 0 back). So we ask the OS for a free one by
    binding port 0, and close it for Locust to take a moment later: in between, another program
    could take it, and the master would then fail to start (``run_locust`` says so)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def locustfile(name: str | Path) -> Path:
    """The course's locustfile ``name`` ("pages", "files"), or the path of your own: checked
    (``check_locustfile``) and made absolute, since Locust runs in a folder of its own."""
    if isinstance(name, str) and name in SCHEMES:
        return LOCUSTFILES / f"{name}.py"
    if isinstance(name, str) and "/" not in name and not name.endswith(".py"):
        raise ValueError(
            f"no locustfile {name!r}; choose one of: {', '.join(SCHEMES)}, or give the path "
            "of your own (it ends in .py)"
        )
    path = Path(name).resolve()
    check_locustfile(path)
    return path


def start_locustfile(target: str | Path) -> Path:
    """Copy the skeleton locustfile (``SKELETON``) to ``target`` unless ``target`` exists: your
    work is never overwritten. Returns ``target``. Says the same either way, so a lesson that
    calls it prints the same whether the copy is new or yours."""
    target = Path(target)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SKELETON, target)
    print(f"{target.name}: yours to edit (copied from the skeleton if it was not there yet; "
          "never overwritten)")  # fmt: skip
    return target


# -- is it a locustfile? ----------------------------------------------------------------------
USER_CLASSES = {"User", "HttpUser", "FastHttpUser"}  # what Locust's own users derive from


def check_locustfile(path: str | Path) -> list[str]:
    """Read ``path`` as Locust would load it, without running any of it (``ast``), and return
    the names of the ``User`` classes it would run; raise ``LocustfileError`` with the reason
    when it is not a locustfile. Locust imports the file (``.py`` only), and runs every
    module-level class that derives from ``User`` and is not ``abstract``
    (``locust/util/load_locustfile.py``, ``is_user_class``). A user with no task makes no
    request: it logs "No tasks defined" (``locust/user/task.py``,
    ``DefaultTaskSet.get_next_task``), waits, and tries again (``TaskSet.run``).
    A class whose base comes from another module cannot be judged here: it is given the
    benefit of the doubt, and Locust has the last word."""
    path = Path(path)
    tree = _parse(path)
    locust_names, star = _locust_imports(tree)
    users: dict[str, ast.ClassDef] = {}  # every User class of the file, abstract or not
    classes: dict[str, bool] = {}  # every class of the file so far: is it a User?
    doubtful = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        kinds = [_base_kind(b, locust_names, star, classes) for b in node.bases]
        classes[node.name] = "user" in kinds
        if "user" in kinds:
            users[node.name] = node
        elif "unknown" in kinds:
            doubtful.append(node.name)
    runnable = [name for name, node in users.items() if not _abstract(node)]
    with_tasks = [name for name in runnable if _has_task(users[name], users, locust_names, star)]
    if not with_tasks and doubtful:
        return doubtful
    if not runnable:
        raise LocustfileError(_no_user(path.name, users, tree))
    if not with_tasks and _uses_task_unimported(tree, locust_names, star):
        raise LocustfileError(
            f"{path.name} marks tasks with @task but does not import task: from locust import task"
        )
    if not with_tasks:
        raise LocustfileError(
            f"{path.name}: {' and '.join(runnable)} has no task. Its users would make no "
            'request: each would log "No tasks defined", again after every wait. Mark a '
            "method as a task: @task above its def (from locust import task)."
        )
    return with_tasks


def _parse(path: Path) -> ast.Module:
    name = path.name
    if not path.exists():
        raise LocustfileError(f"{name}: no such file in {path.parent.name or '.'}/")
    if path.is_dir():
        raise LocustfileError(f"{name} is a folder: give the path of one locustfile in it")
    if path.suffix != ".py":
        raise LocustfileError(f"{name}: Locust loads only Python files, named NAME.py")
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=name)
    except UnicodeDecodeError:
        raise LocustfileError(f"{name} is not text: a locustfile is a Python file") from None
    except SyntaxError as err:
        raise LocustfileError(
            f"{name}, line {err.lineno}: {err.msg}. A locustfile is a Python module, and "
            "this one is not valid Python."
        ) from None


def _locust_imports(tree: ast.Module) -> tuple[dict[str, str], bool]:
    """{local name: what it is in locust} for each ``from locust... import X as Y`` (modules
    imported whole as ``locust``: ``"module"``), and whether ``from locust import *`` is there."""
    names: dict[str, str] = {}
    star = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "locust":
            for alias in node.names:
                star = star or alias.name == "*"
                names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "locust":
                    names[alias.asname or alias.name.split(".")[0]] = "module"
    return names, star


def _base_kind(
    base: ast.expr, locust_names: dict[str, str], star: bool, classes: dict[str, bool]
) -> str:
    """ "user" (a User class of Locust, or of this file), "other" (not a User), or "unknown"
    (a class from another module). ``classes``: this file's classes so far, True for Users."""
    if isinstance(base, ast.Name):
        if base.id in classes:
            return "user" if classes[base.id] else "other"
        if base.id in locust_names:
            return "user" if locust_names[base.id] in USER_CLASSES else "other"
        if star and base.id in USER_CLASSES:
            return "user"
        return "other" if hasattr(builtins, base.id) else "unknown"
    if isinstance(base, ast.Attribute):
        root = base.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and locust_names.get(root.id) == "module":
            return "user" if base.attr in USER_CLASSES else "other"
    return "unknown"


def _abstract(node: ast.ClassDef) -> bool:
    return any(
        isinstance(s, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "abstract" for t in s.targets)
        and isinstance(s.value, ast.Constant)
        and s.value.value is True
        for s in node.body
    )


def _has_task(
    node: ast.ClassDef, users: dict[str, ast.ClassDef], locust_names: dict[str, str], star: bool
) -> bool:
    """A method marked ``@task`` (or ``@task(3)``, ``@locust.task``), or a ``tasks = ...``
    attribute, here or in a User class of this file it derives from."""
    for s in node.body:
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef):
            if any(_is_task(d, locust_names, star) for d in s.decorator_list):
                return True
        targets = s.targets if isinstance(s, ast.Assign) else [s.target] if isinstance(
            s, ast.AnnAssign) and s.value is not None else []  # fmt: skip
        if any(isinstance(t, ast.Name) and t.id == "tasks" for t in targets):
            return True
    return any(
        _has_task(users[b.id], users, locust_names, star)
        for b in node.bases
        if isinstance(b, ast.Name) and b.id in users and users[b.id] is not node
    )


def _is_task(decorator: ast.expr, locust_names: dict[str, str], star: bool) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return locust_names.get(target.id) == "task" or (star and target.id == "task")
    return isinstance(target, ast.Attribute) and target.attr == "task"


def _uses_task_unimported(tree: ast.Module, locust_names: dict[str, str], star: bool) -> bool:
    if star or "task" in locust_names:
        return False
    return any(
        isinstance(d, ast.Name)
        and d.id == "task"
        or isinstance(d, ast.Call)
        and isinstance(d.func, ast.Name)
        and d.func.id == "task"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for d in node.decorator_list
    )


def _no_user(name: str, users: dict[str, ast.ClassDef], tree: ast.Module) -> str:
    if users:  # every one of them abstract
        return (
            f"{name}: every User class in it is abstract ({', '.join(users)}), and Locust "
            "runs none of those: remove abstract = True from the one to run."
        )
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    seen = f" (its classes, {', '.join(classes)}, are not)" if classes else ""
    return (
        f"{name} defines no User class{seen}. Locust runs the classes that derive from "
        "HttpUser, FastHttpUser or User: from locust import HttpUser, then "
        "class Reader(HttpUser): ..."
    )


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


def where_it_broke(log: str, file: Path) -> str:
    """The end of the last traceback in ``log``: from its last line in ``file`` to the error
    (else the log's last lines), with the file named by its name, not its path."""
    lines = log.replace(f"{file.parent}/", "").splitlines()
    starts = [i for i, line in enumerate(lines) if f'"{file.name}"' in line]
    if not starts:
        return "\n".join(lines[-6:])
    end = next((i for i in range(starts[-1], len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[starts[-1] : end])


# -- reading Locust's own files ---------------------------------------------------------------
#: Asks Locust's own function for the p50, p95 and p99 of a histogram read from stdin.
_LOCUSTS_PERCENTILES = """
import json, sys
from locust.stats import calculate_response_time_percentile
histogram, count = json.load(sys.stdin)
histogram = {int(ms): n for ms, n in histogram.items()}
print(json.dumps([calculate_response_time_percentile(histogram, count, p) for p in PERCENTILES]))
"""
PERCENTILES = (0.50, 0.95, 0.99)


def locusts_percentiles(histogram: dict[int, int], count: int) -> tuple[float, ...]:
    """p50, p95 and p99 of a run as Locust reports them: Locust's own
    ``calculate_response_time_percentile`` (``locust/stats.py``), which counts down from the
    slowest time with ``int(count * p)``, over the final histogram Locust wrote. (It is not
    ``labkit.percentiles``' nearest rank: for ``{100: 95, 900: 5}`` Locust's p95 is 900.)

    Locust's final CSV row can miss the run's last second, so we ask its function directly,
    in a short child process: importing Locust monkey-patches the importer with gevent, which
    a Jupyter kernel does not survive. The child reads its input, prints, and exits."""
    import subprocess

    code = f"PERCENTILES = {PERCENTILES!r}\n{_LOCUSTS_PERCENTILES}"
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([histogram, count]),
        capture_output=True,  # never the kernel's own stdout (design.md)
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise LocustError(f"Locust's percentiles could not be read:\n{done.stderr[-2000:]}")
    return tuple(float(ms) for ms in json.loads(done.stdout))


def _number(text: str) -> float:
    return float(text) if text not in ("", "N/A") else float("nan")


def _read(workdir: Path, lead: Child, users: int, processes: int) -> LocustRun:
    try:
        entries = json.loads((workdir / "run.json").read_text())
        history_csv = (workdir / "run_stats_history.csv").read_text()
        failures_csv = (workdir / "run_failures.csv").read_text()
    except OSError as err:
        raise LocustError(f"Locust wrote no stats ({err}).\n{lead.log(last=20)}") from None
    run = LocustRun(users, processes, 0.0)
    histogram: dict[int, int] = {}
    per_second: dict[int, list[int]] = {}
    for e in entries:
        run.by_name[f"{e['method']} {e['name']}"] = {
            "requests": e["num_requests"],
            "failures": e["num_failures"],
        }
        run.requests += e["num_requests"]
        run.failures += e["num_failures"]
        for ms, count in e["response_times"].items():
            histogram[int(float(ms))] = histogram.get(int(float(ms)), 0) + count
        for key, index in (("num_reqs_per_sec", 0), ("num_fail_per_sec", 1)):
            for second, count in e[key].items():
                per_second.setdefault(int(float(second)), [0, 0])[index] += count
    start = min((e["start_time"] for e in entries), default=0.0)
    end = max((e["last_request_timestamp"] or start for e in entries), default=start)
    run.seconds = max(end - start, 1e-9)
    run.p50, run.p95, run.p99 = locusts_percentiles(histogram, sum(histogram.values()))
    first = min(per_second, default=0)
    run.per_second = [(s - first, per_second[s][0], per_second[s][1]) for s in sorted(per_second)]
    run.history = _history(history_csv, first)
    run.errors = _rows(failures_csv)
    return run


def _rows(text: str) -> list[dict[str, Any]]:
    import csv

    return list(csv.DictReader(text.splitlines()))


def _history(text: str, first: int) -> list[dict[str, float]]:
    """The Aggregated rows of ``_stats_history.csv``, time in seconds from the first request."""
    return [
        {
            "s": int(row["Timestamp"]) - first,
            "users": _number(row["User Count"]),
            "p50": _number(row["50%"]),
            "p95": _number(row["95%"]),
            "p99": _number(row["99%"]),
        }
        for row in _rows(text)
        if row["Name"] == "Aggregated" and row["Total Request Count"] not in ("", "0")
    ]


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


# -- our greenlets against Locust -------------------------------------------------------------
class FileLoad:
    """One load on a file server, by either load generator: ``users`` connections that GET
    ``name`` and PUT it back for ``seconds``, every byte verified, made by lesson 08's client
    code on bare greenlets (``labkit/scripts/gevent_file_loop.py``) or by Locust's
    ``FileUser``s. ``ways()`` gives both to ``labkit.Timing``, which interleaves them::

        load = FileLoad(srv, users=20, seconds=3)
        timing = labkit.Timing(load.ways(), rounds=3)
        print(load.table())

    Each run reports, per request, the CPU time of the load generator (``cpu_us``: the
    process that made the requests, while they ran) and of the server (``server_cpu_us``,
    from /proc), the requests per second, and how busy the load generator was (``busy``,
    its CPU time over the run's length)."""

    def __init__(
        self, server: ServerHandle, users: int = 20, seconds: float = 3.0, name: str = "lyrics.txt"
    ) -> None:
        import hashlib

        from labkit.claims import DATA

        self.server, self.users, self.seconds, self.name = server, users, seconds, name
        self.expected = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        self.ours: list[dict[str, Any]] = []  # what gevent_file_loop reported, each run
        self.locust_runs: list[LocustRun] = []
        self.costs: dict[str, list[dict[str, float]]] = {"our greenlets": [], "Locust": []}

    def ways(self) -> dict[str, Callable[[], dict[str, float]]]:
        return {"our greenlets": self.greenlets, "Locust": self.locust}

    def greenlets(self) -> dict[str, float]:
        """Lesson 08's clients on greenlets, once; the per-request costs they measured."""
        server_cpu = self.server.cpu_seconds()
        ours = run_script(
            "gevent_file_loop", self.server.host, self.server.port, self.users, self.seconds,
            self.name, self.expected, timeout=self.seconds + START_GRACE,
        ).data  # fmt: skip
        ours["server_cpu_seconds"] = self.server.cpu_seconds() - server_cpu
        self.ours.append(ours)
        costs = _costs(ours["requests"], ours["cpu_seconds"], ours["server_cpu_seconds"],
                       ours["seconds"])  # fmt: skip
        self.costs["our greenlets"].append(costs)
        return costs

    def locust(self) -> dict[str, float]:
        """Locust's FileUsers, once; the per-request costs it measured."""
        server_cpu = self.server.cpu_seconds()
        run = run_locust(
            "files", self.server, users=self.users, seconds=self.seconds,
            options={"file": self.name, "expected_sha256": self.expected},
        )  # fmt: skip
        run.server_cpu_seconds = self.server.cpu_seconds() - server_cpu
        self.locust_runs.append(run)
        costs = _costs(run.own_requests, run.cpu_seconds, run.server_cpu_seconds, run.seconds)
        self.costs["Locust"].append(costs)
        return costs

    def table(self) -> str:
        """The latest run of each load generator, side by side."""
        lines = [f"{'load generator':>14} | requests/s | its CPU per request | CPU busy | "
                 "server CPU per request"]  # fmt: skip
        for who, runs in self.costs.items():
            for c in runs[-1:]:
                lines.append(
                    f"{who:>14} | {c['rps']:10,.0f} | {c['cpu_us']:16,.0f} µs | "
                    f"{c['busy']:8.0%} | {c['server_cpu_us']:19,.0f} µs"
                )
        return "\n".join(lines)


def _costs(requests: int, cpu: float, server_cpu: float, seconds: float) -> dict[str, float]:
    n = max(requests, 1)
    return {
        "requests": float(requests),
        "rps": requests / max(seconds, 1e-9),
        "cpu_us": cpu / n * 1e6,
        "server_cpu_us": server_cpu / n * 1e6,
        "busy": cpu / max(seconds, 1e-9),
    }


# -- figures ----------------------------------------------------------------------------------
def plot_over_time(runs: dict[str, LocustRun], title: str = "") -> Figure:
    """Requests/s (failures dashed) and p50/p95, second by second, one colour per run."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    users_axis = None
    for i, (label, run) in enumerate(runs.items()):
        color = f"C{i}"
        # each second's count is drawn across that second: one more edge at the end
        rows = [*run.per_second, *run.per_second[-1:]]
        seconds = [s for s, _, _ in run.per_second] + [s + 1 for s, _, _ in run.per_second[-1:]]
        top.step(seconds, [r for _, r, _ in rows], where="post", color=color,
                 label=f"{label}: requests/s")  # fmt: skip
        if run.failures:
            top.step(seconds, [f for _, _, f in rows], where="post", color=color,
                     linestyle="--", label=f"{label}: failures/s")  # fmt: skip
        hist = run.history
        for key, style in (("p50", "-"), ("p95", ":")):
            bottom.plot([h["s"] for h in hist], [h[key] for h in hist], style, color=color,
                        marker="o", label=f"{label}: {key}")  # fmt: skip
        if hist:  # the users, on their own scale at the right
            users_axis = users_axis or top.twinx()
            users_axis.step([h["s"] for h in hist], [h["users"] for h in hist], where="post",
                            color=color, alpha=0.35, linewidth=3)  # fmt: skip
    if users_axis:
        users_axis.set_ylabel("users (wide, pale)")
        users_axis.set_ylim(bottom=0)
    top.set_ylabel("per second")
    bottom.set_ylabel("response time (ms)")
    bottom.set_xlabel("seconds into the run (Locust's own clock)")
    for ax in (top, bottom):
        ax.legend(fontsize=8, loc="upper left")
        ax.set_ylim(bottom=0)
    top.set_title(title or "Locust, second by second")
    fig.tight_layout()
    plt.close(fig)
    return fig
