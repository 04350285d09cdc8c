"""labkit: the plumbing of the asynclab course.

import labkit
labkit.setup()                                # in a notebook: figures, interrupts, file limit
with labkit.serve("select_echo") as srv:     # a teaching server in a child process
    ...
print(labkit.doctor())                        # is this machine ready?

Importing labkit changes nothing in the process: no formatter, no handler, no limit, no
thread. ``setup()`` makes the kernel's changes and ``teardown()`` undoes them
(``labkit.kernel_setup``); ``%load_ext labkit`` and ``%unload_ext labkit`` call them.
"""

from typing import Any

# Submodules that lessons and tests reach as attributes (``labkit.timeline.Span``). scripts/_run.py
# loads labkit.child and labkit.limits from their files before this package (a script must
# patch with gevent first); naming them here makes them attributes in that case too.
from labkit import child, cpus, limits, timeline  # noqa: F401
from labkit.background import (
    ScriptError,
    ScriptResult,
    ServerHandle,
    ServerStartError,
    run_script,
    running,
    serve,
    stop_all,
)
from labkit.claims import DATA, ClaimFailed, Timing, claim
from labkit.cpus import usable_cpus
from labkit.doctor import doctor
from labkit.grading import grade
from labkit.kernel_setup import setup, teardown
from labkit.limits import (
    TooManyClients,
    check_client_count,
    fit_clients,
    max_clients,
    raise_open_file_limit,
)
from labkit.source import show, source_of


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext labkit``: ``setup()`` for this shell."""
    setup(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext labkit``: ``teardown()``."""
    teardown()


__all__ = [
    "setup",
    "teardown",
    "claim",
    "ClaimFailed",
    "Timing",
    "usable_cpus",
    "DATA",
    "serve",
    "stop_all",
    "running",
    "ServerHandle",
    "ServerStartError",
    "doctor",
    "grade",
    "run_script",
    "ScriptResult",
    "ScriptError",
    "max_clients",
    "check_client_count",
    "fit_clients",
    "TooManyClients",
    "raise_open_file_limit",
    "show",
    "source_of",
]
