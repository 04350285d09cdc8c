"""``--count-calls``: a server counts its own system calls, so a lesson can show them per round
trip where strace is missing or ptrace is not allowed. ``launch.run`` imports this module only
when the flag is given: a server without it runs untouched code. Counting costs a little.

Each count goes into the server's stats under the name strace gives that system call on Linux:

* every socket's ``recv`` (``recvfrom``) and ``send`` (``sendto``); not ``sendall``, which
  loops in C (gevent's ``sendall`` calls its ``send``, so under gevent it is counted);
* ``select.select`` (``select``), a ``select.poll`` object's ``poll`` (``poll``), a
  ``select.epoll`` object's ``poll`` (``epoll_wait``) and ``register``/``modify``/``unregister``
  (``epoll_ctl``);
* on ``selectors.DefaultSelector`` (epoll on Linux), ``select`` (``epoll_wait``) and each
  ``register``, ``unregister`` and ``modify`` that changes the events (``epoll_ctl``).

A gevent server (patched by ``monkey.patch_all()``, or using gevent's sockets directly) is
counted where its system calls can be seen:

* its sockets are gevent's, each wrapping a real socket whose ``recv`` and ``send`` are one
  system call each. Those are counted, so a ``recv`` that finds nothing (EAGAIN) before the
  greenlet waits counts too, as it does in strace.
* its hub waits in libev's ``epoll_wait``, in C: counted as ``epoll_wait`` from libev's own
  count of its polls (``loop.iteration``, libev's ``ev_iteration``: "the number of times libev
  did poll for new events").
* not counted: the hub's ``epoll_ctl`` calls, made inside libev where Python cannot see them.
  The stats then have no ``epoll_ctl`` at all rather than a wrong 0, and the server says so in
  its log. gevent's ``select`` and ``selectors`` make no system call of their own: not counted.
"""

from __future__ import annotations

import select
import selectors
import socket
import sys
from collections.abc import Callable
from typing import Any

from labkit.counters import counters

__all__ = ["count_system_calls"]

POLL_CALLS = {"poll": "poll"}  # a poll object's register and modify ask nothing of the kernel
EPOLL_CALLS = {
    "poll": "epoll_wait",
    "register": "epoll_ctl",
    "modify": "epoll_ctl",
    "unregister": "epoll_ctl",
}


def count_system_calls() -> None:
    """Count the server's system calls from now on, in its stats (see the module's docstring)."""
    monkey = sys.modules.get("gevent.monkey")
    if not (monkey and monkey.is_module_patched("socket")):  # then these are gevent's
        _count_sockets(socket.socket)
        _count_selectors()
    if "gevent" in sys.modules:  # patched, or using gevent's sockets and hub directly
        _count_gevent()


def counted(name: str, call: Callable[..., Any]) -> Any:
    """``call``, counting each call under ``name`` in this thread's counters."""

    def counting(*args: Any, **kwargs: Any) -> Any:
        counters.for_this_thread()[name] += 1
        return call(*args, **kwargs)

    return counting


def _count_sockets(real: type) -> None:
    """Count ``recv`` and ``send`` on ``real``, the class whose methods are the system calls."""
    real.recv = counted("recvfrom", real.recv)  # type: ignore[attr-defined]
    real.send = counted("sendto", real.send)  # type: ignore[attr-defined]


class _Counting:
    """A ``select.poll()`` or ``select.epoll()`` object (a C object) whose calls count."""

    def __init__(self, of: Any, calls: dict[str, str]) -> None:
        self._of, self._calls = of, calls

    def __getattr__(self, method: str) -> Any:
        call = getattr(self._of, method)
        return counted(self._calls[method], call) if method in self._calls else call


class _CountingSelector(selectors.DefaultSelector):
    def select(self, timeout: float | None = None) -> Any:
        counters.for_this_thread()["epoll_wait"] += 1
        return super().select(timeout)

    def register(self, fileobj: Any, events: int, data: Any = None) -> Any:
        counters.for_this_thread()["epoll_ctl"] += 1
        return super().register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> Any:
        counters.for_this_thread()["epoll_ctl"] += 1
        return super().unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> Any:
        if events != self.get_key(fileobj).events:  # only then does it ask the kernel
            counters.for_this_thread()["epoll_ctl"] += 1
        return super().modify(fileobj, events, data)


def _count_selectors() -> None:
    select.select = counted("select", select.select)  # (strace may name it pselect6)
    make_poll, make_epoll = select.poll, select.epoll
    select.poll = lambda: _Counting(make_poll(), POLL_CALLS)  # type: ignore[assignment,misc,return-value]
    select.epoll = lambda *a: _Counting(make_epoll(*a), EPOLL_CALLS)  # type: ignore[assignment,misc]
    selectors.DefaultSelector = _CountingSelector  # type: ignore[misc]


def _count_gevent() -> None:
    """Count a gevent server's socket calls and its hub's waits (this thread's hub: the one
    that serves)."""
    import gevent
    from gevent import _socket3

    _count_sockets(_socket3.socket._gevent_sock_class)  # the real socket each one wraps
    loop = gevent.get_hub().loop
    if hasattr(loop, "iteration"):  # libev (gevent's default); libuv does not say
        counters.read_at_snapshot("epoll_wait", lambda: int(loop.iteration))
        uncounted = "epoll_ctl (made inside libev)"
    else:
        uncounted = "epoll_wait and epoll_ctl (made inside libuv)"
    sys.stderr.write(f"--count-calls under gevent: {uncounted} not counted\n")
