"""The map of the house cannot drift from the house.

* ``docs/floors.png`` is drawn from ``tests/test_floors.py``'s FLOORS, and says so: the PNG
  carries the lists it was drawn from, and they are the lists the floor test checks now;
* a figure drawn now names exactly those modules, floor by floor;
* ``docs/architecture.md`` shows the figure and names every floor; README's one-screen map
  links it and stays one screen.
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_spec = importlib.util.spec_from_file_location("floors_figure", DOCS / "floors.py")
assert _spec and _spec.loader
floors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floors)

from test_floors import FLOORS, ORDER  # noqa: E402  (the lists the floor test checks)

README_MAP_LINES = 25


def expected_modules(lists: dict[str, list[str]]) -> list[str]:
    return [module for floor in ORDER for module in lists[floor]]


def test_the_figure_names_exactly_the_modules_of_each_floor():
    assert floors.FLOORS == FLOORS and floors.ORDER == ORDER
    fig = floors.figure()
    assert floors.drawn_modules(fig) == expected_modules(FLOORS)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert all(floor in texts for floor in ORDER)


def test_docs_floors_png_was_drawn_from_the_floors_checked_now():
    assert floors.stored_floors() == FLOORS, "docs/floors.png is stale: run `python docs/floors.py`"


def test_a_stale_picture_is_told_apart(tmp_path, monkeypatch):
    moved = {**FLOORS, "domain": [m for m in FLOORS["domain"] if m != "labkit.figures"]}
    monkeypatch.setattr(floors, "FLOORS", moved)
    floors.write(tmp_path / "floors.png")
    assert floors.stored_floors(tmp_path / "floors.png") != FLOORS
    assert "labkit.figures" not in floors.drawn_modules(floors.figure())


def test_architecture_shows_the_figure_and_names_every_floor():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    assert re.search(r"!\[[^\]]*\]\(floors\.png\)", text)
    missing = [floor for floor in ORDER if f"**{floor}**" not in text]
    assert not missing, f"docs/architecture.md does not describe the floors {missing}"


@pytest.fixture
def readme_map() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## How it fits together\n(.*?)(?=^## )", readme, re.DOTALL | re.MULTILINE)
    assert found, "README has no 'How it fits together' section"
    return found[1]


def test_readme_keeps_a_one_screen_map_that_links_the_full_one(readme_map):
    assert "](docs/architecture.md)" in readme_map
    assert "](docs/floors.png)" in readme_map
    assert len(readme_map.strip().splitlines()) <= README_MAP_LINES
