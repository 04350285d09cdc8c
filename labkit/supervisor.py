"""A teaching server whose clients are served by child processes: it starts them, waits for
them, and stops them. ``prefork_compute`` forks its workers; ``gunicorn_compute`` starts
gunicorn. The parent serves no client: once READY, it only waits.

* ``say``: one line into the server's log in ONE write, so that lines of the parent and its
  children, who share that pipe, never cut into each other.
* ``wait_until_ready``: each child writes one byte into a pipe once it listens.
* ``reap``: wait for the children, and log how each ended.
* ``stop``: a signal to every child, a harder one to any still there after a grace.
* ``Stop``: the parent's stop, made from the function that ends its children (the one given
  to ``launch.at_stop``). It knows whether it has begun, so that when the children are gone,
  ``exit_unless_stopping`` tells the stop's doing from children that ended by themselves.
* ``signal_when_parent_ends``: a child started by ``subprocess`` gets a signal when the thread
  that started it ends, even by SIGKILL (Linux's ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import threading
import time
from collections.abc import Callable

from labkit.child import exit_now

__all__ = [
    "say",
    "describe",
    "wait_until_ready",
    "reap",
    "stop",
    "Stop",
    "signal_when_parent_ends",
]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def say(text: str) -> None:
    """One line into the server's log in one write (``print`` may write it in pieces)."""
    os.write(1, f"{text}\n".encode())


def describe(status: int) -> str:
    """How a child ended, from its ``wait`` status."""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def wait_until_ready(ready_r: int, expected: int, timeout: float = 10.0) -> int:
    """How many children wrote their byte into ``ready_r`` within ``timeout`` (EOF: every
    child wrote or died, once the parent has closed its own write end). Closes ``ready_r``."""
    got, deadline = 0, time.monotonic() + timeout
    while got < expected and select.select([ready_r], [], [], deadline - time.monotonic())[0]:
        chunk = os.read(ready_r, expected)  # readable: returns at once
        if not chunk:
            break
        got += len(chunk)
    os.close(ready_r)
    return got


def reap(children: dict[int, int], gone: Callable[[int], None]) -> None:
    """Wait until every child in ``children`` (pid -> number) has exited; for each, log how it
    ended and call ``gone(pid)``."""
    while children:
        try:
            pid, status = os.wait()  # blocks until a child exits
        except ChildProcessError:  # reaped by stop() meanwhile
            return
        if children.pop(pid, None) is not None:
            gone(pid)
            say(f"worker {pid} exited: {describe(status)}")


def stop(children: dict[int, int], grace: float = 1.0) -> None:
    """SIGTERM every child, SIGKILL any still there after ``grace`` seconds; reap them."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in list(children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                children.pop(pid, None)
        deadline = time.monotonic() + grace
        while children and time.monotonic() < deadline:
            for pid in list(children):
                if _reaped(pid):
                    children.pop(pid, None)
            time.sleep(0.01)


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:  # already reaped (by reap's wait)
        return True


class Stop:
    """The parent's stop, made from ``end_children``, the function that ends its children
    (``@supervisor.Stop`` on it). Calling it notes that the stop has begun, then ends them:
    give it to ``launch.at_stop``."""

    def __init__(self, end_children: Callable[[], None]) -> None:
        self.end_children = end_children
        self.begun = threading.Event()

    def __call__(self) -> None:
        self.begun.set()
        self.end_children()

    def exit_unless_stopping(self, why: str) -> None:
        """The children have ended. If this stop ended them, the thread running it exits for
        the server: wait. Otherwise say why, and exit with code 1: a server with no one to
        serve is over."""
        while self.begun.is_set():
            time.sleep(1)
        say(why)
        exit_now(1)


def signal_when_parent_ends(sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: in the forked child, before exec, ask the
    kernel for ``sig`` when the thread that forked it ends. Where there is no ``prctl`` (not
    Linux) it does nothing: the child's own check of its parent, if any, remains."""

    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # looked up here: the
    # child, forked from a process with threads, should do as little as it can before exec

    def ask() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, sig)

    return ask
