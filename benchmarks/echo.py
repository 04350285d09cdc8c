"""Every echo server of ours beside asyncio, uvloop, a plain gevent StreamServer and
a plain C epoll server, under the same loads, in one run.

    python -m benchmarks echo              # the full run, about 5 to 10 minutes
    python -m benchmarks echo --quick      # a small one (a test runs it), well under a minute
    python -m benchmarks.echo --help       # this benchmark alone, printing its section

What is measured, for each server and load (N connections x SIZE bytes, ping-pong: a client
sends SIZE bytes, reads the whole echo, checks every byte, sends again):

* server CPU time per round trip, from ``/proc`` (every thread's ``schedstat``, as
  labkit.server_cpu reads it), over a window that starts once every client is connected;
* round trips per second, and each round trip's latency (p50, p99), seen by the client;
* in the idle run (many idle connections beside one active client, on a fresh server): who is
  still served, the active client's latency, and resident memory per connection (VmRSS after
  connecting, less before).

The servers run on one core and the load client on the other (``sched_setaffinity``), so the
client is never the server's competitor for a core. The client is ``echo_peers/echo_client.c``,
compiled at run time (cc or gcc); without a compiler, several Python client processes stand in
(``echo_peers/echo_client.py``), and the section says which ran. Every server is started once
and the runs take turns (A B C ... A B C ...) over the repeats, so that whatever else the
machine does weighs on all alike; we report the median and the spread (lowest-highest).
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labkit import proc  # noqa: E402
from labkit.background import ServerHandle, serve  # noqa: E402
from labkit.child import Child  # noqa: E402
from labkit.limits import SCALED_DOWN, raise_open_file_limit  # noqa: E402
from labkit.percentiles import nearest_rank_of_counts  # noqa: E402
from labkit.server_cpu import TICK, threads_cpu_seconds  # noqa: E402

ABOUT = "lesson 13: every echo server of ours beside asyncio, uvloop and gevent, CPU per round trip"
PEERS = Path(__file__).resolve().parent / "echo_peers"
FIGURE = Path(__file__).resolve().parent / "echo.png"
COMPILERS = ("cc", "gcc")  # the first found builds the client (a test empties it)
UVLOOP, ASYNCIO = "uvloop protocol", "asyncio protocol"  # the references of the ratios
GEVENT_PEER = "gevent StreamServer"

# label -> (where it comes from, its program, its options)
SERVERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "selectors_echo": ("ours", "selectors_echo", {}),
    "epoll_echo": ("ours", "epoll_echo", {}),
    "poll_echo": ("ours", "poll_echo", {}),
    "select_echo": ("ours", "select_echo", {}),
    "gevent_echo": ("ours", "gevent_echo", {}),
    "gevent_stream_echo": ("ours", "gevent_stream_echo", {}),
    "thread_echo": ("ours", "thread_echo", {}),
    "asyncio_echo protocol": ("ours", "asyncio_echo", {"api": "protocol", "loop": "asyncio"}),
    "asyncio_echo streams": ("ours", "asyncio_echo", {"api": "streams", "loop": "asyncio"}),
    "asyncio_echo uvloop protocol": (
        "ours",
        "asyncio_echo",
        {"api": "protocol", "loop": "uvloop"},
    ),
    "asyncio_echo uvloop streams": ("ours", "asyncio_echo", {"api": "streams", "loop": "uvloop"}),
    ASYNCIO: ("peer", "asyncio_peer.py", {"api": "protocol", "loop": "asyncio"}),
    "asyncio streams": ("peer", "asyncio_peer.py", {"api": "streams", "loop": "asyncio"}),
    UVLOOP: ("peer", "asyncio_peer.py", {"api": "protocol", "loop": "uvloop"}),
    "uvloop streams": ("peer", "asyncio_peer.py", {"api": "streams", "loop": "uvloop"}),
    GEVENT_PEER: ("peer", "gevent_peer.py", {}),
    "C epoll (floor)": ("c", "echo_server.c", {}),
}
NOT_EVENT_DRIVEN = {"thread_echo"}  # one OS thread per client
OWN_LOOPS = ("selectors_echo", "epoll_echo", "poll_echo", "select_echo")  # loops we wrote
#: asyncio_echo's variants, and asyncio's own server with the same API and loop
SAME_API_PEER = {
    "asyncio_echo protocol": ASYNCIO,
    "asyncio_echo streams": "asyncio streams",
    "asyncio_echo uvloop protocol": UVLOOP,
    "asyncio_echo uvloop streams": "uvloop streams",
}
#: servers left out of the crowd runs, and why (the table says so)
CROWD_LEFT_OUT = {
    "select_echo": "select() watches descriptors below 1,024 only",
}
IDLE_LEFT_OUT = {"select_echo": "select() watches descriptors below 1,024 only"}


LOADS = "1x1024,10x1024,100x1024,10x65536"
GOAL_LOADS = ("10x1024", "100x1024", "10x65536")  # where our servers' goals (``goals``) are judged
QUICK = {  # --quick: these, for the options left at their defaults
    "loads": "1x1024,10x1024,2x65536",
    "crowd": "40",
    "idle": 200,
    "repeats": 2,
    "crowd_repeats": 1,
    "seconds": 0.15,
    "timeout": 5.0,
}


# == the options ==================================================================================
def add_arguments(p: argparse.ArgumentParser) -> None:
    add_load_arguments(p)
    add_run_arguments(p)


def add_load_arguments(p: argparse.ArgumentParser) -> None:
    """What runs: which servers, and under which loads."""
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated servers to run, of: " + ", ".join(SERVERS) + " (default: all)",
    )
    p.add_argument(
        "--loads",
        default=LOADS,
        help=f"ping-pong loads, CONNECTIONSxBYTES, comma-separated (default {LOADS})",
    )
    p.add_argument(
        "--crowd",
        default="1000,5000",
        help="connection counts of the crowd runs (1 KiB each; thread_echo against the "
        "event-driven servers; empty: none) (default 1000,5000)",
    )
    p.add_argument(
        "--idle",
        type=int,
        default=19_000,
        help="idle connections held beside one active client, scaled down to the open-file "
        "limit if need be; 0: no idle run (default 19000)",
    )
    p.add_argument(
        "--idle-inflight",
        type=int,
        default=1000,
        help="most idle connections waiting for their first echo at once, so that a burst is "
        "paced by the server's accepting, not the listen queue (4,096); 0: no limit "
        "(default 1000)",
    )


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """How it runs: timeouts, repeats, the client, the figure, a quick run."""
    p.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds a client waits for its connections, or for an echo, before it counts "
        "them lost (default 20)",
    )
    p.add_argument(
        "--repeats", type=int, default=5, help="runs of each server and load (default 5)"
    )
    p.add_argument(
        "--crowd-repeats",
        type=int,
        default=3,
        help="runs of each server in the crowd runs, which take longest (default 3)",
    )
    p.add_argument(
        "--seconds", type=float, default=0.5, help="seconds of ping-pong per run (default 0.5)"
    )
    p.add_argument(
        "--python-client",
        action="store_true",
        help="use the Python client processes even where a C compiler exists (default: off)",
    )
    p.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="Python client processes, when they stand in for the C client (default 4)",
    )
    p.add_argument(
        "--figure",
        type=lambda text: Path(text) if text else None,
        default=FIGURE,
        help="where to draw the figure; empty: none (default benchmarks/echo.png)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a small run, for the options not given: loads {QUICK['loads']}, crowd "
        f"{QUICK['crowd']}, {QUICK['idle']} idle, {QUICK['repeats']} repeats of "
        f"{QUICK['seconds']} s, timeout {QUICK['timeout']} s (default: off)",
    )


def parse_loads(text: str) -> list[tuple[int, int]]:
    """``"10x1024,100x1024"`` -> [(10, 1024), (100, 1024)]."""
    loads = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        conns, _, size = part.partition("x")
        loads.append((int(conns), int(size)))
    return loads


def load_name(conns: int, size: int) -> str:
    return f"{conns}x{size}"


def load_title(conns: int, size: int) -> str:
    unit = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"
    return f"{conns:,} × {unit}"


# == the load client ==============================================================================
@dataclass
class ClientKind:
    """Which load client runs: the compiled one, or several Python processes."""

    argv: list[str]
    processes: int
    description: str


def compiler() -> str | None:
    for name in COMPILERS:
        if path := shutil.which(name):
            return path
    return None


def build(source: Path, into: Path) -> Path | None:
    """Compile a C program of echo_peers/ into ``into``; None without a compiler (or if it
    fails: the caller falls back and says so)."""
    cc = compiler()
    if cc is None:
        return None
    out = into / source.stem
    done = subprocess.run(
        [cc, "-O2", "-o", str(out), str(source)], capture_output=True, text=True, timeout=120
    )
    return out if done.returncode == 0 and out.exists() else None


def client_kind(tmp: Path, force_python: bool, processes: int) -> ClientKind:
    built = None if force_python else build(PEERS / "echo_client.c", tmp)
    if built is not None:
        return ClientKind(
            [str(built)], 1, f"compiled C epoll client ({Path(compiler() or '').name})"
        )
    why = "asked for" if force_python else "no C compiler found"
    return ClientKind(
        [sys.executable, str(PEERS / "echo_client.py")],
        max(1, processes),
        f"{max(1, processes)} Python client processes ({why})",
    )


class LoadClient:
    """One run of the load client (one or several processes) against one server: connect,
    then ``go()`` for the ping-pong, ``check()`` for the idle connections."""

    def __init__(
        self,
        kind: ClientKind,
        address: tuple[str, int],
        active: int,
        size: int,
        seconds: float,
        idle: int = 0,
        inflight: int = 0,
        timeout: float = 20.0,
    ) -> None:
        self.timeout = timeout
        self.queues: list[queue.Queue[tuple[str, dict[str, Any]]]] = []
        self.children: list[Child] = []
        shares = split(active, kind.processes), split(idle, kind.processes)
        try:
            for share_active, share_idle in zip(*shares):
                if not share_active and not share_idle:
                    continue
                q: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
                on = {tag: lambda payload, q=q, tag=tag: q.put((tag, payload)) for tag in TAGS}
                argv = [*kind.argv, address[0], str(address[1]), str(share_active), str(size)]
                argv += [str(seconds), str(share_idle), str(inflight), str(timeout)]
                self.queues.append(q)
                self.children.append(Child(argv, "echo_client", on=on))
        except BaseException:  # those started already must not outlive us
            self.__exit__()
            raise

    def _collect(self, tag: str, wait: float) -> list[dict[str, Any]]:
        replies = []
        for child, q in zip(self.children, self.queues):
            try:
                got, payload = q.get(timeout=wait)
            except queue.Empty:
                raise RuntimeError(f"the load client did not say {tag}: {child.log(5)}") from None
            assert got == tag, (got, tag)
            replies.append(payload)
        return replies

    def connected(self) -> dict[str, Any]:
        replies = self._collect("CONNECTED", self.timeout + 30)
        merged = {key: sum(r[key] for r in replies) for key in ("connected", "failed", "lost")}
        return merged | {"seconds": max(r["seconds"] for r in replies)}

    def go(self, seconds: float) -> dict[str, Any]:
        for child in self.children:
            child.send("go")
        return merge_results(self._collect("RESULT", seconds + self.timeout + 30))

    def check(self) -> dict[str, int]:
        for child in self.children:
            child.send("check")
        replies = self._collect("IDLE", self.timeout + 30)
        return {key: sum(r[key] for r in replies) for key in ("alive", "checked")}

    def cpu_seconds(self) -> float:
        """CPU time the client processes have used so far (to the nanosecond where we can)."""
        return sum(threads_cpu_seconds(c.pid) or proc.cpu_seconds(c.pid) for c in self.children)

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        for child in self.children:
            child.stop()


TAGS = ("CONNECTED", "RESULT", "IDLE")


def split(n: int, parts: int) -> list[int]:
    """``n`` as ``parts`` shares, as equal as can be, the larger first."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def merge_results(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """Several client processes' RESULTs as one: counts add up; the latency percentiles are
    read from their quantiles, each weighted by its process's round trips, by nearest rank
    (``labkit.percentiles``)."""
    counts = ("connections", "round_trips", "bytes_verified", "mismatches", "errors", "unfinished")
    merged: dict[str, Any] = {key: sum(r[key] for r in replies) for key in counts}
    merged["elapsed"] = max(r["elapsed"] for r in replies)
    if len(replies) == 1:  # its own percentiles (-1: no round trip at all)
        for key in ("p50_us", "p99_us"):
            merged[key] = replies[0][key] if replies[0][key] >= 0 else float("nan")
        return merged
    weighted: dict[float, Fraction] = {}  # {latency: round trips}, as a histogram
    for r in replies:  # each quantile stands for an equal share of its process's round trips
        share = Fraction(r["round_trips"], len(r["quantiles"]) or 1)  # 0 if none: left out
        for q in r["quantiles"]:
            weighted[q] = weighted.get(q, Fraction(0)) + share
    for p in (50, 99):  # labkit's one definition: nearest rank
        merged[f"p{p}_us"] = (
            nearest_rank_of_counts(weighted, p) if any(weighted.values()) else float("nan")
        )
    return merged


# == the servers ==================================================================================
def start(label: str, tmp: Path) -> ServerHandle:
    """Start one server by its label: ours through labkit.serve, peers like it."""
    source, program, options = SERVERS[label]
    if source == "ours":
        return serve(program, **options)
    if source == "peer":
        argv = [sys.executable, str(PEERS / program)]
        for key, value in options.items():
            argv += [f"--{key}", str(value)]
    else:
        built = build(PEERS / program, tmp)
        if built is None:
            raise RuntimeError(f"{label}: no C compiler to build {program}")
        argv = [str(built)]
    handle = ServerHandle(label, argv)
    try:
        handle.wait_ready(20)
    except BaseException:
        handle.stop()
        raise
    return handle


def server_cpu_seconds(srv: ServerHandle) -> tuple[float, float | None]:
    """The server's CPU time two ways: whole clock ticks (all threads ever), and the nanosecond
    clocks of its live threads (None where the kernel keeps none)."""
    return srv.cpu_seconds(), threads_cpu_seconds(srv.pid)


def cpu_used(before: tuple[float, float | None], after: tuple[float, float | None]) -> float:
    """As labkit.server_cpu: trust the threads' nanosecond clocks unless the ticks say that a
    thread which has exited took time they no longer show."""
    ticks = after[0] - before[0]
    if before[1] is not None and after[1] is not None and ticks <= after[1] - before[1] + 2 * TICK:
        return after[1] - before[1]
    return ticks


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin_server(pid: int) -> None:
    """Every thread of the server on the first core (threads it starts later inherit it)."""
    if len(cores()) < 2:
        return
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(task), {cores()[0]})
    except OSError:  # a thread just exited, or pinning is not allowed here
        pass


@contextmanager
def clients_on_second_core() -> Iterator[str]:
    """This process (and so every client process it starts) on the second core; says how."""
    ours = cores()
    if len(ours) < 2:
        yield "unpinned (one core)"
        return
    try:
        os.sched_setaffinity(0, {ours[1]})
    except OSError:
        yield "unpinned (not allowed here)"
        return
    try:
        yield f"server on core {ours[0]}, client on core {ours[1]}"
    finally:
        os.sched_setaffinity(0, set(ours))


# == one measurement ==============================================================================
@dataclass
class Sample:
    cpu_us: float  # server CPU per round trip
    rate: float  # round trips per second
    p50_us: float
    p99_us: float
    problems: int  # mismatches, errors, unfinished rounds, connections failed or lost
    client_busy: float  # % of the client's core its processes used: near 100, it limits us


def measure(
    srv: ServerHandle, kind: ClientKind, conns: int, size: int, args: argparse.Namespace
) -> Sample:
    """One run of ``conns`` clients ping-ponging ``size`` bytes for ``args.seconds``."""
    with LoadClient(
        kind, srv.address, conns, size, args.seconds, 0, args.idle_inflight, args.timeout
    ) as client:
        connected = client.connected()
        pin_server(srv.pid)  # threads started for these clients too
        before, client_before = server_cpu_seconds(srv), client.cpu_seconds()
        result = client.go(args.seconds)
        used = cpu_used(before, server_cpu_seconds(srv))
        client_used = client.cpu_seconds() - client_before
    trips = result["round_trips"]
    problems = connected["failed"] + connected["lost"]
    problems += result["mismatches"] + result["errors"] + result["unfinished"]
    return Sample(
        cpu_us=used / trips * 1e6 if trips else float("nan"),
        rate=trips / result["elapsed"] if result["elapsed"] else 0.0,
        p50_us=result["p50_us"],
        p99_us=result["p99_us"],
        problems=problems,
        client_busy=100 * client_used / result["elapsed"] if result["elapsed"] else float("nan"),
    )


@dataclass
class Row:
    """A server's samples under one load, over the repeats."""

    samples: list[Sample] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        values = [getattr(s, attribute) for s in self.samples]
        values = [v for v in values if v == v]  # not NaN
        return statistics.median(values) if values else float("nan")

    def spread(self, attribute: str) -> tuple[float, float]:
        values = [v for s in self.samples if (v := getattr(s, attribute)) == v]
        return (min(values), max(values)) if values else (float("nan"), float("nan"))

    @property
    def problems(self) -> int:
        return sum(s.problems for s in self.samples)


def run_loads(
    labels: list[str],
    handles: dict[str, ServerHandle],
    loads: list[tuple[int, int]],
    kind: ClientKind,
    args: argparse.Namespace,
    repeats: int,
) -> dict[str, dict[str, Row]]:
    """load -> server -> Row, the servers taking turns within each repeat (the order rotated
    from one repeat to the next, so that no server always follows the same one)."""
    table = {load_name(*load): {label: Row() for label in labels} for load in loads}
    for repeat in range(repeats):
        order = labels[repeat % len(labels) :] + labels[: repeat % len(labels)]
        for conns, size in loads:
            for label in order:
                sample = measure(handles[label], kind, conns, size, args)
                table[load_name(conns, size)][label].samples.append(sample)
        print(f"  repeat {repeat + 1}/{repeats} done", flush=True)
    return table


# == the idle run =================================================================================
@dataclass
class IdleResult:
    wanted: int
    connected: int
    lost: int
    connect_seconds: float
    p50_us: float
    p99_us: float
    rss_kib_per_conn: float
    listen_overflows: int


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because a listen queue was full (all
    sockets of this machine), from /proc/net/netstat; None where it is missing."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return None


def idle_run(
    label: str, tmp: Path, kind: ClientKind, n: int, args: argparse.Namespace
) -> IdleResult:
    """``n`` idle connections and one active client against a fresh server: who is served,
    how long the active client's round trips take, what each connection costs in memory."""
    with start(label, tmp) as srv:
        pin_server(srv.pid)
        rss_before, overflows = proc.status_kib(srv.pid), listen_overflows()
        with LoadClient(
            kind, srv.address, 1, 1024, args.seconds * 2, n, args.idle_inflight, args.timeout
        ) as client:
            connected = client.connected()
            rss_after = proc.status_kib(srv.pid)
            overflows_after = listen_overflows()
            result = client.go(args.seconds * 2)
            alive = client.check()
    held = alive["alive"] + min(1, result["round_trips"])  # the active one, if it was served
    return IdleResult(
        wanted=n + 1,
        connected=connected["connected"],
        lost=n + 1 - held,
        connect_seconds=connected["seconds"],
        p50_us=result["p50_us"],
        p99_us=result["p99_us"],
        rss_kib_per_conn=(rss_after - rss_before) / max(1, connected["connected"]),
        listen_overflows=(overflows_after or 0) - (overflows or 0),
    )


def fit_connections(wanted: int, what: str = "idle connections") -> tuple[int, str]:
    """How many connections this machine allows: each side (server, client) needs one
    descriptor per connection, and the client one local port each. Returns the number and a
    sentence when scaled down."""
    soft, _ = raise_open_file_limit()
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    fits = min(soft - 200, high - low - 1000)  # 200: Python, pipes, the listener
    if wanted <= fits:
        return wanted, ""
    return fits, (
        f"{SCALED_DOWN} {wanted:,} {what} need {wanted:,} open files in the server "
        f"and as many in the client, but a process may open {soft:,} here (ulimit -n), so this "
        f"run holds {fits:,}."
    )


# == the run ======================================================================================
def run(args: argparse.Namespace) -> str:
    if args.quick:
        defaults = argparse.ArgumentParser()
        add_arguments(defaults)
        for key, value in QUICK.items():
            if getattr(args, key) == defaults.get_default(key):
                setattr(args, key, value)
    labels = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in labels if s not in SERVERS]
    if unknown:
        raise SystemExit(f"unknown server(s) {unknown}; choose from {list(SERVERS)}")
    loads = parse_loads(args.loads)
    crowd, crowd_notes = [], []
    for n in filter(None, (n.strip() for n in str(args.crowd).split(","))):
        fits, note = fit_connections(int(n), "clients")
        crowd.append((fits, 1024))
        crowd_notes += [note] if note else []
    args.crowd_notes = crowd_notes  # the report says so
    started_load = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="echo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        kind = client_kind(tmp, args.python_client, args.client_processes)
        if compiler() is None or kind.processes > 1:  # no C floor without a compiler either
            labels = [s for s in labels if SERVERS[s][0] != "c"]
        with clients_on_second_core() as pinning:
            table, crowd_table, load_mid = measure_all(labels, loads, crowd, tmp, kind, args)
            idle, idle_note = {}, ""
            if args.idle > 0:
                n, idle_note = fit_connections(args.idle)
                for label in labels:
                    if label not in IDLE_LEFT_OUT:
                        print(f"  idle: {label}", flush=True)
                        idle[label] = idle_run(label, tmp, kind, n, args)
    setting = Setting(
        kind.description,
        pinning,
        (started_load[0], load_mid[0], os.getloadavg()[0]),
        time.monotonic() - started,
    )
    figure = draw(table, labels, args.figure)
    return report(labels, table, crowd_table, idle, idle_note, setting, args, figure)


def measure_all(
    labels: list[str],
    loads: list[tuple[int, int]],
    crowd: list[tuple[int, int]],
    tmp: Path,
    kind: ClientKind,
    args: argparse.Namespace,
) -> tuple[dict[str, dict[str, Row]], dict[str, dict[str, Row]], tuple[float, ...]]:
    """Every server started once; the ping-pong loads, then the crowds. Also returns the load
    average after the ping-pong loads (before the crowds raise it)."""
    crowd_labels = [s for s in labels if s not in CROWD_LEFT_OUT]
    with ExitStack() as stack:
        handles = {label: stack.enter_context(start(label, tmp)) for label in labels}
        for label in labels:  # warm up: first connections, lazy imports, caches
            pin_server(handles[label].pid)
            measure(handles[label], kind, 10, 1024, args)
        print(f"== echo: {len(labels)} servers, {kind.description}", flush=True)
        table = run_loads(labels, handles, loads, kind, args, args.repeats)
        load_mid = os.getloadavg()
        crowd_table = {}
        if crowd:
            crowd_table = run_loads(crowd_labels, handles, crowd, kind, args, args.crowd_repeats)
    return table, crowd_table, load_mid


@dataclass
class Setting:
    client: str
    pinning: str
    load: tuple[float, float, float]  # 1-min load average: before, after the loads, at the end
    seconds: float


# == the report ===================================================================================
def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def ratio(table: dict[str, Row], label: str, reference: str) -> float:
    if reference not in table:
        return float("nan")
    return table[label].median("cpu_us") / table[reference].median("cpu_us")


def report(
    labels: list[str],
    table: dict[str, dict[str, Row]],
    crowd_table: dict[str, dict[str, Row]],
    idle: dict[str, IdleResult],
    idle_note: str,
    setting: Setting,
    args: argparse.Namespace,
    figure: Path | None,
) -> str:
    lines = [
        "## Echo servers: ours beside asyncio, uvloop, gevent and C",
        "",
        f"Ping-pong with `TCP_NODELAY` on 127.0.0.1; {setting.pinning}; load client: "
        f"{setting.client}. Server CPU time from `/proc` (every thread's `schedstat`) per round "
        f"trip, median of {args.repeats} runs of {args.seconds:g} s each (lowest-highest in "
        'brackets); the servers took turns. Lower is better. "Client core busy" is the '
        "share of its core the load client used: well under 100 %, the client is not what "
        "limits the round trips. Load average "
        f"(1 min) {setting.load[0]:.2f} before, {setting.load[1]:.2f} after the ping-pong loads, "
        f"{setting.load[2]:.2f} at the end (the crowd and idle runs raise it themselves: "
        "thousands of thread_echo threads wake at once).",
        "",
    ]
    if figure is not None:
        lines += [f"![server CPU per round trip]({figure.name})", ""]
    lines += summary_table(labels, table)
    for name, rows in table.items():
        lines += load_table(name, rows, args.repeats)
    for name, rows in crowd_table.items():
        lines += load_table(name, rows, args.crowd_repeats)
    lines += [*args.crowd_notes, ""] if getattr(args, "crowd_notes", None) else []
    if crowd_table:
        left = ", ".join(f"{s} ({why})" for s, why in CROWD_LEFT_OUT.items() if s in labels)
        lines += [f"Left out of the crowd runs: {left}.", ""] if left else []
    if idle:
        lines += idle_table(idle, idle_note, args.timeout, labels)
    lines += goals(labels, table, idle)
    return "\n".join(lines)


def summary_table(labels: list[str], table: dict[str, dict[str, Row]]) -> list[str]:
    names = list(table)
    head = " | ".join(f"{load_title(*parse_loads(n)[0])}" for n in names)
    lines = [
        "### Server CPU µs per round trip (÷ uvloop protocol, ÷ asyncio protocol)",
        "",
        f"| server | {head} |",
        "|---|" + "---|" * len(names),
    ]
    for label in labels:
        cells = []
        for name in names:
            rows = table[name]
            cells.append(
                f"{fmt(rows[label].median('cpu_us'))} ({fmt(ratio(rows, label, UVLOOP), 2)}, "
                f"{fmt(ratio(rows, label, ASYNCIO), 2)})"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [""]


def load_table(name: str, rows: dict[str, Row], repeats: int) -> list[str]:
    conns, size = parse_loads(name)[0]
    lines = [
        f"### {load_title(conns, size)} (median of {repeats})",
        "",
        "| server | CPU µs / round trip | ÷ uvloop protocol | ÷ asyncio protocol | "
        "round trips/s | p50 µs | p99 µs | client core busy % | problems |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in rows.items():
        low, high = row.spread("cpu_us")
        lines.append(
            f"| {label} | {fmt(row.median('cpu_us'))} ({fmt(low)}-{fmt(high)}) | "
            f"{fmt(ratio(rows, label, UVLOOP), 2)} | {fmt(ratio(rows, label, ASYNCIO), 2)} | "
            f"{fmt(row.median('rate'), 0)} | {fmt(row.median('p50_us'), 0)} | "
            f"{fmt(row.median('p99_us'), 0)} | {fmt(row.median('client_busy'), 0)} | "
            f"{row.problems} |"
        )
    return lines + [""]


def idle_table(
    idle: dict[str, IdleResult], note: str, timeout: float, labels: list[str]
) -> list[str]:
    n = next(iter(idle.values())).wanted - 1
    lines = [f"### {n:,} idle connections and one active client (1 KiB ping-pong)", ""]
    if note:
        lines += [note, ""]
    lines += [
        "| server | connected | lost | seconds to connect | active p50 µs | active p99 µs | "
        "RSS KiB / connection | listen-queue overflows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in idle.items():
        lines.append(
            f"| {label} | {r.connected:,} | {r.lost:,} | {r.connect_seconds:.1f} | "
            f"{fmt(r.p50_us, 0)} | {fmt(r.p99_us, 0)} | {fmt(r.rss_kib_per_conn, 2)} | "
            f"{r.listen_overflows:,} |"
        )
    left = ", ".join(f"{s} ({why})" for s, why in IDLE_LEFT_OUT.items() if s in labels)
    return lines + [
        "",
        f"Lost: not echoing within {timeout:g} s, when connecting or at the end. RSS counts "
        "the server process's own memory (a fresh server's, after connecting less before), "
        "not the kernel's socket buffers. Listen-queue overflows are the kernel's count for "
        "the whole machine." + (f" Left out: {left}." if left else ""),
        "",
    ]


def goals(
    labels: list[str], table: dict[str, dict[str, Row]], idle: dict[str, IdleResult]
) -> list[str]:
    """The section that judges this run by our servers' goals: a line per goal."""
    goal_loads = [n for n in GOAL_LOADS if n in table]
    return [
        "### Our servers' goals, judged from this run",
        "",
        *goal_cpu(labels, table, goal_loads),
        goal_uvloop(labels, table),
        goal_gevent(labels, table, goal_loads),
        goal_idle(labels, idle),
        "",
    ]


def verdict(failures: list[str], judged: bool) -> str:
    if not judged:
        return "not judged (a server or load it needs was not run)"
    return "yes" if not failures else "no: " + "; ".join(failures)


def goal_cpu(
    labels: list[str], table: dict[str, dict[str, Row]], goal_loads: list[str]
) -> list[str]:
    """Must: our event-driven servers cost no more CPU per round trip than asyncio's."""
    over, judged = [], bool(goal_loads)
    for s in [*OWN_LOOPS, *SAME_API_PEER]:
        reference = SAME_API_PEER.get(s, ASYNCIO)
        if s not in labels or reference not in labels:
            judged &= s not in labels  # a server run without its reference: not judged
            continue
        over += [
            f"{s} {ratio(table[n], s, reference):.2f}× at {load_title(*parse_loads(n)[0])}"
            for n in goal_loads
            if round(ratio(table[n], s, reference), 2) > 1  # as shown: 1.004 reads 1.00
        ]
    lines = [
        "- Must: every event-driven server of ours costs no more CPU per round trip than "
        "asyncio's protocol server at 10 and 100 × 1 KiB and 10 × 64 KiB (our own loops, "
        "selectors, epoll, poll and select; asyncio_echo's variants against asyncio's own "
        f"server with the same API and loop): {verdict(over, judged)}"
    ]
    gevents = [s for s in ("gevent_echo", "gevent_stream_echo", GEVENT_PEER) if s in labels]
    if goal_loads and gevents and ASYNCIO in labels:
        spans = []
        for s in gevents:
            ratios = [ratio(table[n], s, ASYNCIO) for n in goal_loads]
            spans.append(f"{s} {min(ratios):.2f}-{max(ratios):.2f}×")
        lines.append(
            "  (gevent's servers are judged against gevent's own StreamServer below; at these "
            f"loads, to asyncio's protocol server: {', '.join(spans)}.)"
        )
    return lines


def goal_uvloop(labels: list[str], table: dict[str, dict[str, Row]]) -> str:
    """Aim: selectors_echo and epoll_echo within 5% of uvloop's protocol server."""
    close = []
    aim_judged = "100x1024" in table and UVLOOP in labels
    for s in ("selectors_echo", "epoll_echo"):
        if aim_judged and s in labels:
            r = ratio(table["100x1024"], s, UVLOOP)
            close.append(f"{s} {r:.2f}×" + ("" if r <= 1.05 else " (over)"))
    aim = "yes" if close and all("over" not in c for c in close) else "no"
    return (
        "- Aim: `selectors_echo` and `epoll_echo` within 1.05 × uvloop's protocol server at "
        f"100 × 1 KiB: {aim if close else 'not judged'} ({', '.join(close) or '-'})"
    )


def goal_gevent(labels: list[str], table: dict[str, dict[str, Row]], goal_loads: list[str]) -> str:
    """gevent_echo within 10% of a plain gevent StreamServer."""
    gevent_over = [
        f"{ratio(table[n], 'gevent_echo', GEVENT_PEER):.2f}× at {load_title(*parse_loads(n)[0])}"
        for n in goal_loads
        if "gevent_echo" in labels and ratio(table[n], "gevent_echo", GEVENT_PEER) > 1.1
    ]
    g_judged = bool(goal_loads) and "gevent_echo" in labels and GEVENT_PEER in labels
    said = verdict(gevent_over, g_judged)
    return f"- `gevent_echo` ≤ 1.1 × a plain gevent `StreamServer`: {said}"


def goal_idle(labels: list[str], idle: dict[str, IdleResult]) -> str:
    """Every event-driven server of ours holds the idle crowd, one active client served fast."""
    ours = [s for s in labels if SERVERS[s][0] == "ours" and s not in NOT_EVENT_DRIVEN]
    held = [
        f"{s} lost {idle[s].lost:,}, p99 "
        + (f"{idle[s].p99_us / 1000:.2f} ms" if idle[s].p99_us == idle[s].p99_us else "-")
        for s in ours
        if s in idle and (idle[s].lost or not idle[s].p99_us < 1000)
    ]
    n = next(iter(idle.values())).wanted - 1 if idle else 0
    return (
        f"- Every event-driven server of ours holds {n:,} idle connections with one active "
        f"client's p99 under 1 ms, losing none: {verdict(held, bool(idle) and bool(ours))}"
    )


# == the figure ===================================================================================
def draw(table: dict[str, dict[str, Row]], labels: list[str], path: Path | None) -> Path | None:
    """Server CPU µs per round trip, one panel per load, one bar per server (log scale when
    the bars span more than tenfold)."""
    if path is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from labkit.timeline import STATE_COLORS

    colors = {"ours": STATE_COLORS["running"], "peer": STATE_COLORS["waiting"], "c": "#2ca02c"}
    fig = Figure(figsize=(3.2 * len(table) + 2.5, 0.9 + 0.32 * len(labels)), layout="constrained")
    axes = fig.subplots(1, len(table), sharey=True, squeeze=False)[0]
    for ax, (name, rows) in zip(axes, table.items()):
        values = [rows[s].median("cpu_us") for s in labels]
        ax.barh(range(len(labels)), values, color=[colors[SERVERS[s][0]] for s in labels])
        for reference, style in ((ASYNCIO, "--"), (UVLOOP, ":")):
            if reference in rows:  # the references, as lines across the panel
                ax.axvline(rows[reference].median("cpu_us"), color="black", linestyle=style, lw=0.8)
        finite = [v for v in values if v == v and v > 0]
        if finite and max(finite) / min(finite) > 10:
            ax.set_xscale("log")
        ax.set_title(load_title(*parse_loads(name)[0]), fontsize=10)
        ax.set_xlabel("server CPU µs / round trip")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels, fontsize=9)
    axes[0].set_ylim(len(labels) - 0.5, -0.5)
    fig.suptitle(
        "Echo servers: server CPU per round trip (ours blue, peers grey, C green; "
        "dashed: asyncio protocol, dotted: uvloop protocol)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.echo [options]``: run it alone and print the section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.echo", description=ABOUT)
    add_arguments(parser)
    print(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
