"""A lesson calls only labkit's public names: what a student may call too.

A name that starts with ``_`` is labkit's own plumbing. It may change at any time, and a lesson
that reaches for it shows the student code they are not meant to use. So no lesson source
(``notebooks/src/*.py``) may name one: not as ``labkit.x._name`` or ``alias._name`` (an alias
bound to anything imported from labkit), and not as ``from labkit... import _name``.
Dunder names (``Future.__await__``) are the protocols a lesson teaches, and other packages'
private names (``asyncio.tasks._PyTask``) are theirs to show: both are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCES = sorted((Path(__file__).resolve().parent.parent / "notebooks" / "src").glob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _from_labkit(module: str | None) -> bool:
    return module is not None and (module == "labkit" or module.startswith("labkit."))


def labkit_names(tree: ast.AST) -> set[str]:
    """The names a source binds to labkit or to something imported from it."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _from_labkit(alias.name):
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _from_labkit(node.module):
            bound.update(alias.asname or alias.name for alias in node.names)
    return bound


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def private_uses(source: str) -> list[str]:
    """Every private labkit name a lesson source uses, as written (``labkit.x._f``)."""
    tree = ast.parse(source)
    bound = labkit_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _from_labkit(node.module):
            found += [f"from {node.module} import {a.name}" for a in node.names if _private(a.name)]
            if any(_private(part) for part in node.module.split(".")):
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [
                f"import {a.name}"
                for a in node.names
                if _from_labkit(a.name) and any(_private(p) for p in a.name.split("."))
            ]
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and _root(node) in bound
            and not isinstance(node.ctx, ast.Store)
        ):
            found.append(ast.unparse(node))
    return sorted(set(found))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_lesson_calls_a_private_labkit_function(source):
    uses = private_uses(source.read_text(encoding="utf-8"))
    assert not uses, (
        f"{source.name} uses labkit's private names {uses}: make the function public (and "
        "show it with labkit.show), or write the code in the lesson"
    )


def test_the_check_can_fail():
    assert private_uses("import labkit\nlabkit.asyncio_lab._quiet_hub()") == [
        "labkit.asyncio_lab._quiet_hub"
    ]
    assert private_uses("from labkit import asyncio_lab as lab\nlab._describe(e)") == [
        "lab._describe"
    ]
    assert private_uses("from labkit.timeline import _natural") == [
        "from labkit.timeline import _natural"
    ]
    assert private_uses("from labkit.timeline import Recorder\nRecorder._open") == [
        "Recorder._open"
    ]
    assert private_uses("import labkit._private.x") == ["import labkit._private.x"]
    assert private_uses("from labkit._private import x") == ["from labkit._private import ..."]
    # allowed: protocols, other packages' private names, labkit's public names
    assert not private_uses("from labkit.eventloop import futures\nfutures.Future.__await__")
    assert not private_uses("import asyncio\nasyncio.tasks._PyTask\nasyncio.tasks._all_tasks")
    assert not private_uses("import labkit\n_ = labkit.claim('ok', 1)\nlabkit.show(labkit.serve)")
