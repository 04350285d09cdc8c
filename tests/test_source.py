"""labkit.show / source_of: the exact code, and never an import that would patch the kernel."""

import html
import re
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


def test_show_returns_highlighted_code():
    """The exact source, highlighted as Python: keywords and names marked, nothing lost."""
    source = labkit.source_of("select_echo")
    shown = labkit.show("select_echo")
    assert shown.data == source
    page = shown._repr_html_()
    code = page[page.index('<div class="highlight">') :]
    for kind, word in (("kn", "import"), ("nn", "select"), ("k", "def"), ("nf", "serve")):
        token = f'<span class="{kind}">{word}</span>'  # Python's lexer ran, not a plain one
        assert token in code, token
    text = html.unescape(re.sub(r"<[^>]+>", "", code))
    assert text.strip() == source.strip()  # every character of the file, in order
