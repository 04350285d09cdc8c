"""A shipped lesson opens unmodified: its kernelspec is the one ipykernel installs, word for
word (JupyterLab rewrites any other display name on opening, and marks the notebook modified)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "zh").glob("[0-9][0-9]_*.ipynb")
)


def installed_kernelspec() -> dict:
    from ipykernel.kernelspec import get_kernel_dict

    return get_kernel_dict()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_the_kernelspec_is_ipykernels_own(path):
    spec = json.loads(path.read_text(encoding="utf-8"))["metadata"]["kernelspec"]
    assert spec == {"name": "python3", "language": "python",
                    "display_name": installed_kernelspec()["display_name"]}  # fmt: skip
