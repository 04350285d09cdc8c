"""The open-file limit: every socket is a file descriptor, so it caps how many clients we hold.

A process may raise its own soft limit up to the hard limit (``raise_open_file_limit``). Nothing
does so at import: ``labkit.setup()`` does it in a kernel, ``launch`` in a server, the script
runner in a lesson script, ``max_clients`` and ``fit_clients`` before they count the room
left.

Each client needs one descriptor in the client process and one in the server process (they
are separate processes, so each side counts against its own limit), plus a few dozen for
Python itself.
"""

from __future__ import annotations

import os
import resource

__all__ = [
    "raise_open_file_limit",
    "max_clients",
    "check_client_count",
    "TooManyClients",
    "fit_clients",
    "SCALED_DOWN",
]

# What this process was given when it started, before labkit raised anything (the doctor
# reports it).
STARTED_WITH: tuple[int, int] = resource.getrlimit(resource.RLIMIT_NOFILE)
RESERVED_FDS = 64  # stdin/out/err, the selector, pipes, imported libraries, the kernel's sockets


class TooManyClients(ValueError):
    """Asked for more sockets than this process may open."""


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft limit to the hard limit when allowed; return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _room(per_client: int = 1, spare: int = RESERVED_FDS) -> int:
    """How many more of something that takes ``per_client`` descriptors fit: the limit, less
    what this process has open already (a Jupyter kernel holds 60 to 80), less ``spare``."""
    soft, _ = raise_open_file_limit()
    return max(0, (soft - open_now() - spare) // per_client)


def max_clients() -> int:
    """How many more client sockets this process can hold (with a margin for what a run opens
    besides)."""
    return _room()


def check_client_count(n: int, what: str = "clients") -> None:
    """Raise TooManyClients, saying what to do, if ``n`` sockets won't fit (``what`` names
    them: "clients", or "sockets" where a lesson opens bare sockets)."""
    limit = max_clients()
    if n > limit:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        raise TooManyClients(
            f"{n:,} {what} need {n:,} open files (a socket each), but this process may open "
            f"{soft:,} files (hard limit {hard:,}), so at most about {limit:,} {what}. Choose "
            f"fewer {what}, "
            f"or raise the limit before starting Jupyter: `ulimit -n {n + 2 * RESERVED_FDS}` in "
            f"the shell (an administrator can raise the hard limit in "
            f"/etc/security/limits.conf)."
        )


SCALED_DOWN = "Scaled down for this machine:"  # tests/nbval-sanitize.cfg drops these lines


def fit_clients(
    wanted: int, per_client: int = 1, spare: int = RESERVED_FDS, what: str = "clients"
) -> int:
    """The number of clients to run: ``wanted`` if they fit under this process's open-file
    limit (``per_client`` descriptors each, ``spare`` kept for Python and the kernel), else as
    many as fit, after printing one sentence that says so and why.

    A lesson calls this where it would otherwise fail on a machine with ``ulimit -n 1024``
    (Docker, Binder, some JupyterHubs), so it runs to the end there with fewer clients."""
    fits = max(1, _room(per_client, spare))
    if wanted <= fits:
        return wanted
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted * per_client + open_now() + spare
    print(
        f"{SCALED_DOWN} {wanted:,} {what} need about {need:,} open files, but this process "
        f"may open {soft:,} (ulimit -n), so this run uses {fits:,}."
    )
    return fits


def open_now() -> int:
    """How many files this process has open already (a Jupyter kernel: about 60); 0 where
    /proc is missing. fit_clients counts them, so ``spare`` is only the margin on top."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0
