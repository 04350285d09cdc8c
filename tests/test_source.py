"""labkit.show / source_of: the exact code, and never an import that would patch the kernel."""

import subprocess
import sys
from pathlib import Path

import labkit
from labkit.servers import NAMES


def test_showing_every_server_imports_none_of_them():
    code = (
        "import sys, labkit\n"
        "from labkit.servers import NAMES\n"
        "for name in NAMES: labkit.source_of(name)\n"
        "print('gevent.monkey' in sys.modules, 'gevent' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_source_is_the_file_that_runs():
    for name in NAMES:
        path = Path(labkit.__file__).parent / "servers" / f"{name}.py"
        assert labkit.source_of(name) == path.read_text(encoding="utf-8")
    assert "monkey.patch_all()" in labkit.source_of("scripts/fetch_gevent")


def test_show_returns_the_source_as_a_python_code_block():
    """The exact source, as a Markdown Python block: JupyterLab draws it in the notebook's own
    colours (no stylesheet of ours, nothing on a red background); plain text is the source."""
    source = labkit.source_of("select_echo")
    shown = labkit.show("select_echo")
    assert shown.data == source and repr(shown) == source
    block = shown._repr_markdown_()
    assert block.startswith("```python\n") and block.endswith("\n```")
    assert block[len("```python\n") : -len("\n```")] == source.rstrip()
    assert "<style" not in block and "background" not in block
    tricky = labkit.source.Source('x = """\n```\n"""\n')
    assert tricky._repr_markdown_().startswith("````python")  # a fence longer than any inside
