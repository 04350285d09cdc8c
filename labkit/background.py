"""Start a teaching server in a child process and hand back a handle.

    with labkit.serve("select_echo") as srv:
        sock = socket.create_connection((srv.host, srv.port), timeout=5)

Why a child process, and how it never outlives the notebook:

* It runs ``python -m labkit.servers.NAME --host 127.0.0.1 --port 0`` in its **own session**,
  so the SIGINT that Jupyter sends to the kernel's process group on "interrupt" does not hit it.
* Its stdin is a pipe from us. The server watches it from a real OS thread and exits on EOF,
  which happens when we close it *or when we die*, even by SIGKILL.
* We stop it on ``with`` exit, ``stop()``, ``stop_all()`` and at interpreter exit:
  SIGTERM first, SIGKILL if it does not go within a few seconds.
* Its stdout and stderr never reach the kernel's own: a thread reads them into ``log()``.
"""
from __future__ import annotations

import atexit
import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from labkit import proc
from labkit.servers import NAMES

__all__ = ["serve", "stop_all", "ServerHandle", "ServerStartError", "running", "run_script",
           "ScriptResult", "ScriptError"]

LOG_LINES_KEPT = 2000
_running: set["ServerHandle"] = set()
_lock = threading.Lock()


class ServerStartError(RuntimeError):
    """The server exited, or did not say READY in time. The message ends with its log."""


class ServerHandle:
    """A running background server: ``host``, ``port``, ``pid``, ``log()``, ``stats()``."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.host = ""
        self.port = 0
        self._lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self._ready = threading.Event()
        self._stats: queue.Queue[dict[str, int]] = queue.Queue()
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, env=_child_env(), close_fds=True)
        self.pid = self.process.pid
        self._reader = threading.Thread(target=self._read_output, daemon=True,
                                        name=f"labkit-log-{name}")
        self._reader.start()

    # -- output -------------------------------------------------------------------------------
    def _read_output(self) -> None:
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tag, _, rest = line.partition(" ")
            if tag == "READY" and not self._ready.is_set():
                info = json.loads(rest)
                self.host, self.port = info["host"], info["port"]
                self._ready.set()
            elif tag == "STATS":
                self._stats.put(json.loads(rest))
            else:
                self._lines.append(line)

    def log(self, last: int | None = None) -> str:
        """The server's captured output (stdout and stderr), optionally only the last lines."""
        lines = list(self._lines)
        return "\n".join(lines[-last:] if last else lines)

    def stats(self, timeout: float = 5.0) -> dict[str, int]:
        """The server's counters (connections, bytes_in, bytes_out, errors, ...)."""
        if not self.alive:
            raise RuntimeError(f"{self.name} is not running")
        self.process.stdin.write(b"stats\n")
        self.process.stdin.flush()
        try:
            return self._stats.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name} did not report stats within {timeout} s") from None

    # -- life cycle ---------------------------------------------------------------------------
    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None:
                self._reader.join(1)     # collect its last words
                self._fail(f"it exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self._fail(f"it did not print READY within {timeout:g} s")

    def _fail(self, why: str) -> None:
        self.stop()
        tail = self.log(last=20) or "(no output)"
        raise ServerStartError(f"labkit server {self.name!r} failed to start: {why}.\n"
                               f"command: {' '.join(self.argv)}\n"
                               f"--- last log lines ---\n{tail}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far, from /proc."""
        return proc.cpu_seconds(self.pid)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers; idempotent."""
        with _lock:
            _running.discard(self)
        if self.alive:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.process.wait(grace)
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        self._reader.join(1)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}, pid {self.pid}" if self.alive else "stopped"
        return f"<labkit server {self.name} ({state})>"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)          # the server leads its own session: this hits its children too
    except (ProcessLookupError, PermissionError):
        pass


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    # labkit is importable in the child even when it is not installed (a plain checkout).
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _option_flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is not False and value is not None:   # 0 is a value: --port 0
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
    data: dict[str, Any] = field(default_factory=dict)   # what the script report()ed
    stdout: str = ""                                      # its output, without the RESULT line
    stderr: str = ""
    elapsed: float = 0.0


def run_script(name: str | Path, *args: Any, timeout: float = 120.0, check: bool = True,
               on_progress: Any = None) -> ScriptResult:
    """Run ``labkit/scripts/NAME.py`` (or a script at a Path) in a child process.

    Returns what the script ``report()``ed. The child runs in its own session with a stdin
    lifeline (it dies with the kernel), never writes to the kernel's own output, and is killed
    if it outlives ``timeout``. With ``check`` (the default) a failing script raises ScriptError
    showing its output. ``on_progress(done, total)`` is called, in this thread, for each
    ``progress()`` line the script prints.
    """
    from labkit import scripts
    runner = Path(scripts.__file__).with_name("_run.py")
    script = Path(name) if isinstance(name, Path) else scripts.path(name)
    argv = [sys.executable, str(runner), str(script), *map(str, args)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, env=_child_env())
    out: list[str] = []
    err: list[bytes] = []
    progress: queue.Queue[tuple[int, int]] = queue.Queue()

    def read_stdout() -> None:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("PROGRESS "):
                done, total = line.split()[1:3]
                progress.put((int(done), int(total)))
            else:
                out.append(line)

    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)]
    for r in readers:
        r.start()
    try:
        _wait_reporting(proc, started + timeout, progress, on_progress)
    finally:                           # also on KeyboardInterrupt: never leave it running
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdin.close()
        for r in readers:
            r.join(5)
    result = _script_result(script.stem, proc.returncode, out, b"".join(err),
                            time.perf_counter() - started)
    if check and proc.returncode != 0:
        why = f"was killed after {timeout:g} s" if proc.returncode < 0 else \
            f"exited with code {proc.returncode}"
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-25:])
        raise ScriptError(f"lesson script {script.stem!r} {why}.\n--- its last output ---\n{tail}")
    return result


def _wait_reporting(proc: subprocess.Popen, deadline: float, progress: queue.Queue,
                    on_progress: Any) -> None:
    """Wait for the child until ``deadline``, passing its progress lines on as they come."""
    while proc.poll() is None and time.perf_counter() < deadline:
        try:
            done, total = progress.get(timeout=0.05)
        except queue.Empty:
            continue
        if on_progress:
            on_progress(done, total)


def _script_result(name: str, code: int, out: list[str], err: bytes,
                   elapsed: float) -> ScriptResult:
    lines, data = [], {}
    for line in out:
        if line.startswith("RESULT "):
            data = json.loads(line[len("RESULT "):])
        else:
            lines.append(line)
    return ScriptResult(name, code, data, "\n".join(lines), err.decode("utf-8", "replace"),
                        elapsed)
