"""labkit is built in floors, and no import runs up (docs/architecture.md, "Floors"): a lower
floor never reaches for a higher one, not even inside a function, and no two modules import
each other. ``docs/floors.py`` draws FLOORS into ``docs/floors.png``.

Floors, top to bottom (a module may import its own floor or any floor below):

    face       labkit (the package), __main__, doctor, workspace, kernel_setup, interrupts
    lessons    exercises (they check what the lessons do, so they stand where the lessons stand)
    runs       where a strategy runs: here, or gevent-patched in a child process
    domain     clients, eventloop, spans, timeline, figures, widgets, protocol, filestore, ...
    plumbing   background, child, launch, accept_policy, count_calls, counters, progress,
               limits, proc, ipc_kernels, and the lists of programs (the packages
               labkit.servers and labkit.scripts themselves)

The programs (each teaching server and lesson script) are started by name, never imported by
labkit: they may use any floor, and nothing in labkit imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LABKIT = Path(__file__).resolve().parent.parent / "labkit"

FLOORS = {
    "face": [
        "labkit",
        "labkit.__main__",
        "labkit.doctor",
        "labkit.workspace",
        "labkit.kernel_setup",
        "labkit.interrupts",
    ],
    "lessons": ["labkit.exercises"],
    "runs": ["labkit.runs"],
    "domain": [
        "labkit.clients",
        "labkit.eventloop",
        "labkit.spans",
        "labkit.timeline",
        "labkit.figures",
        "labkit.widgets",
        "labkit.protocol",
        "labkit.filestore",
        "labkit.file_requests",
        "labkit.bench",
        "labkit.source",
        "labkit.claims",
        "labkit.server_cpu",
        "labkit.asyncio_lab",
        "labkit.compute",
        "labkit.cpu_lab",
        "labkit.grading",
        "labkit.locust_lab",
        "labkit.percentiles",
    ],
    "plumbing": [
        "labkit.background",
        "labkit.child",
        "labkit.launch",
        "labkit.accept_policy",
        "labkit.count_calls",
        "labkit.counters",
        "labkit.serving",
        "labkit.supervisor",
        "labkit.wsgi_deadlines",
        "labkit.progress",
        "labkit.limits",
        "labkit.cpus",
        "labkit.proc",
        "labkit.netstat",
        "labkit.ipc_kernels",
        "labkit.servers",
        "labkit.scripts",
    ],
}
ORDER = list(FLOORS)  # top first
PROGRAMS = ("labkit.servers.", "labkit.scripts.")


def module_name(path: Path) -> str:
    parts = ["labkit", *path.relative_to(LABKIT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def exists(name: str) -> bool:
    base = LABKIT.parent / name.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports_of(path: Path) -> set[str]:
    """Every labkit module that ``path`` imports, at any depth (function bodies too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "labkit"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "labkit":
                continue
            for alias in node.names:  # `from labkit import child` imports labkit.child
                sub = f"{node.module}.{alias.name}"
                found.add(sub if exists(sub) else node.module)
    return found


def floor_of(name: str) -> str | None:
    if name.startswith(PROGRAMS):
        return None
    best = max(
        (
            prefix
            for floor in FLOORS.values()
            for prefix in floor
            if name == prefix or (prefix != "labkit" and name.startswith(prefix + "."))
        ),
        key=len,
        default="",
    )
    return next((floor for floor, prefixes in FLOORS.items() if best in prefixes), "unplaced")


MODULES = {module_name(p): p for p in sorted(LABKIT.rglob("*.py"))}
GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def test_every_module_has_a_floor():
    unplaced = [m for m in MODULES if floor_of(m) == "unplaced"]
    assert not unplaced, f"add these modules to a floor in FLOORS: {unplaced}"


@pytest.mark.parametrize("name", [m for m in MODULES if floor_of(m)])
def test_no_import_runs_up(name):
    here = ORDER.index(floor_of(name))
    up = [
        (m, floor_of(m))
        for m in sorted(GRAPH[name])
        if floor_of(m) is None or ORDER.index(floor_of(m)) < here
    ]
    assert not up, f"{name} (floor {floor_of(name)!r}) imports from above: {up}"


def test_no_import_cycles():
    """Depth-first search over the module graph; the package face is skipped as a target,
    since every submodule import runs labkit/__init__ first by Python's own rules."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(GRAPH.get(name, ())):
            if dep == "labkit" or dep not in MODULES:
                continue
            if state.get(dep) == "open":
                pytest.fail(f"import cycle: {' -> '.join([*path, name, dep])}")
            if dep not in state:
                visit(dep, [*path, name])
        state[name] = "done"

    for name in MODULES:
        if name not in state:
            visit(name, [])


PROCESS_PLUMBING = {"labkit.background", "labkit.child", "labkit.launch", "labkit.runs"}


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("labkit.clients")])
def test_clients_know_nothing_of_processes(name):
    """Where a strategy runs (here, or in a patched child) is chosen in labkit.runs."""
    assert not GRAPH[name] & PROCESS_PLUMBING, f"{name} imports {GRAPH[name] & PROCESS_PLUMBING}"


def test_the_checks_can_fail(tmp_path):
    """A function-level import is seen; runs is above the clients; a program is above all."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f():\n    from labkit.background import run_script\n"
        "    from labkit import child, nothing_here\n"
    )
    assert imports_of(bad) == {"labkit.background", "labkit.child", "labkit"}
    assert ORDER.index(floor_of("labkit.runs")) < ORDER.index(floor_of("labkit.clients.pages"))
    assert floor_of("labkit.servers.select_echo") is None  # a program: never imported
    assert floor_of("labkit.nowhere") == "unplaced"
