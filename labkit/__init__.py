"""labkit: the plumbing of the asynclab course.

import labkit
with labkit.serve("select_echo") as srv:     # a teaching server in a child process
    ...
print(labkit.doctor())                        # is this machine ready?
"""

# scripts/_run.py loads labkit.child and labkit.limits from their files before this package
# (a script must patch with gevent first); naming them here makes ``labkit.child`` an
# attribute of the package in that case too, not only an entry in sys.modules.
from labkit import child, cpus, limits  # noqa: F401
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
from labkit.interrupts import install as _install_interrupt_story
from labkit.limits import (
    TooManyClients,
    check_client_count,
    fit_clients,
    max_clients,
    raise_open_file_limit,
)
from labkit.source import show, source_of
from labkit.timeline import show_figures_inline as _show_figures_inline

_show_figures_inline()
_install_interrupt_story()  # Kernel > Interrupt inside labkit: one line, not 40
raise_open_file_limit()  # containers start kernels at a soft limit of 1,024; go up to hard

__all__ = [
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
    "show",
    "source_of",
]
