"""Run one lesson script in a child process that dies with its parent.

    python labkit/scripts/_run.py SCRIPT.py [ARGS...]

Started by ``labkit.run_script``. Run by path, not with ``-m``, so that nothing but the standard
library is imported before the script starts: a script that monkey-patches with gevent must
patch before anything else is imported. Before handing over, it starts the lifeline: a real OS
thread that ends this process when stdin (a pipe from the parent) reaches EOF.
"""
import _thread
import os
import resource
import runpy
import sys


def _lifeline():
    while os.read(0, 4096):        # blocks this OS thread only
        pass
    os._exit(1)                    # the parent is gone: so are we


def raise_open_file_limit():
    """Soft limit up to hard (stdlib only: nothing else may be imported before the script)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


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
