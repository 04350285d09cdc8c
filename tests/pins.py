"""The pinned requirement files, read and checked with `packaging` (what pip itself uses).

A package set is {canonical name: (version, requirements)}, each requirement a `Requires-Dist`
string. Markers are evaluated for one environment: this interpreter's
(`packaging.markers.default_environment()`), or Binder's (tests/test_binder_env.py).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

Environment = dict[str, str]
Packages = dict[str, tuple[str, list[str]]]


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    version: str
    marker: Marker | None  # the platforms it is installed on; None: all

    def applies(self, env: Environment) -> bool:
        return self.marker is None or self.marker.evaluate({**env, "extra": ""})


def read_pins(path: Path) -> tuple[dict[str, Pin], list[str]]:
    """({name: Pin}, local lines) of a compiled file: its `name==version ; marker` lines, and
    the lines that name a folder of this repository (`-e .`) or another file (`-r x.txt`)."""
    pins, local = {}, []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-e ", "-r ", "-c ", "./", "../")):
            local.append(line)
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{path.name}: {name} pinned twice"
        pins[name] = Pin(name, spec.version, req.marker)
    return pins, local


def installed(name: str) -> tuple[str, list[str]]:
    """(version, requirements) of a package installed beside this interpreter."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise LookupError(f"{name} is not installed: pip install -r requirements-dev.txt") from None
    return dist.version, list(dist.requires or [])


def _active(requires: Iterable[str], extras: set[str], env: Environment) -> Iterator[Requirement]:
    """The requirements that hold on `env` for a package installed with `extras`."""
    for text in requires:
        req = Requirement(text)
        if req.marker is None or any(
            req.marker.evaluate({**env, "extra": extra}) for extra in ("", *extras)
        ):
            yield req


def needed(
    roots: Iterable[Requirement], requires_of: Callable[[str], list[str]], env: Environment
) -> set[str]:
    """Every package that `roots` need on `env`, following each package's requirements (and
    those of the extras asked of it) as `requires_of(name)` gives them."""
    extras: dict[str, set[str]] = {}
    queue = list(_active((str(r) for r in roots), set(), env))
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        asked = {canonicalize_name(e) for e in req.extras}
        if name in extras and asked <= extras[name]:
            continue
        extras.setdefault(name, set()).update(asked)
        queue.extend(_active(requires_of(name), extras[name], env))
    return set(extras)


def unmet(packages: Packages, env: Environment) -> list[str]:
    """What `packages`, installed together on `env`, require and do not have: a missing package
    or a version outside the range asked (extras asked by any package count too)."""
    extras: dict[str, set[str]] = {name: set() for name in packages}
    changed = True
    while changed:  # the extras asked of each package, by any package, until nothing is added
        changed = False
        for name, (_, requires) in packages.items():
            for req in _active(requires, extras[name], env):
                target = canonicalize_name(req.name)
                asked = {canonicalize_name(e) for e in req.extras}
                if target in extras and not asked <= extras[target]:
                    extras[target] |= asked
                    changed = True
    problems = []
    for name, (version, requires) in sorted(packages.items()):
        for req in _active(requires, extras[name], env):
            target = canonicalize_name(req.name)
            if target not in packages:
                problems.append(f"{name} {version} requires {req}: not installed")
            elif not req.specifier.contains(packages[target][0], prereleases=True):
                problems.append(
                    f"{name} {version} requires {req}: {target} is {packages[target][0]}"
                )
    return problems
