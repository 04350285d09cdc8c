"""The open-file limit: every socket is a file descriptor, so it caps how many clients we hold.

A process may raise its own soft limit up to the hard limit, which we do once. Each client
needs one descriptor in the client process and one in the server process (they are separate
processes, so each side counts against its own limit), plus a few dozen for Python itself.
"""
from __future__ import annotations

import os
import resource

__all__ = ["raise_open_file_limit", "max_clients", "check_client_count", "TooManyClients",
           "fit_clients", "SCALED_DOWN"]

# What this process was given when it started, before labkit raised anything (the doctor reports it).
STARTED_WITH: tuple[int, int] = resource.getrlimit(resource.RLIMIT_NOFILE)
RESERVED_FDS = 64   # stdin/out/err, the selector, pipes, imported libraries, the kernel's sockets


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


def max_clients() -> int:
    """How many more client sockets this process can hold: its limit, less what it has open
    already (a Jupyter kernel holds 60 to 80) and a margin for what a run opens besides."""
    soft, _ = raise_open_file_limit()
    return max(0, soft - open_now() - RESERVED_FDS)


def check_client_count(n: int, what: str = "clients") -> None:
    """Raise TooManyClients, saying what to do, if ``n`` sockets won't fit (``what`` names
    them: "clients", or "sockets" where a lesson opens bare sockets)."""
    limit = max_clients()
    if n > limit:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = " won't fit:" if what == "sockets" else f" need {n:,} open sockets, but"
        raise TooManyClients(
            f"{n:,} {what}{need} this process may open {soft:,} files "
            f"(hard limit {hard:,}), so at most about {limit:,} {what}. Choose fewer {what}, "
            f"or raise the limit before starting Jupyter: `ulimit -n {n + 2 * RESERVED_FDS}` in "
            f"the shell (an administrator can raise the hard limit in "
            f"/etc/security/limits.conf).")


SCALED_DOWN = "Scaled down for this machine:"   # tests/nbval-sanitize.cfg drops these lines


def fit_clients(wanted: int, per_client: int = 1, spare: int = RESERVED_FDS,
                what: str = "clients") -> int:
    """The number of clients to run: ``wanted`` if they fit under this process's open-file
    limit (``per_client`` descriptors each, ``spare`` kept for Python and the kernel), else as
    many as fit, after printing one sentence that says so and why.

    A lesson calls this where it would otherwise fail on a machine with ``ulimit -n 1024``
    (Docker, Binder, some JupyterHubs), so it runs to the end there with fewer clients."""
    soft, hard = raise_open_file_limit()
    already = open_now()
    fits = max(1, (soft - already - spare) // per_client)
    if wanted <= fits:
        return wanted
    print(f"{SCALED_DOWN} {wanted:,} {what} need about {wanted * per_client + already + spare:,} open "
          f"files, but this process may open {soft:,} (ulimit -n), so this run uses {fits:,}.")
    return fits


def open_now() -> int:
    """How many files this process has open already (a Jupyter kernel: about 60); 0 where
    /proc is missing. fit_clients counts them, so ``spare`` is only the margin on top."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0
