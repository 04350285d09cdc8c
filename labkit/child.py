"""The one protocol between labkit and the processes it starts: servers and lesson scripts.

A child talks to its parent in lines ``TAG {json}`` on stdout: ``READY`` (a server is
listening), ``STATS`` (its counters), ``PROGRESS`` (``{"done": .., "total": ..}``) and
``RESULT`` (what a script reports). Every other line is plain output, kept in a log.

Child side, in the program that runs (a server through ``labkit.launch``, a script through
``labkit/scripts/_run.py``)::

    follow_parent({"stats": send_stats})    # die with the parent; answer lines on stdin
    emit("READY", {"host": ..., "port": ...})
    progress(done, total); report(spans=...)

* The *lifeline* is a real OS thread that reads stdin, a pipe from the parent: EOF means the
  parent is gone (even killed by SIGKILL), and the child exits at once, after its clean-ups.
* A parent that ``fork()``ed without exec shares that pipe with its copy, so EOF may never
  come: a second real thread watches ``getppid()`` too, and exits when the parent changes.
* ``start_signal_thread`` makes one thread the only receiver of SIGTERM and SIGINT, so that
  a stop works whatever the other threads are blocked in.

Parent side: ``Child(argv, on={"READY": ...})`` starts the program in its own session (the
SIGINT that Jupyter sends to the kernel's process group does not reach it), reads its output
in one thread, and ``stop()`` ends it: SIGTERM to its group, SIGKILL if it lingers.

This module imports only the standard library: ``_run.py`` loads it before a script has had
its chance to monkey-patch with gevent, and under that patching its threads and locks must
still be real ones (``original``).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "emit",
    "report",
    "progress",
    "at_stop",
    "exit_now",
    "follow_parent",
    "watch_parent",
    "start_signal_thread",
    "original",
    "real_lock",
    "Child",
    "child_env",
    "PARENT_PID",
]

PARENT_PID = "LABKIT_PARENT_PID"  # the environment variable that names the parent
PARENT_POLL = 0.25  # seconds between two looks at getppid()
LOG_LINES_KEPT = 2000


# == child side ===================================================================================
def original(module: str, name: str) -> Any:
    """The un-patched function, even when gevent has monkey-patched this process."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        return monkey.get_original(module, name)
    return getattr(__import__(module), name)


def real_lock() -> Any:
    """An OS-level lock, also under gevent: the lifeline thread is a real thread, not a
    greenlet. Never held across anything that could switch greenlets."""
    return original("_thread", "allocate_lock")()


def _start_real_thread(target: Callable[..., None], *args: Any) -> None:
    original("_thread", "start_new_thread")(target, args)


_print_lock = real_lock()
_cleanups: list[Callable[[], None]] = []


def emit(tag: str, payload: Any) -> None:
    """Print one protocol line, ``TAG {json}``, for the parent to read (from any thread)."""
    line = f"{tag} {json.dumps(payload)}\n"
    with _print_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _plain(value: Any) -> Any:
    """``value`` with dataclasses (Spans, results) turned into dicts, for JSON."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def report(**data: Any) -> None:
    """Hand a script's results to the parent: one ``RESULT {json}`` line."""
    emit("RESULT", _plain(data))


def progress(done: int, total: int) -> None:
    """Tell the parent how far along we are: one ``PROGRESS {"done": .., "total": ..}`` line."""
    emit("PROGRESS", {"done": done, "total": total})


def at_stop(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` when the child stops, however it stops (SIGTERM, Ctrl-C, the parent
    gone, or ``exit_now``). Used to remove what a server left on disk."""
    _cleanups.append(cleanup)


def exit_now(code: int) -> None:
    """Leave at once (other threads may be blocked in ``accept``), after our clean-ups."""
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception as err:  # a clean-up that fails must not keep us alive
            sys.stderr.write(f"clean-up failed: {err!r}\n")
    with _print_lock:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _lifeline(commands: dict[str, Callable[[], None]]) -> None:
    """Runs in a real OS thread: exit when stdin reaches EOF, run the commands it sends."""
    read = original("os", "read")
    pending = b""
    while True:
        try:
            chunk = read(0, 4096)  # blocks this thread only; it is not a greenlet
        except OSError:
            chunk = b""
        if not chunk:  # EOF: whoever started us is gone
            exit_now(0)
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            command = commands.get(line.decode("utf-8", "replace").strip())
            if command:
                command()


def _watch_parent(parent: int) -> None:
    """Runs in a real OS thread: exit when our parent is no longer ``parent`` (it died, and we
    were handed to init or a subreaper), even if a fork of it still holds our stdin open."""
    sleep = original("time", "sleep")
    while os.getppid() == parent:
        sleep(PARENT_POLL)
    exit_now(0)


def follow_parent(commands: dict[str, Callable[[], None]] | None = None) -> None:
    """Die with the parent (stdin EOF, or the parent gone) and answer its commands on stdin.

    Started only when stdin is a pipe (a parent started us); run by hand, Ctrl-C stops us."""
    if os.isatty(0):
        return
    # The parent names itself, so a parent that died before we got here is seen at once. The
    # name is taken out of our environment: a process we start has a parent of its own.
    parent = int(os.environ.pop(PARENT_PID, "") or os.getppid())
    _start_real_thread(_lifeline, commands or {})
    _start_real_thread(_watch_parent, parent)


def watch_parent(parent: int) -> None:
    """Exit (after our clean-ups) as soon as our parent is no longer ``parent``: for a worker
    that a labkit child forked without exec. ``fork()`` copies only the calling thread, so the
    lifeline and the parent watch do not live on in the worker; pass the forking process's pid
    as read before the fork, so a parent that died in between is seen at once."""
    _start_real_thread(_watch_parent, parent)


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _wait_for_stop_signal() -> None:
    """Runs in a real OS thread: the only thread that receives SIGTERM/SIGINT."""
    signal.sigwait(STOP_SIGNALS)
    exit_now(0)


def start_signal_thread() -> None:
    """SIGTERM and SIGINT end the process at once, after its clean-ups, whatever the other
    threads are blocked in (a signal that lands on a thread blocked in ``read`` would
    otherwise never wake the main thread from ``accept`` or ``select``)."""
    # Block them here, before any other thread exists, so that every thread started later
    # inherits the block and sigwait() in the signal thread is the one that receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    _start_real_thread(_wait_for_stop_signal)


# == parent side ==================================================================================
def child_env() -> dict[str, str]:
    """Our environment, plus: unbuffered output, labkit importable (even from a plain
    checkout), and our pid, which the child watches."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env[PARENT_PID] = str(os.getpid())
    return env


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the child leads its own session: this hits its children too
    except (ProcessLookupError, PermissionError):
        pass


class Child:
    """A program in a child process that speaks the tagged-line protocol.

    ``on`` maps a tag to a function called with the line's JSON payload, in the reader thread;
    every other line (and a tagged line that is not JSON) goes to ``log()``. With
    ``stderr_apart`` stderr is kept in ``errors()``; without, it is part of ``log()``. The
    child never writes to our own stdout/stderr (under Jupyter, the kernel's)."""

    def __init__(
        self,
        argv: list[str],
        name: str = "",
        on: dict[str, Callable[[Any], None]] | None = None,
        stderr_apart: bool = False,
        log_lines: int = LOG_LINES_KEPT,
    ) -> None:
        self.argv, self.name = argv, name or Path(argv[0]).name
        self.handlers = dict(on or {})
        self._log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self._errors: collections.deque[str] = collections.deque(maxlen=log_lines)
        self._stop_lock = threading.Lock()
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT,
            start_new_session=True,
            env=child_env(),
            close_fds=True,
        )
        self.pid = self.process.pid
        stdin, stdout, stderr = self.process.stdin, self.process.stdout, self.process.stderr
        assert stdin is not None and stdout is not None  # pipes, as asked above
        self._stdin, self._pipes = stdin, [stdout]
        self._readers = [self._reader(self._read_tagged, stdout)]
        if stderr is not None:  # stderr_apart
            self._pipes.append(stderr)
            self._readers.append(self._reader(self._read_lines, stderr, self._errors))
        for reader in self._readers:
            reader.start()

    def _reader(self, read: Callable[..., None], *args: Any) -> threading.Thread:
        return threading.Thread(target=read, args=args, daemon=True, name=f"labkit-{self.name}")

    # -- output ------------------------------------------------------------------------------
    def _read_tagged(self, pipe: IO[bytes]) -> None:
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tag, _, rest = line.partition(" ")
            handler = self.handlers.get(tag)
            try:
                payload = json.loads(rest) if handler else None
            except ValueError:  # not a protocol line after all: plain output
                handler = None
            if not handler:
                self._log.append(line)
                continue
            try:
                handler(payload)
            except Exception as err:  # a bad handler must not stop the reading
                self._log.append(f"({tag} handler failed: {type(err).__name__}: {err}) {line}")

    @staticmethod
    def _read_lines(pipe: IO[bytes], into: collections.deque[str]) -> None:
        for raw in pipe:
            into.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def log(self, last: int | None = None) -> str:
        """What the child printed (but protocol lines), optionally only the last lines."""
        return _tail(self._log, last)

    def errors(self, last: int | None = None) -> str:
        """What the child wrote to stderr, when kept apart (``stderr_apart``)."""
        return _tail(self._errors, last)

    def send(self, line: str) -> None:
        """Write one line to the child's stdin (the lifeline), e.g. ``stats``."""
        self._stdin.write(line.encode() + b"\n")
        self._stdin.flush()

    # -- life cycle --------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the child to exit; True if it has."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def finish_reading(self, timeout: float = 2.0) -> None:
        """Wait for the readers to take the child's last lines (after it has exited)."""
        for reader in self._readers:
            reader.join(timeout)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the child's process group, SIGKILL it if it lingers; idempotent."""
        with self._stop_lock:
            if self.alive:
                _signal_group(self.pid, signal.SIGTERM)
                if not self.wait(grace):
                    _signal_group(self.pid, signal.SIGKILL)
                    self.process.wait(grace)
            try:
                self._stdin.close()  # EOF on the lifeline of anything left in the group
            except OSError:
                pass
            self.finish_reading()
            for reader, pipe in zip(self._readers, self._pipes):
                if not reader.is_alive():  # closing under a reader would block
                    pipe.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _tail(lines: collections.deque[str], last: int | None) -> str:
    kept = list(lines)
    return "\n".join(kept[-last:] if last else kept)
