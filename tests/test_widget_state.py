"""A freshly opened lesson shows its widget panels, not "Error displaying widget".

JupyterLab draws a stored widget view from the widget state saved in the notebook's metadata
(nbclient saves it while building); without it every panel reads "model not found" until the
cell is run again. So every widget view in a stored output must have its model in that state.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted(
    (Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")
)
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def views(nb: nbformat.NotebookNode) -> list[str]:
    return [
        out["data"][VIEW]["model_id"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if VIEW in out.get("data", {})
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_stored_widget_view_has_its_state(path):
    nb = nbformat.read(path, as_version=4)
    shown = views(nb)
    state = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    missing = [m for m in shown if m not in state]
    assert not missing, f"{path.name}: {len(missing)} widget views without state (rebuild it)"


def test_some_lessons_have_panels():
    assert sum(bool(views(nbformat.read(p, as_version=4))) for p in NOTEBOOKS) >= 5
