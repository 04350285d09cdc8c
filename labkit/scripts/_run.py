"""Run one lesson script in a child process that dies with its parent.

    python labkit/scripts/_run.py SCRIPT.py [ARGS...]

Started by ``labkit.run_script``. Run by path, not with ``-m``, so that nothing but the standard
library is imported before the script starts: a script that monkey-patches with gevent must
patch before anything else is imported. For the same reason the two labkit modules needed here
(``child``: follow the parent; ``limits``: raise the open-file limit) are loaded from their
files, which import only the standard library, and not through the labkit package, whose
``__init__`` imports far more. They are registered under their usual names, so the script's own
``from labkit.scripts import report`` later finds the very same ``labkit.child``.
"""

import importlib.util
import os
import runpy
import sys
from pathlib import Path

LABKIT = Path(__file__).resolve().parent.parent


def load_plain(name):
    """``labkit.NAME`` from its file, without importing the labkit package."""
    spec = importlib.util.spec_from_file_location(f"labkit.{name}", LABKIT / f"{name}.py")
    assert spec and spec.loader, f"labkit/{name}.py is missing"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main():
    script, *args = sys.argv[1:]
    load_plain("limits").raise_open_file_limit()
    load_plain("child").follow_parent()  # lifeline and parent watch: real OS threads
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
