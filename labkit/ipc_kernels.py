"""Kernels that talk over Unix sockets (IPC), not five TCP ports each.

By default a Jupyter kernel listens on five TCP ports of 127.0.0.1. On a machine many students
share, that is five more ports to clash on, and ipykernel warns on every start that TCP is not
encrypted. Over IPC the kernel's sockets are files that only their owner may connect to.

A Unix socket's path must fit in 107 bytes. jupyter_client would put the sockets beside the
connection file, in the runtime folder, and a long home folder (or a test's temporary folder)
makes that path too long: the kernel then fails to start at all. So every kernel of ours gets
a short, unique prefix in the temporary folder instead: ``/tmp/asynclab-kernel-<id>-1`` to ``-5``.

* ``IPCKernelManager``: for the course's own tools, nbval (conftest.py) and build.py.
* ``ServerIPCKernelManager``: for JupyterLab; the course's Jupyter config
  (labkit/jupyter/jupyter_server_config.json) names it.
"""

from __future__ import annotations

import functools
import glob
import os
import tempfile
import uuid

from jupyter_client.manager import KernelManager
from traitlets import HasTraits, default

PREFIX = os.path.join(tempfile.gettempdir(), "asynclab-kernel-")


def socket_prefix() -> str:
    """Short and unique; in a test run it starts with the run's id, so the run can clean up."""
    owner = os.environ.get("ASYNCLAB_TEST_RUN", "")[:8] or str(os.getuid())
    return f"{PREFIX}{owner}-{uuid.uuid4().hex[:12]}"


class IPCDefaults(HasTraits):
    """The two defaults, for any kernel manager class: Unix sockets at a short path."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        return socket_prefix()


class IPCKernelManager(IPCDefaults, KernelManager):
    pass


@functools.cache
def _server_class() -> type:
    """JupyterLab's kernel manager with the same defaults (jupyter_server is imported only when
    JupyterLab asks for this class)."""
    from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

    return type("ServerIPCKernelManager", (IPCDefaults, ServerKernelManager), {})


def __getattr__(name: str) -> type:
    if name == "ServerIPCKernelManager":
        return _server_class()
    raise AttributeError(name)


def remove_leftover_sockets(run_id: str) -> None:
    """A kernel that was killed cannot remove its socket files; the test run does."""
    for path in glob.glob(f"{PREFIX}{run_id[:8]}-*"):
        try:
            os.unlink(path)
        except OSError:
            pass
