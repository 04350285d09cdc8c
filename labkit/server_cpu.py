"""What a server costs in CPU time while nobody is connected (lesson 06's spinning handler).

    with labkit.serve("gevent_echo_spin") as spin, labkit.serve("gevent_echo") as fixed:
        used, window = idle_cpu({"spin": spin, "fixed": fixed})

A server that waits properly uses next to no CPU while idle; one whose handler spins on a
closed connection burns a core. The servers' CPU time is read from ``/proc`` through
``ServerHandle.cpu_seconds()``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

__all__ = ["idle_cpu"]


class HasCpuSeconds(Protocol):
    def cpu_seconds(self) -> float: ...


def idle_cpu(
    servers: Mapping[str, HasCpuSeconds], burn: float = 0.3, longest: float = 6.0
) -> tuple[dict[str, float], float]:
    """CPU seconds each server uses over one window with no client connected, and the window's
    length: we watch until one server has used ``burn`` seconds, or for ``longest`` seconds."""
    before = {name: srv.cpu_seconds() for name, srv in servers.items()}
    started = time.perf_counter()
    used = dict.fromkeys(servers, 0.0)
    while max(used.values()) < burn and time.perf_counter() - started < longest:
        time.sleep(0.05)
        used = {name: srv.cpu_seconds() - before[name] for name, srv in servers.items()}
    return used, time.perf_counter() - started
