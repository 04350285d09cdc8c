"""Every lesson cell fits on a screen, and every claim a lesson prints is the one it checks.

Reads the percent-format sources in notebooks/src (what the notebooks are built from).
"""

import ast
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))
import build  # noqa: E402

SOURCES = sorted((NOTEBOOKS / "src").glob("[0-9][0-9]_*.py"))

#: a code cell longer than this, counting every line (blank ones too), does not fit on a screen
MAX_CELL_LINES = 30


def code_cells(source: Path) -> list[str]:
    return [
        body for kind, body in build.parse(source.read_text(encoding="utf-8")) if kind == "code"
    ]


def too_long(cells: list[str]) -> list[str]:
    """The first line and length of every cell over MAX_CELL_LINES lines."""
    return [
        f"{len(c.splitlines())} lines: {c.splitlines()[0]!r}"
        for c in cells
        if len(c.splitlines()) > MAX_CELL_LINES
    ]


def _is_print(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "print"
    )


def _truth(node: ast.AST) -> bool:
    """An expression whose value is a truth: a comparison, and/or/not, all()/any()."""
    if isinstance(node, (ast.Compare, ast.BoolOp)):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return True
    if isinstance(node, ast.FormattedValue):
        return _truth(node.value)
    if isinstance(node, ast.JoinedStr):
        return any(_truth(v) for v in node.values)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("all", "any", "isinstance")
    )


def _sentence(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _values(args: list[ast.expr]) -> list[ast.expr]:
    """The printed values: plain arguments and the {fields} of f-strings."""
    values = []
    for a in args:
        if isinstance(a, ast.JoinedStr):
            values += [v.value for v in a.values if isinstance(v, ast.FormattedValue)]
        elif not isinstance(a, ast.Constant):
            values.append(a)
    return values


def printed_claims(cell: str) -> list[str]:
    """Claims stated twice: a print of a truth (``print("fast:", t < 1)``) that should be
    ``labkit.claim``, a print immediately followed by an assert of what it printed, or a
    sentence printed right after the assert (or the loop of asserts) that checked it."""
    found = []
    tree = ast.parse(cell)
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            for i, stmt in enumerate(body):
                if not _is_print(stmt):
                    continue
                args = stmt.value.args
                if any(_truth(a) for a in args):
                    found.append(ast.unparse(stmt))
                    continue
                before = body[i - 1] if i else None
                if isinstance(before, (ast.For, ast.While)):
                    before = before.body[-1]
                if isinstance(before, ast.Assert) and args and all(map(_sentence, args)):
                    found.append(ast.unparse(stmt))  # the check, then its sentence, apart
                    continue
                following = body[i + 1] if i + 1 < len(body) else None
                if isinstance(following, ast.Assert) and args and _sentence(args[0]):
                    tested = {ast.dump(n) for n in ast.walk(following.test)}
                    if any(ast.dump(v) in tested for v in _values(args)):
                        found.append(ast.unparse(stmt))
    return found


def uses_claim(cells: list[str]) -> bool:
    for cell in cells:
        for node in ast.walk(ast.parse(cell)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "claim"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "labkit"
            ):
                return True
    return False


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_code_cell_is_longer_than_a_screen(source):
    long_cells = too_long(code_cells(source))
    assert not long_cells, (
        f"{source.name}: code cells over {MAX_CELL_LINES} lines (move the "
        f"plumbing into labkit and show it): {long_cells}"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_claims_go_through_labkit_claim(source):
    cells = code_cells(source)
    assert uses_claim(cells), f"{source.name} states no claim with labkit.claim"
    twice = [p for cell in cells for p in printed_claims(cell)]
    assert not twice, (
        f"{source.name}: a printed truth or a print restated by the next assert; "
        f"write labkit.claim(sentence, condition, measured=...) once: {twice}"
    )


def test_the_checks_can_fail():
    long_cell = "\n".join(f"x{i} = {i}" for i in range(MAX_CELL_LINES + 1))
    assert too_long([long_cell, "x = 1"]) == [f"{MAX_CELL_LINES + 1} lines: 'x0 = 0'"]
    assert printed_claims('print("fast:", t < 1)\nassert t < 1')
    assert printed_claims('for n in ns:\n    print(f"{n} ok: {all(x)}")')
    assert printed_claims('print("ok:", ok)\nassert ok and n == 2')
    assert not printed_claims('print("first ones:", log[:4])\nlabkit.claim("same", a == b)')
    assert printed_claims('print(f"ok: {ok}")\nassert ok')
    assert not printed_claims('print("\\n".join(said))\nassert said == ["hi"]')
    assert not printed_claims('print(echoed)\nassert echoed == "hi"')
    assert printed_claims('assert ok\nprint("every page verified")')
    assert printed_claims('for b in bodies:\n    assert b\nprint(f"all {n} verified")')
    assert not printed_claims('assert ok\nprint("values:", values)')
    assert uses_claim(['import labkit\nlabkit.claim("it holds", True)'])
    assert not uses_claim(['print("it holds:", True)'])
