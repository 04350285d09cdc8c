"""Each notebook's cells are exactly its source in notebooks/src (edit the source, then build)."""

import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))
import build  # noqa: E402

SOURCES = sorted((NOTEBOOKS / "src").glob("[0-9][0-9]_*.py"))


def test_every_source_has_a_notebook_and_back():
    assert {p.stem for p in SOURCES} == {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    nb = nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4)
    cells = [(c.cell_type, c.source) for c in nb.cells]
    assert cells == build.parse(source.read_text(encoding="utf-8")), (
        f"run `python notebooks/build.py {source.stem}` after editing the source"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_was_run_and_has_no_errors(source):
    nb = nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "some cells have no stored run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
