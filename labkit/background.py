"""Start a teaching server in a child process and hand back a handle; run a lesson script.

    with labkit.serve("select_echo") as srv:
        sock = socket.create_connection((srv.host, srv.port), timeout=5)
    result = labkit.run_script("gevent_sleepers", "--patch")

Both are thin layers on ``labkit.child.Child``, which is why neither outlives the notebook:

* The child runs in its **own session**, so the SIGINT that Jupyter sends to the kernel's
  process group on "interrupt" does not hit it.
* Its stdin is a pipe from us. It watches it from a real OS thread and exits on EOF, which
  happens when we close it *or when we die*, even by SIGKILL; it watches our pid too.
* We stop it on ``with`` exit, ``stop()``, ``stop_all()`` and at interpreter exit (a script:
  when it is done or runs too long): SIGTERM first, SIGKILL if it does not go within seconds.
* Its stdout and stderr never reach the kernel's own: a thread reads them into ``log()``.
"""

from __future__ import annotations

import atexit
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit import proc, scripts
from labkit.child import Child
from labkit.progress import Progress
from labkit.servers import NAMES

__all__ = [
    "serve",
    "stop_all",
    "ServerHandle",
    "ServerStartError",
    "running",
    "run_script",
    "ScriptResult",
    "ScriptError",
]

_running: set[ServerHandle] = set()
_lock = threading.Lock()


class ServerStartError(RuntimeError):
    """The server exited, or did not say READY in time. The message ends with its log."""


class ServerHandle:
    """A running background server: ``host``, ``port``, ``pid``, ``log()``, ``stats()``."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name, self.argv = name, argv
        self.host, self.port = "", 0
        self._ready = threading.Event()
        self._stats: queue.Queue[dict[str, int]] = queue.Queue()
        self.child = Child(argv, name, on={"READY": self._on_ready, "STATS": self._stats.put})
        self.process, self.pid = self.child.process, self.child.pid

    def _on_ready(self, info: dict[str, Any]) -> None:
        if not self._ready.is_set():
            self.host, self.port = info["host"], info["port"]
            self._ready.set()

    def log(self, last: int | None = None) -> str:
        """The server's captured output (stdout and stderr), optionally only the last lines."""
        return self.child.log(last)

    def stats(self, timeout: float = 5.0) -> dict[str, int]:
        """The server's counters (connections, bytes_in, bytes_out, errors, ...)."""
        if not self.alive:
            raise RuntimeError(f"{self.name} is not running")
        self.child.send("stats")
        try:
            return self._stats.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name} did not report stats within {timeout} s") from None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if not self.alive:
                self.child.finish_reading(1)  # collect its last words
                self._fail(f"it exited with code {self.child.returncode}")
            if time.monotonic() > deadline:
                self._fail(f"it did not print READY within {timeout:g} s")

    def _fail(self, why: str) -> None:
        self.stop()
        tail = self.log(last=20) or "(no output)"
        raise ServerStartError(
            f"labkit server {self.name!r} failed to start: {why}.\n"
            f"command: {' '.join(self.argv)}\n"
            f"--- last log lines ---\n{tail}"
        )

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far, from /proc."""
        return proc.cpu_seconds(self.pid)

    @property
    def alive(self) -> bool:
        return self.child.alive

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers; idempotent."""
        with _lock:
            _running.discard(self)
        self.child.stop(grace)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}, pid {self.pid}" if self.alive else "stopped"
        return f"<labkit server {self.name} ({state})>"


def _option_flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is not False and value is not None:  # 0 is a value: --port 0
            flags += [flag, str(value)]
    return flags


def serve(name: str, *, ready_timeout: float = 20.0, **options: Any) -> ServerHandle:
    """Start ``labkit.servers.<name>`` on 127.0.0.1 with a free port; return its handle.

    Keyword options become command-line flags: ``root="data"`` -> ``--root data``,
    ``edge=True`` -> ``--edge``. Raises ServerStartError (with the log tail) if it fails.
    """
    if name not in NAMES:
        raise ValueError(f"no teaching server named {name!r}; choose one of: {', '.join(NAMES)}")
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    argv = [sys.executable, "-m", f"labkit.servers.{name}", *_option_flags(options)]
    handle = ServerHandle(name, argv)
    with _lock:
        _running.add(handle)
    handle.wait_ready(ready_timeout)
    return handle


def running() -> list[ServerHandle]:
    """The servers this process started and has not stopped yet."""
    with _lock:
        return [h for h in _running if h.alive]


def stop_all() -> int:
    """Stop every server this process started; return how many were still running."""
    with _lock:
        handles = list(_running)
    alive = sum(h.alive for h in handles)
    for h in handles:
        h.stop()
    return alive


atexit.register(stop_all)


# -- lesson scripts ------------------------------------------------------------------------------
class ScriptError(RuntimeError):
    """A lesson script failed or ran too long. The message ends with its output."""


@dataclass
class ScriptResult:
    name: str
    returncode: int
    data: dict[str, Any] = field(default_factory=dict)  # what the script report()ed
    stdout: str = ""  # its output, without the RESULT line
    stderr: str = ""
    elapsed: float = 0.0


def run_script(
    name: str | Path,
    *args: Any,
    timeout: float = 120.0,
    check: bool = True,
    on_progress: Progress | None = None,
) -> ScriptResult:
    """Run ``labkit/scripts/NAME.py`` (or a script at a Path) in a child process.

    Returns what the script ``report()``ed. The child runs in its own session with a stdin
    lifeline (it dies with the kernel), never writes to the kernel's own output, and is stopped
    if it outlives ``timeout``. With ``check`` (the default) a failing script raises ScriptError
    showing its output. ``on_progress(done, total)`` is called, in this thread, for each
    ``progress()`` the script reports.
    """
    script = Path(name) if isinstance(name, Path) else scripts.path(name)
    runner = Path(scripts.__file__).with_name("_run.py")
    data: dict[str, Any] = {}
    progress: queue.SimpleQueue[dict[str, int]] = queue.SimpleQueue()
    started = time.perf_counter()
    child = Child(
        [sys.executable, str(runner), str(script), *map(str, args)],
        script.stem,
        on={"RESULT": data.update, "PROGRESS": progress.put},
        stderr_apart=True,
    )
    try:
        while not child.wait(0.05) and time.perf_counter() - started < timeout:
            _pass_on(progress, on_progress)
    finally:  # also on KeyboardInterrupt: never leave it running
        timed_out = child.alive
        child.stop()
    _pass_on(progress, on_progress)  # the last ones, read after it exited
    code = child.process.returncode  # it has exited: stop() waited for it
    result = ScriptResult(
        script.stem, code, data, child.log(), child.errors(), time.perf_counter() - started
    )
    if check and (timed_out or result.returncode != 0):
        why = (
            f"was killed after {timeout:g} s"
            if timed_out
            else f"exited with code {result.returncode}"
        )
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-25:])
        raise ScriptError(f"lesson script {script.stem!r} {why}.\n--- its last output ---\n{tail}")
    return result


def _pass_on(progress: queue.SimpleQueue, on_progress: Progress | None) -> None:
    while not progress.empty():
        step = progress.get()
        if on_progress:
            on_progress(step["done"], step["total"])
