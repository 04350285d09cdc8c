"""A freshly opened lesson shows its widget panels, not "Error displaying widget".

JupyterLab draws a stored widget view from the widget state saved in the notebook's metadata
(nbclient saves it while building); without it every panel reads "model not found" until the
cell is run again. So every widget view in a stored output must have its model in that state,
and so must every widget that model refers to (its layout, style and children).

JupyterLab draws a widget view at all only in a trusted notebook: in an untrusted one it shows
the view's plain-text stand-in, ``VBox(children=(IntSlider(...``. A notebook is trusted when
this user's Jupyter has signed its content, so the student's copies must be signed when they
are made. tests/test_browser.py checks both in JupyterLab (marker ``browser``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

COURSE = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(COURSE.glob("[0-9][0-9]_*.ipynb")) + sorted(COURSE.glob("zh/[0-9][0-9]_*.ipynb"))
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
REFERENCE = re.compile(r"IPY_MODEL_([0-9a-f]{32})")


def name(path: Path) -> str:
    return str(path.relative_to(COURSE).with_suffix(""))


def views(nb: nbformat.NotebookNode) -> list[str]:
    return [
        out["data"][VIEW]["model_id"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if VIEW in out.get("data", {})
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[name(p) for p in NOTEBOOKS])
def test_every_stored_widget_view_has_its_state(path):
    nb = nbformat.read(path, as_version=4)
    shown = views(nb)
    state = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    missing = [m for m in shown if m not in state]
    assert not missing, f"{name(path)}: {len(missing)} widget views without state (rebuild it)"
    referred = {
        ref for model in state.values() for ref in REFERENCE.findall(json.dumps(model["state"]))
    }
    assert referred <= set(state), (
        f"{name(path)}: its widgets refer to {len(referred - set(state))} models it did not store"
    )


def test_some_lessons_have_panels():
    assert sum(bool(views(nbformat.read(p, as_version=4))) for p in NOTEBOOKS) >= 5


def test_the_students_copies_open_trusted(tmp_path, monkeypatch):
    """What labkit.workspace.prepare() copies, this user's Jupyter trusts (its notary, in the
    Jupyter data folder, holds the signature of each copy's content)."""
    from nbformat.sign import NotebookNotary

    from labkit import workspace

    data = tmp_path / "jupyter-data"
    data.mkdir()
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    work = tmp_path / "my-work"
    workspace.prepare(work)
    copies = sorted(work.glob("*.ipynb"))
    assert copies
    with NotebookNotary(data_dir=str(data)) as notary:
        untrusted = [
            p.name for p in copies if not notary.check_signature(nbformat.read(p, as_version=4))
        ]
    assert not untrusted, (
        f"prepare() left {len(untrusted)} of {len(copies)} copies untrusted: their widget "
        f"panels show as plain text in JupyterLab ({', '.join(untrusted[:3])}, ...)"
    )
