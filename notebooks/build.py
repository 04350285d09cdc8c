"""Build the lesson notebooks from their sources and store fresh outputs.

Each lesson is written as a plain Python file in ``notebooks/src/`` (percent format: a line
``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines start with ``# ``),
which reviews and diffs well. This script turns it into ``notebooks/NN_topic.ipynb`` and runs it
top to bottom in a fresh kernel, so the stored outputs are exactly what a fresh run prints
(``pytest --nbval`` then checks that they still are).

    python notebooks/build.py                 # every lesson
    python notebooks/build.py 00_start_here   # one lesson
    python notebooks/build.py --zh            # only the Chinese notebooks (nothing is run)
    python notebooks/build.py --prose NAME    # only markdown changed: update it, run nothing

After a lesson is built, its Chinese notebook is made again from it and its translation
(``notebooks/translation.py``), so their code and outputs stay the same.

``tests/test_notebook_sources.py`` fails if a notebook's cells drift from its source.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from labkit.ipc_kernels import IPCKernelManager

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
MARKER = re.compile(r"^# %%(?: \[(markdown)\])?\s*$")


def parse(text: str) -> list[tuple[str, str]]:
    """Split a percent-format source into (kind, source) cells."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = MARKER.match(line)
        if m:
            cells.append(("markdown" if m.group(1) else "code", []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        body = "\n".join(lines).strip("\n")
        if body:
            out.append((kind, body))
    return out


def to_notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    # the kernelspec ipykernel installs, word for word: JupyterLab rewrites any other display
    # name on opening, and the lesson would open marked modified
    nb.metadata.kernelspec = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"
    }  # fmt: skip
    nb.metadata.language_info = {"name": "python"}
    for i, (kind, body) in enumerate(cells):
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(
            body
        )
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding changes no id
        nb.cells.append(cell)
    return nb


def build(name: str, timeout: int = 300) -> Path:
    # A claim that fails while building must stop the build, never be stored as a ✘ output.
    os.environ["LABKIT_STRICT_CLAIMS"] = "1"
    source = SOURCES / f"{name}.py"
    nb = to_notebook(parse(source.read_text(encoding="utf-8")))
    # A lesson that copies files into the student's my-work/ (lesson 12's skeletons) writes
    # them to a fresh folder: the build neither fills the repository's my-work/ nor stores
    # what a student left there.
    before = os.environ.get("ASYNCLAB_WORK_DIR")
    with tempfile.TemporaryDirectory(prefix="asynclab-build-work-") as work:
        os.environ["ASYNCLAB_WORK_DIR"] = work
        try:
            NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                kernel_manager_class=IPCKernelManager,
                resources={"metadata": {"path": str(HERE)}},
            ).execute()
        finally:
            os.environ.pop("ASYNCLAB_WORK_DIR")
            if before is not None:
                os.environ["ASYNCLAB_WORK_DIR"] = before
    for cell in nb.cells:  # keep the files small and free of run-specific noise
        cell.metadata.pop("execution", None)
    # The widgets' state (nbclient stores it) stays: JupyterLab draws each panel from it when
    # the notebook is opened, before anything runs, instead of "Error displaying widget".
    target = HERE / f"{name}.ipynb"
    nbformat.write(nb, target)
    return target


def update_prose(name: str) -> Path:
    """Take a source's markdown into its built notebook without running anything.

    Only when the code cells are exactly those of the built notebook (else a full build is
    needed, and this raises): outputs depend on code alone, so they stay valid.
    """
    source = to_notebook(parse((SOURCES / f"{name}.py").read_text(encoding="utf-8")))
    target = HERE / f"{name}.ipynb"
    built = nbformat.read(target, as_version=4)
    shape = [(c.cell_type, c.source if c.cell_type == "code" else "") for c in source.cells]
    if shape != [(c.cell_type, c.source if c.cell_type == "code" else "") for c in built.cells]:
        raise SystemExit(f"{name}: code cells changed (or cells moved): build it in full")
    for new, old in zip(source.cells, built.cells):
        if new.cell_type == "markdown":
            old.source = new.source
    nbformat.write(built, target)
    return target


def build_zh(name: str) -> None:
    """The Chinese notebook, from the English build and its translation (nothing is run)."""
    import translation

    target, problems = translation.build_zh(name)
    print(f"  wrote {target.relative_to(HERE.parent)}")
    for problem in problems:
        print(f"    to translate: {problem}")


def main(args: list[str]) -> None:
    zh_only, prose_only = "--zh" in args, "--prose" in args
    names = [a for a in args if a not in ("--zh", "--prose")]
    names = names or sorted(p.stem for p in SOURCES.glob("[0-9][0-9]_*.py"))
    for name in names:
        if prose_only:
            print(f"  wrote {update_prose(name).relative_to(HERE.parent)} (prose only, not run)")
        elif not zh_only:
            print(f"building {name} ...", flush=True)
            print(f"  wrote {build(name).relative_to(HERE.parent)}")
        if (SOURCES / "zh" / f"{name}.md").exists():
            build_zh(name)


if __name__ == "__main__":
    main(sys.argv[1:])
