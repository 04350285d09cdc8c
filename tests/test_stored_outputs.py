"""No notebook's stored outputs name a folder of the machine that built it.

A lesson is built on one machine and checked under nbval on others; a stored output that shows
``/work/main/my-work/my_server.py`` or a ``/tmp/...`` folder of the build is noise to a
student and, in a compared cell, a failure everywhere else. A path the course itself writes
(an example in a server's docstring, shown by ``labkit.show``) reads the same on every machine,
so a path that appears in the course's own sources is not the machine's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MACHINE_PATH = re.compile(r"/(?:work|root|home|tmp)/[^\s\"'<>(){}\[\],;:|`\\]*")


def course_text() -> str:
    """Every source file the lessons show: labkit and the lessons' percent-format sources."""
    files = [*(ROOT / "labkit").rglob("*.py"), *(ROOT / "notebooks" / "src").glob("*.py")]
    return "\n".join(f.read_text(encoding="utf-8") for f in sorted(files))


def output_texts(notebook: dict) -> list[tuple[int, str]]:
    """(cell number, text) of every stored output that is not an image."""
    found = []
    for number, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            texts = [output.get("text", ""), "\n".join(output.get("traceback", []))]
            for kind, value in output.get("data", {}).items():
                if not kind.startswith("image/"):
                    texts.append(value if isinstance(value, str) else json.dumps(value))
            found += [(number, "".join(t)) for t in texts if t]
    return found


def machine_paths(notebook: dict, course: str) -> list[str]:
    """The paths in ``notebook``'s outputs that the course's own text does not contain."""
    return [
        f"cell {number}: {path}"
        for number, text in output_texts(notebook)
        for path in MACHINE_PATH.findall(text)
        if path not in course
    ]


@pytest.fixture(scope="module")
def course() -> str:
    return course_text()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_stored_output_names_a_folder_of_the_machine(notebook, course):
    paths = machine_paths(json.loads(notebook.read_text(encoding="utf-8")), course)
    assert not paths, f"{notebook.name} stores paths of the machine that built it: {paths}"


def test_the_check_can_fail():
    def notebook(text: str) -> dict:
        return {"cells": [{"outputs": [{"output_type": "stream", "text": [text]}]}]}

    traceback = 'File "/work/main/my-work/my_server.py", line 47, in handle'
    assert machine_paths(notebook(traceback), "") == ["cell 0: /work/main/my-work/my_server.py"]
    assert machine_paths(notebook("uploads in /tmp/asynclab-grade-x1/root"), "")
    assert not machine_paths(notebook("--upload-dir /tmp/up"), "example: --upload-dir /tmp/up")
    assert not machine_paths(notebook('File "my_server.py", line 47'), "")
    image = {"cells": [{"outputs": [{"data": {"image/png": "/tmp/x"}}]}]}
    assert not machine_paths(image, "")
