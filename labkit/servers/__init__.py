"""The teaching servers. Each module is one short server, runnable on its own::

    python -m labkit.servers.select_echo --port 0

and started from a notebook with ``labkit.serve("select_echo")``. Their shared plumbing is
``labkit.launch``; this folder holds programs only.
"""

import pkgutil

#: every server: every module here (a name that starts with ``_`` would be plumbing, not one)
NAMES = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
