"""labkit stays readable by size: no module over 400 lines, no function over 60 (the exercise
tables, each lesson's ``exercises()``, excepted: they are lists of questions), and no teaching
server over 140 lines, so that its idea fits on the first screens."""

import ast
from pathlib import Path

import pytest

LABKIT = Path(__file__).resolve().parent.parent / "labkit"
MODULES = sorted(p for p in LABKIT.rglob("*.py") if "__pycache__" not in p.parts)
MODULE_LINES, FUNCTION_LINES, SERVER_LINES = 400, 60, 140


def ids(path: Path) -> str:
    return str(path.relative_to(LABKIT))


@pytest.mark.parametrize("path", MODULES, ids=ids)
def test_no_module_is_too_long(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    limit = SERVER_LINES if path.parent.name == "servers" else MODULE_LINES
    assert lines <= limit, f"{ids(path)}: {lines} lines, more than {limit}: split it by job"


def long_functions(source: str, exercise_table_allowed: bool = False) -> list[str]:
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > FUNCTION_LINES
        and not (exercise_table_allowed and node.name == "exercises")
    ]


@pytest.mark.parametrize("path", MODULES, ids=ids)
def test_no_function_is_too_long(path):
    long = long_functions(path.read_text(encoding="utf-8"), path.parent.name == "exercises")
    assert not long, f"{ids(path)}: functions over {FUNCTION_LINES} lines: {', '.join(long)}"


def test_the_limit_catches_a_long_function_but_not_an_exercise_table():
    body = "\n".join(f"    x{i} = {i}" for i in range(FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}\n") == [f"f ({FUNCTION_LINES + 1} lines)"]
    assert long_functions(f"async def f():\n{body}\n")
    assert not long_functions(f"def exercises():\n{body}\n", exercise_table_allowed=True)
    assert long_functions(f"def exercises():\n{body}\n")
