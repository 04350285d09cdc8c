"""Run one lesson script in a child process that dies with its parent.

    python labkit/scripts/_run.py SCRIPT.py [ARGS...]

Started by ``labkit.run_script``. Run by path, not with ``-m``, so that nothing but the standard
library is imported before the script starts: a script that monkey-patches with gevent must
patch before anything else is imported. Before handing over, it starts the lifeline: a real OS
thread that ends this process when stdin (a pipe from the parent) reaches EOF.
"""
import _thread
import importlib.util
import os
import runpy
import sys
from pathlib import Path


def _lifeline():
    while os.read(0, 4096):        # blocks this OS thread only
        pass
    os._exit(1)                    # the parent is gone: so are we


def raise_open_file_limit():
    """labkit.limits' own function, loaded from its file: importing the labkit package here
    would import far more than the standard library before the script can patch."""
    spec = importlib.util.spec_from_file_location(
        "_labkit_limits", Path(__file__).resolve().parent.parent / "limits.py")
    limits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(limits)        # limits.py imports only os and resource
    limits.raise_open_file_limit()


def main():
    script, *args = sys.argv[1:]
    raise_open_file_limit()
    if not os.isatty(0):
        _thread.start_new_thread(_lifeline, ())
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
