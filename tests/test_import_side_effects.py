"""``import labkit`` changes nothing in the process; ``labkit.setup()`` makes the kernel's
changes and ``labkit.teardown()`` undoes them.

Each check runs in a fresh Python (a subprocess), which takes a snapshot of the interpreter's
global state before and after: the open-file limit, the exception and display hooks, every
signal's handler, the threads, the atexit hooks, the warning filters, the environment, and, with
an IPython shell present as in a kernel, every printer of the shell's display formatters, its
custom exception handler, its event callbacks and its magics. The snapshot is shown to see each
change ``setup()`` makes, so an import that made one would fail here. Last, every lesson
calls ``labkit.setup()`` in its first code cell.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labkit.ipc_kernels import IPCKernelManager

LESSONS = Path(__file__).resolve().parent.parent / "notebooks" / "src"

#: third-party packages ``import labkit`` may load: psutil (labkit.cpus reads the machine with
#: it; it starts no thread and patches nothing). Everything else waits until it is used:
#: matplotlib until a figure is drawn, gevent and greenlet (they patch and switch stacks) until a
#: lesson asks, numpy (its BLAS starts threads), IPython and ipywidgets (they hook the kernel).
ALLOWED_THIRD_PARTY = {"labkit", "psutil"}
NEVER_AT_IMPORT = {"matplotlib", "numpy", "gevent", "greenlet", "IPython", "ipywidgets", "PIL"}

#: the atexit hooks an import may add: labkit.background.stop_all stops the servers this process
#: started (with none, it does nothing); the standard library's logging, once imported,
#: flushes its handlers at exit.
EXIT_HOOKS = {"labkit.background.stop_all", "logging.shutdown"}

SNAPSHOT = r'''
import atexit, json, os, resource, signal, socket, sys, threading, warnings

def name(obj):
    """A stable name for a hook or printer within this process: what it is and which one."""
    return f"{getattr(obj, '__qualname__', type(obj).__name__)}@{id(obj):x}"

def printers(formatter):
    return {
        "types": sorted(f"{k.__module__}.{k.__qualname__}={name(v)}"
                        for k, v in formatter.type_printers.items()),
        "deferred": sorted(f"{'.'.join(k)}={name(v)}"
                           for k, v in formatter.deferred_printers.items()),
        "singletons": sorted(f"{id(k):x}={name(v)}"
                             for k, v in formatter.singleton_printers.items()),
    }

def snapshot(shell=None):
    state = {
        "rlimits": {r: resource.getrlimit(n) for n, r in LIMITS.items()},
        "hooks": [name(h) for h in (sys.excepthook, sys.displayhook, sys.unraisablehook,
                                    threading.excepthook, sys.breakpointhook)],
        "trace": [repr(sys.gettrace()), repr(sys.getprofile())],
        "signals": {s.name: repr(signal.getsignal(s)) for s in signal.valid_signals()
                    if isinstance(s, signal.Signals)},
        "threads": sorted(t.name for t in threading.enumerate()),
        "atexit": list(REGISTERED),
        "warnings": [repr(f) for f in warnings.filters],
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "path": list(sys.path),
        "meta_path": [name(f) for f in sys.meta_path],
        "socket_timeout": socket.getdefaulttimeout(),
        "interpreter": [sys.getswitchinterval(), sys.getrecursionlimit()],
    }
    if shell is not None:
        fmt = shell.display_formatter
        state["ipython"] = {
            "formatters": {m: printers(f) for m, f in fmt.formatters.items()},
            "ipython_display": printers(fmt.ipython_display_formatter),
            "mimebundle": printers(fmt.mimebundle_formatter),
            "CustomTB": name(shell.CustomTB),
            "custom_exceptions": [e.__name__ for e in shell.custom_exceptions],
            "events": {e: [name(c) for c in cbs] for e, cbs in shell.events.callbacks.items()},
            "magics": sorted(shell.magics_manager.magics["line"])
                      + sorted(shell.magics_manager.magics["cell"]),
            "ast_transformers": [name(t) for t in shell.ast_transformers],
            "input_transformers": [name(t) for t in shell.input_transformers_post],
            "extensions": sorted(shell.extension_manager.loaded),
        }
    return state

# every resource limit once, by its Linux name (RLIMIT_OFILE is RLIMIT_NOFILE by its BSD name)
LIMITS = {getattr(resource, r): r for r in sorted(dir(resource), reverse=True)
          if r.startswith("RLIMIT_")}

def top_level_modules():
    return sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names))

# Every atexit hook registered from here on, by name (atexit cannot list its hooks).
REGISTERED = []
_register = atexit.register
def _named_register(func, *args, **kwargs):
    REGISTERED.append(f"{func.__module__}.{func.__qualname__}")
    return _register(func, *args, **kwargs)
atexit.register = _named_register

# Start below the hard limit, as a container's kernel does, so that raising it would show.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard, 256), hard))
'''


def run(code: str, tmp_path) -> dict:
    """Run SNAPSHOT then ``code`` (which prints one JSON line) in a fresh Python."""
    env = {"IPYTHONDIR": str(tmp_path / "ipython"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SNAPSHOT + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def differences(before: dict, after: dict, prefix: str = "") -> list[str]:
    """The keys whose values differ, as dotted paths (nested dicts are walked). An atexit
    hook added counts only if it is not one of EXIT_HOOKS."""
    found = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, f"{prefix}{key}.")
        elif key == "atexit" and not prefix:
            if set(b) - set(a) - EXIT_HOOKS or set(a) - set(b):
                found.append(key)
        elif a != b:
            found.append(f"{prefix}{key}")
    return found


def test_import_labkit_changes_no_global_state(tmp_path):
    got = run(
        """
        modules = top_level_modules()
        before = snapshot()
        import labkit
        after = snapshot()
        print(json.dumps({"before": before, "after": after, "modules_before": modules,
                          "modules_after": top_level_modules()}))
        """,
        tmp_path,
    )
    before, after = got["before"], got["after"]
    assert differences(before, after) == []
    loaded = set(got["modules_after"]) - set(got["modules_before"])
    assert loaded <= ALLOWED_THIRD_PARTY, f"import labkit loaded {loaded - ALLOWED_THIRD_PARTY}"
    assert not NEVER_AT_IMPORT & set(got["modules_after"])
    assert after["threads"] == ["MainThread"]


KERNEL_LIKE = """
from IPython.core.interactiveshell import InteractiveShell
import contextlib, io
shell = InteractiveShell.instance()   # get_ipython() now returns it, as in a kernel
states = {"before": snapshot(shell)}
import labkit
states["import"] = snapshot(shell)
printed = io.StringIO()
with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
    labkit.setup()
    states["setup"] = snapshot(shell)
    labkit.setup()
    states["setup twice"] = snapshot(shell)
    labkit.teardown()
    states["teardown"] = snapshot(shell)
    labkit.teardown()
    states["teardown twice"] = snapshot(shell)
states["printed"] = printed.getvalue()
"""


def test_import_labkit_changes_nothing_in_ipython_and_teardown_undoes_setup(tmp_path):
    states = run(KERNEL_LIKE + "print(json.dumps(states))", tmp_path)
    before = states["before"]
    assert before["rlimits"]["RLIMIT_NOFILE"][0] < before["rlimits"]["RLIMIT_NOFILE"][1]
    assert differences(before, states["import"]) == []
    # setup's changes are exactly the three it names, and the snapshot sees each of them
    assert differences(before, states["setup"]) == [
        "ipython.CustomTB",
        "ipython.custom_exceptions",
        "ipython.formatters.image/png.deferred",
        "rlimits.RLIMIT_NOFILE",
    ]
    assert states["setup"]["ipython"]["formatters"]["image/png"]["deferred"][0].startswith(
        "matplotlib.figure.Figure=figure_png@"
    )
    assert differences(states["setup"], states["setup twice"]) == []  # idempotent
    assert differences(before, states["teardown"]) == []
    assert differences(before, states["teardown twice"]) == []
    assert states["printed"] == ""


def test_teardown_puts_back_a_previous_printer_and_handler_and_keeps_later_ones(tmp_path):
    """A printer for Figure and a custom exception handler that were there before setup come
    back; a printer registered after setup (matplotlib's inline backend does this when pyplot
    first draws) is left in place."""
    got = run(
        """
        import contextlib, io
        from IPython.core.interactiveshell import InteractiveShell
        from matplotlib.figure import Figure
        shell = InteractiveShell.instance()
        png = shell.display_formatter.formatters["image/png"]
        def theirs(fig): return b"png"
        def their_handler(shell, etype, value, tb, tb_offset=None): print("theirs:", etype.__name__)
        png.for_type(Figure, theirs)
        shell.set_custom_exc((ZeroDivisionError,), their_handler)
        before = snapshot(shell)
        import labkit
        labkit.setup()
        handles = [e.__name__ for e in shell.custom_exceptions]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            shell.run_cell("1 / 0")   # theirs still handles it, through ours
        labkit.teardown()
        restored = snapshot(shell)
        labkit.setup()
        def later(fig): return b"later"
        png.for_type(Figure, later)
        labkit.teardown()
        print(json.dumps({"handles": handles, "printed": printed.getvalue(), "before": before,
                          "restored": restored, "kept": png.lookup_by_type(Figure) is later}))
        """,
        tmp_path,
    )
    assert got["handles"] == ["KeyboardInterrupt", "ZeroDivisionError"]
    assert got["printed"] == "theirs: ZeroDivisionError\n"
    assert differences(got["before"], got["restored"]) == []
    assert got["kept"] is True


def test_a_figure_outside_ipython_draws_without_a_warning(tmp_path):
    got = run(
        """
        import warnings
        warnings.simplefilter("error")
        from labkit.timeline import Span, plot_timeline
        fig = plot_timeline([Span("Task 1", "running", 0, 0.1)])
        print(json.dumps({"axes": len(fig.axes)}))
        """,
        tmp_path,
    )
    assert got == {"axes": 1}


# -- in a real kernel ------------------------------------------------------------------------------
@pytest.fixture
def kernel():
    km = IPCKernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def outputs(kc, code: str) -> list[dict]:
    """Run ``code`` in the kernel; return its outputs (stream, display, result, error)."""
    msg_id = kc.execute(code)
    found = []
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            return found
        if kind in ("stream", "display_data", "execute_result", "error"):
            found.append({"type": kind, **content})


DRAW = (
    "from labkit.timeline import Span, plot_timeline\n"
    "plot_timeline([Span('Task 1', 'running', 0, 0.1)])"
)


def test_in_a_kernel_a_figure_without_setup_warns_and_with_setup_is_a_picture(kernel):
    forgot = outputs(kernel, "import labkit\n" + DRAW)
    warned = [o for o in forgot if o["type"] == "stream" and o["name"] == "stderr"]
    assert warned and "FigureShownAsText" in warned[0]["text"]
    assert "labkit.setup()" in warned[0]["text"]
    result = next(o for o in forgot if o["type"] == "execute_result")
    assert "image/png" not in result["data"]  # what the warning announced

    assert outputs(kernel, "labkit.setup()") == []  # prints nothing, shows nothing
    drawn = outputs(kernel, DRAW)
    assert [o["type"] for o in drawn] == ["execute_result"]
    assert set(drawn[0]["data"]) == {"image/png", "text/plain"}
    assert drawn[0]["metadata"]["image/png"]["width"] > 0  # figure_png's, not another printer's

    assert outputs(kernel, "labkit.teardown()") == []
    again = outputs(kernel, DRAW)
    assert "image/png" not in next(o for o in again if o["type"] == "execute_result")["data"]


def test_load_ext_labkit_sets_up_and_unload_ext_tears_down(kernel):
    assert outputs(kernel, "%load_ext labkit") == []
    drawn = outputs(kernel, DRAW)
    assert set(drawn[0]["data"]) == {"image/png", "text/plain"}
    assert outputs(kernel, "%unload_ext labkit") == []
    assert "image/png" not in next(o for o in outputs(kernel, DRAW) if "data" in o)["data"]


# -- the lessons ----------------------------------------------------------------------------------
def first_code_cell(source: str) -> str:
    cells = re.split(r"^# %%.*$", source, flags=re.MULTILINE)
    markers = re.findall(r"^# %%.*$", source, flags=re.MULTILINE)
    return next(cell for marker, cell in zip(markers, cells[1:]) if "[markdown]" not in marker)


def sets_up_labkit(cell: str) -> bool:
    """The cell imports labkit and calls ``labkit.setup()`` after the import."""
    imported = re.search(r"^import labkit\b", cell, re.MULTILINE)
    return bool(imported and re.search(r"^labkit\.setup\(\)", cell[imported.end() :], re.MULTILINE))


@pytest.mark.parametrize("source", sorted(LESSONS.glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_every_lesson_sets_up_labkit_in_its_first_code_cell(source):
    """A lesson that uses labkit calls setup() in its first code cell, or its figures show as
    text and its interrupts as 40 lines of library."""
    text = source.read_text(encoding="utf-8")
    if "import labkit" not in text:
        return
    assert sets_up_labkit(first_code_cell(text)), (
        f"{source.name}: add `labkit.setup()` right after the imports of the first code cell"
    )


def test_the_lesson_check_can_fail():
    good = "# %% [markdown]\n# Title\n\n# %%\nimport time\n\nimport labkit\n\nlabkit.setup()\n"
    assert sets_up_labkit(first_code_cell(good))
    assert not sets_up_labkit(first_code_cell(good.replace("labkit.setup()", "x = 1")))
    late = "# %%\nimport labkit\n\n# %%\nlabkit.setup()\n"
    assert not sets_up_labkit(first_code_cell(late))
