"""Where a strategy runs: here, in this process, or gevent-patched in a child process.

The clients (``labkit.clients``) are plain code that knows nothing of processes. gevent's
monkey-patching is unsafe inside a Jupyter kernel, so the gevent strategies run the very same
client code in a child process (``labkit/scripts/``), and their results come back as JSON. This
module makes that choice, once, for the lessons::

    run = fetch_with("gevent", urls)                       # lesson 04: a FetchRun
    result = run_file_clients(address, 500, mode="gevent")  # lesson 08: a FileLoadResult
"""

from __future__ import annotations

import json

from labkit.background import run_script
from labkit.clients import files, pages
from labkit.clients.files import FileLoadResult
from labkit.clients.pages import FetchRun
from labkit.limits import check_client_count
from labkit.progress import Progress

__all__ = ["fetch_with", "STRATEGIES", "run_file_clients", "MODES"]

#: lesson 04's strategies (and lesson 09's asyncio ones): those of ``labkit.clients.pages``, and
#: gevent in a child process
STRATEGIES = (*pages.STRATEGIES, "gevent")
#: lesson 08's ways to run the file clients: those of ``labkit.clients.files``, and gevent
MODES = (*files.MODES, "gevent")


def fetch_with(strategy: str, urls: list[str], progress: Progress | None = None) -> FetchRun:
    """Run one strategy: ``sequential``, ``threads``, ``asyncio`` and ``asyncio-limited`` (10
    at once) here, ``gevent`` in a child process. The asyncio ones run their own event loop in
    a worker thread, so they work in a Jupyter kernel too (whose thread runs the kernel's loop).
    """
    if strategy == "gevent":
        done = run_script("fetch_gevent", json.dumps(urls), on_progress=progress)
        return FetchRun.from_dict(done.data["run"])
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    return pages.timed_run(pages.STRATEGIES[strategy], urls, strategy, progress)


# This repeats the signature of labkit.clients.files.run_file_clients on purpose: it adds mode
# "gevent" (those clients in a patched child process, which clients cannot start) and passes
# every other mode through.
def run_file_clients(
    address: tuple[str, int],
    n_clients: int = 500,
    name: str = "lyrics.txt",
    expected_sha256: str = "",
    mode: str = "threads",
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> FileLoadResult:
    """``n_clients`` clients at once, each: GET ``name``, verify, PUT it back, verify; in this
    process (``threads``, ``selectors``) or on greenlets in a patched child (``gevent``)."""
    if mode not in MODES:
        raise ValueError(f"mode is one of {MODES}, not {mode!r}")
    if mode != "gevent":
        return files.run_file_clients(
            address, n_clients, name, expected_sha256, mode, progress, timeout
        )
    check_client_count(n_clients)  # a clear message instead of EMFILE, before any start
    done = run_script(
        "gevent_file_clients",
        address[0],
        address[1],
        n_clients,
        name,
        expected_sha256,
        on_progress=progress,
        timeout=timeout * 5,
    )
    return FileLoadResult.from_dict(done.data["result"])
