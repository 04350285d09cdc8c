"""The capstone's grader: a server, the student's or the course's, faces the course's batteries.

    graded = labkit.grade("my_server.py", protocol="echo")     # a program file
    graded = labkit.grade("selectors_files", protocol="files")  # a course server, by name
    assert graded.passed, graded.report()
    graded.timeline()                                            # the load, drawn

The server runs in a child process (``labkit.launch.run(serve, __doc__)`` in its file, so it takes
``--port 0`` and says READY), and faces, in order, each battery as one named check: concurrency,
exact bytes from many clients at once, a slow reader, clients that vanish mid-message, garbage and
fuzz; then its descriptors and memory must be back near their baseline, it must rest when idle,
keep answering new clients, and never crash. Every battery is bounded in time, so a hanging server
fails in seconds. The report is stable text (seeded inputs; no times, ports, pids or paths; a
number that varies from run to run is said as the bound it passed), with the failing input and a
hint that names the lesson with the fix. A server that dies is reported in the battery it died in,
which then never counts as passed; its last log lines (where it broke, which can differ from run to
run) are printed after the report, not in it.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from labkit.background import ServerHandle, ServerStartError
from labkit.grading import echo, files
from labkit.grading.core import (
    FD_SLACK,
    IDLE_BUSY_SHARE,
    RSS_SLACK_KIB,
    Check,
    Grade,
    Subject,
    local_paths,
)
from labkit.limits import fit_clients
from labkit.servers import NAMES

__all__ = ["grade", "Grade", "Check", "PROTOCOLS", "SKELETONS", "skeleton"]

PROTOCOLS = {"echo": echo, "files": files}
MAX_CLIENTS = 1000  # the exact-bytes battery runs one thread per client
CLIENT_TIMEOUT = 5  # --client-timeout: a blocking server drops a silent client after this
SKELETONS = Path(__file__).resolve().parent / "skeletons"
AFTER = ["back to baseline", "idle CPU", "keeps answering", "no crash"]


def grade(
    server: str | Path,
    protocol: str = "echo",
    *,
    seed: int = 0,
    clients: int = 100,
    ready_timeout: float = 10.0,
    show: bool = True,
) -> Grade:
    """Start ``server`` (a course server's name, or the path of a program file), run every
    battery of ``protocol`` ("echo" or "files") against it with ``clients`` clients at once
    (fewer if this process's open-file limit says so), print the report (``show``) and return
    the ``Grade``. The inputs are drawn from ``random.Random`` seeded with ``seed``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, not {protocol!r}")
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"grade runs 1 to at most {MAX_CLIENTS:,} clients (a thread each)")
    name, argv = _command(server)
    result = Grade(name, protocol, seed)
    n = fit_clients(clients, spare=96)  # prints one sentence if it must scale down
    with tempfile.TemporaryDirectory(prefix="asynclab-grade-") as tmp:
        if protocol == "files":
            argv += files.folders(Path(tmp), seed)
        _run(result, name, argv, n, ready_timeout)
    if show:
        print(result.report())
        if result.log():
            print(result.log())
    return result


def _command(server: str | Path) -> tuple[str, list[str]]:
    flags = ["--host", "127.0.0.1", "--port", "0", "--client-timeout", str(CLIENT_TIMEOUT)]
    if isinstance(server, str) and server in NAMES:
        return server, [sys.executable, "-m", f"labkit.servers.{server}", *flags]
    path = Path(server).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"no server program {str(path)!r} here, and no course server of that name "
            f"(course servers: {', '.join(NAMES)})"
        )
    return path.name, [sys.executable, str(path.resolve()), *flags]


def _run(result: Grade, name: str, argv: list[str], clients: int, ready_timeout: float) -> None:
    try:
        handle = ServerHandle(name, argv)
        handle.wait_ready(ready_timeout)  # stops it and raises, with its log, if it fails
    except ServerStartError as err:
        why = str(err).replace(" ".join(argv), f"python {name} --port 0 ...")
        why = local_paths(why, argv)
        result.checks.append(Check("starts", False, _indent_log(why), hint=START_HINT))
        names = [name for name, _ in batteries(PROTOCOLS[result.protocol], clients)] + AFTER
        result.checks += [Check(name, None, "not run: it did not start") for name in names]
        return
    result.pid = handle.pid
    with handle:
        result.checks.append(Check("starts", True, "it said READY on 127.0.0.1"))
        subject = Subject(handle, result.load)
        try:
            _batteries(result, subject, PROTOCOLS[result.protocol], clients)
        finally:
            subject.close()  # before the server is stopped: that is no crash


START_HINT = (
    "a server program ends with `launch.run(serve, __doc__)` (from labkit import launch), "
    "which binds --host/--port and prints READY; see the skeletons (lesson 12)."
)


def _indent_log(message: str) -> str:
    head, _, log = message.partition("\n--- last log lines ---\n")
    head = head.split("\n")[0].replace("labkit server ", "").rstrip(".")
    return head + "; its last log lines:\n" + "\n".join("      " + ln for ln in log.splitlines())


def batteries(kind: ModuleType, clients: int) -> list[tuple[str, Callable[..., Check]]]:
    """The batteries in the order they run: each protocol module (echo, files) has the same
    five functions, written for its own protocol."""
    return [
        ("concurrency", kind.concurrency),
        ("exact bytes", kind.many_clients(clients)),
        ("slow reader", kind.slow_reader),
        ("vanishing clients", kind.vanishing),
        ("garbage and fuzz", kind.garbage),
    ]


def _batteries(result: Grade, subject: Subject, kind: ModuleType, clients: int) -> None:
    result.load.mark("warm-up")
    kind.warm_up(subject)
    baseline = subject.health()
    stopped = "" if subject.alive else "the server died in the warm-up"
    stuck = ""
    for name, battery in batteries(kind, clients):
        if stopped:
            result.checks.append(Check(name, None, f"not run: {stopped}"))
            continue
        result.load.mark(name)
        rng = random.Random(f"{result.seed}:{name}")
        check = _one(name, battery, subject, rng)
        why = kind.probe(subject) if subject.alive else ""
        if why:  # no answer: it may be dying (a reset on its last client's socket)
            subject.handle.child.wait(0.5)
        if not subject.alive:
            check = _died_in(check, subject)
            stopped = f"the server died in the {_battery_of_death(subject, name)} battery"
        elif why:
            stuck = f"after the {name} battery, a new client {why}"
            stopped = "the server no longer answers"
        result.checks.append(check)
    if not stopped:
        result.load.mark("baseline, idle")
    for name in AFTER:
        result.checks.append(_after(name, subject, kind, baseline, stuck, stopped))
    result.load.finish()


def _battery_of_death(subject: Subject, running: str) -> str:
    """The battery in which the server's process ended (by the moment it ended, if known)."""
    died_at = subject.load.died_at
    return subject.load.battery_at(died_at) if died_at is not None else running


def _died_in(check: Check, subject: Subject) -> Check:
    """The check of a battery during which the server died: never passed, and saying so."""
    if check.log:  # the battery saw the death itself and says so
        return check
    death = subject.death()
    if check.passed:
        return Check(
            check.name,
            False,
            f"its clients got what they should, but the server died before the battery "
            f"ended: {death}",
            hint=CRASH_HINT,
            log=subject.last_log(),
        )
    return Check(
        check.name,
        False,
        f"{check.detail}; and then the server died: {death}",
        check.failing_input,
        check.hint,
        log=subject.last_log(),
    )


def _one(name: str, battery: Callable[..., Check], subject: Subject, rng: random.Random) -> Check:
    """Run one battery; a client that fails in a way the battery did not foresee (a socket
    error, a reply that breaks the protocol) fails the check, never the grading."""
    try:
        return battery(subject, rng)
    except Exception as err:
        subject.handle.child.wait(0.5)  # a client's error may be the server dying
        if not subject.alive:
            return Check(name, False, subject.death(), hint=CRASH_HINT, log=subject.last_log())
        return Check(name, False, f"a client failed: {type(err).__name__}: {err}")


def _after(
    name: str,
    subject: Subject,
    kind: ModuleType,
    baseline: tuple[int, int],
    stuck: str,
    stopped: str,
) -> Check:
    hint = kind.HINTS.get(name, "")
    if name == "no crash":
        if subject.alive:
            return Check(name, True, "it was still running at the end")
        where = stopped if stopped.startswith("the server died") else "the server died"
        return Check(name, False, f"{where}: {subject.death()}", hint=CRASH_HINT)
    if name == "keeps answering":
        if stopped and not stuck:
            return Check(name, None, f"not run: {stopped}")
        if not stuck:
            return Check(name, True, "a new client was answered after every battery")
        busy = subject.alive and subject.busy_share(1.0) > 0.5
        cpu = (
            ", and meanwhile it was running, not waiting, in over half of 25 looks over a second: "
            "a loop that never waits"
            if busy
            else ""
        )
        return Check(name, False, f"{stuck}{cpu}", hint=hint)
    if stopped:
        return Check(name, None, f"not run: {stopped}")
    if name == "back to baseline":
        return _back_to_baseline(subject, baseline, hint)
    share = subject.busy_share(1.0)
    if share < IDLE_BUSY_SHARE:
        return Check(
            name,
            True,
            f"with no client connected it waited: running in under {IDLE_BUSY_SHARE:.0%} of "
            "25 looks over a second",
        )
    return Check(
        name,
        False,
        f"with no client connected it was running, not waiting, in over "
        f"{IDLE_BUSY_SHARE:.0%} of 25 looks over a second: a loop that never rests",
        hint=hint,
    )


CRASH_HINT = (
    "catch errors per connection (OSError around one client's recv/send) so that one client's "
    "trouble never ends the server; its last log lines, after the report, show where it broke."
)


def _back_to_baseline(subject: Subject, baseline: tuple[int, int], hint: str) -> Check:
    fds0, rss0 = baseline
    deadline = time.monotonic() + 5.0
    while True:
        fds, rss = subject.health()
        if fds <= fds0 + FD_SLACK and rss <= rss0 + RSS_SLACK_KIB:
            return Check(
                "back to baseline",
                True,
                "its descriptors and memory came back near where they were before",
            )
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    kept = []  # said as the bounds they passed: the exact numbers vary from run to run
    if fds > fds0 + FD_SLACK:
        kept.append(f"over {FD_SLACK} more descriptors")
    if rss > rss0 + RSS_SLACK_KIB:
        kept.append(f"over {RSS_SLACK_KIB // 1024} MiB more memory")
    return Check(
        "back to baseline",
        False,
        f"5 s after the last client left it still held {' and '.join(kept)} than before "
        "the batteries",
        hint=hint,
    )


def skeleton(model: str, protocol: str = "echo") -> Path:
    """The course's starting point for a server on ``model`` (selectors, gevent, asyncio)."""
    path = SKELETONS / f"{model}_{protocol}.py"
    if not path.exists():
        choices = sorted(p.stem for p in SKELETONS.glob("*.py") if not p.stem.startswith("_"))
        raise ValueError(f"no skeleton {path.stem!r}; skeletons: {', '.join(choices)}")
    return path


def start_from(model: str, target: str | Path, protocol: str = "echo") -> Path:
    """Copy the skeleton for ``model`` to ``target`` unless ``target`` exists: your work is
    never overwritten. Returns ``target``."""
    target = Path(target)
    if target.exists():
        print(f"{target.name} is already there: kept as it is (your work is never overwritten).")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(skeleton(model, protocol), target)
        print(f"{target.name}: a copy of the {model} skeleton, yours to edit.")
    return target
