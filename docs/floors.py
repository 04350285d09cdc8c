"""Draw labkit's floors into docs/floors.png, from the very lists tests/test_floors.py checks.

    python docs/floors.py          # write docs/floors.png

One band per floor, top floor first, each naming its modules; the programs (teaching servers
and lesson scripts) stand beside the house, since they are started by name, never imported.
The PNG carries the lists it was drawn from (a text chunk, ``floors``), so a test can tell a
stale picture from a fresh one without comparing pixels.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HERE = Path(__file__).resolve().parent
PNG = HERE / "floors.png"
_spec = importlib.util.spec_from_file_location(
    "floor_rules", HERE.parent / "tests" / "test_floors.py"
)
assert _spec and _spec.loader
floor_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor_rules)
FLOORS: dict[str, list[str]] = floor_rules.FLOORS
ORDER: list[str] = floor_rules.ORDER
PROGRAMS: tuple[str, ...] = floor_rules.PROGRAMS

#: what each floor is for, in a few words
ROLES = {
    "face": "what a notebook calls",
    "lessons": "each lesson's exercises",
    "runs": "where a strategy runs",
    "domain": "clients, loops, spans, figures",
    "plumbing": "processes, limits, /proc",
}
WRAP = 80  # characters of module names per line in a band
GAP = "   "  # between two module names
CHAR = 9 * 0.6 / 72  # the width of a 9 pt monospace character, in inches


def short(module: str) -> str:
    return module.removeprefix("labkit.") if module != "labkit" else "labkit"


def band_lines(floor: str) -> list[str]:
    return textwrap.wrap(GAP.join(short(m) for m in FLOORS[floor]), WRAP)


def figure() -> Figure:
    """The floors, top to bottom; each module's name is a text with gid ``module:NAME``."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    heights = [0.55 + 0.32 * len(band_lines(f)) for f in ORDER]
    fig = Figure(figsize=(9.0, 0.5 + sum(heights) + 0.15 * len(ORDER)), layout="none")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    total = sum(heights) + 0.15 * len(ORDER)
    ax.set_xlim(0, 9.0)
    ax.set_ylim(-0.5, total)
    top = total
    for floor, height in zip(ORDER, heights):
        bottom = top - height
        ax.add_patch(
            FancyBboxPatch(
                (0.1, bottom), 7.2, height - 0.05, boxstyle="round,pad=0,rounding_size=0.08",
                facecolor="#eef3f8", edgecolor="#767676", linewidth=0.8,
            )
        )  # fmt: skip
        ax.text(0.25, top - 0.3, floor, fontsize=11, fontweight="bold", va="center")
        ax.text(1.35, top - 0.3, ROLES.get(floor, ""), fontsize=9, va="center", color="#444444")
        _module_names(ax, floor, top - 0.62)
        top = bottom - 0.15
    ax.add_patch(
        FancyArrowPatch(
            (7.55, total - 0.2), (7.55, 0.1), arrowstyle="-|>", mutation_scale=14, color="#1f77b4"
        )
    )
    ax.text(7.7, total / 2, "imports go\ndown, never up", fontsize=9, va="center")
    programs = ", ".join(f"{p.rstrip('.').removeprefix('labkit.')}/*" for p in PROGRAMS)
    ax.text(0.1, -0.3, f"Programs ({programs}) are started by name, never imported.", fontsize=9)
    return fig


def _module_names(ax: object, floor: str, y: float) -> None:
    """One text per module, laid out left to right and wrapped as band_lines wraps them."""
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    names = iter(FLOORS[floor])
    for line in band_lines(floor):
        x = 0.3
        for word in line.split(GAP):
            module = next(names)
            assert short(module) == word
            ax.text(x, y, word, fontsize=9, family="monospace", va="center", gid=f"module:{module}")
            x += CHAR * (len(word) + len(GAP))
        y -= 0.32


def drawn_modules(fig: Figure) -> list[str]:
    """The modules a figure names, in the order drawn (read back from its texts)."""
    gids = [t.get_gid() or "" for t in fig.axes[0].texts]
    return [gid.removeprefix("module:") for gid in gids if gid.startswith("module:")]


def stored_floors(path: Path = PNG) -> dict[str, list[str]]:
    """The floors a PNG says it was drawn from."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text["floors"])  # type: ignore[attr-defined]


def write(path: Path = PNG) -> None:
    fig = figure()
    fig.savefig(path, dpi=110, facecolor="white", metadata={"floors": json.dumps(FLOORS)})


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else PNG)
    print(f"wrote {PNG.relative_to(HERE.parent) if len(sys.argv) == 1 else sys.argv[1]}")
