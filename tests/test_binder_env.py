"""Binder: the course's pins on top of repo2docker's own Jupyter, without a conflict.

repo2docker builds a conda environment from its lock file for Python 3.11 (notebook,
JupyterLab, jupyterhub-singleuser and what they need), then runs
`pip install -r binder/requirements.txt` in it. pip replaces each package that our file pins
and keeps the rest of theirs; it only warns when one of those kept packages refuses one of ours
(notebook 7.4.7 wants JupyterLab below 4.5), and the student gets a broken page. These tests
build that combined set on paper, from repo2docker's lock (tests/data/repo2docker-VERSION/, made
by tests/data/repo2docker_env.py) and our pins, and check that every package in it has what it
requires. Our pins' requirements come from the packages installed here (the same versions).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from pins import Packages, installed, read_pins, unmet

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "repo2docker-2026.4.0"
ABOUT = json.loads((DATA / "requires.json").read_text(encoding="utf-8"))
LOCK = (DATA / ABOUT["lock"]).read_text(encoding="utf-8")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
COURSE, _ = read_pins(ROOT / "requirements.txt")

_spec = importlib.util.spec_from_file_location(
    "repo2docker_env", DATA.parent / "repo2docker_env.py"
)
assert _spec and _spec.loader
repo2docker_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(repo2docker_env)


def _binder_python() -> str:
    """The Python in repo2docker's lock (python-3.11.N-<build>.conda)."""
    (version,) = re.findall(r"/python-(3\.\d+\.\d+)-[^/]*cpython\.conda", LOCK)
    return version


# mybinder.org's machines: Linux on x86-64, the lock's CPython.
BINDER = {
    "os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "x86_64", "platform_release": "", "platform_version": "",
    "implementation_name": "cpython", "platform_python_implementation": "CPython",
    "implementation_version": _binder_python(), "python_full_version": _binder_python(),
    "python_version": ".".join(_binder_python().split(".")[:2]),
}  # fmt: skip


def theirs() -> Packages:
    """repo2docker's packages by their canonical names, as pip matches them with ours."""
    return {canonicalize_name(name): (p["version"], p["requires"])
            for name, p in ABOUT["packages"].items()}  # fmt: skip


def ours(pins=COURSE) -> Packages:
    """Our pins that apply on Binder, each with the requirements of the installed copy, plus
    labkit (pyproject.toml's list) and the course's Jupyter settings package (none)."""
    out: Packages = {}
    for name, pin in pins.items():
        if pin.applies(BINDER):
            version, requires = installed(name)
            assert version == pin.version, (
                f"{name} {version} installed, {pin.version} pinned: reinstall requirements-dev.txt"
            )
            out[name] = (version, requires)
    out["asynclab-labkit"] = (PROJECT["version"], PROJECT["dependencies"])
    out["asynclab-jupyterlab-settings"] = ("0", [])
    return out


def test_the_requirements_file_describes_repo2docker_s_lock():
    """Every Python package of the vendored lock, at its version, and nothing else."""
    assert ABOUT["repo2docker"] in DATA.name
    locked = repo2docker_env.python_packages(LOCK)
    assert {name: p["version"] for name, p in ABOUT["packages"].items()} == locked
    assert {"notebook", "jupyterlab", "jupyter-server", "jupyterhub"} <= set(theirs())


def test_binder_s_python_is_the_one_runtime_txt_asks_and_our_pins_accept():
    runtime = (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip()
    assert runtime == f"python-{BINDER['python_version']}"
    refused = []
    for name, pin in COURSE.items():
        if pin.applies(BINDER):
            installed(name)  # a clear error if it is not
            needs = importlib.metadata.metadata(name).get("Requires-Python") or ""
            if not SpecifierSet(needs).contains(_binder_python()):
                refused.append(f"{name} {pin.version} needs Python {needs}")
    assert refused == []


def test_our_pins_and_repo2docker_s_environment_satisfy_each_other():
    combined = {**theirs(), **ours()}  # pip replaces what we pin, keeps the rest of theirs
    assert unmet(combined, BINDER) == []
    assert combined["notebook"][0] == COURSE["notebook"].version


def test_the_check_catches_repo2docker_s_notebook_refusing_our_jupyterlab():
    """Without our notebook pin, Binder keeps its notebook 7.4.7: the check must say so."""
    without = {name: pin for name, pin in COURSE.items() if name != "notebook"}
    combined = {**theirs(), **ours(without)}
    problems = unmet(combined, BINDER)
    assert any(p.startswith("notebook 7.4.7 requires jupyterlab") for p in problems), problems
    req = Requirement(next(r for r in theirs()["notebook"][1] if r.startswith("jupyterlab")))
    assert not req.specifier.contains(COURSE["jupyterlab"].version)
