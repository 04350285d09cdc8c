"""The teaching servers. Each module is one short server, runnable on its own::

    python -m labkit.servers.select_echo --port 0

and started from a notebook with ``labkit.serve("select_echo")``.
"""
import pkgutil

#: every server module name, for error messages and the doctor
NAMES = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "launch")
