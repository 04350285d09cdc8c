"""Kernels that talk over Unix sockets (IPC), for the course's own tools: nbval and build.py.

By default a Jupyter kernel listens on five TCP ports of 127.0.0.1. On a machine many students
share, that is five more ports to clash on, and ipykernel warns on every start that TCP is not
encrypted. Over IPC the kernel's sockets are files only this user can reach. JupyterLab gets the
same setting from the course's config (labkit/jupyter/jupyter_server_config.json); nbval and
nbclient build their kernel managers without reading config, so they use this class.
"""
from __future__ import annotations

import glob
import os
import tempfile
import uuid

from jupyter_client.manager import KernelManager
from traitlets import default

PREFIX = os.path.join(tempfile.gettempdir(), "asynclab-kernel-")


class IPCKernelManager(KernelManager):
    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        # a unique path prefix: the kernel adds -1 ... -5 for its five sockets
        return f"{PREFIX}{os.environ.get('ASYNCLAB_TEST_RUN', 'x')[:8]}-{uuid.uuid4().hex[:12]}"


def remove_leftover_sockets(run_id: str) -> None:
    """A kernel that was killed cannot remove its socket files; the test run does."""
    for path in glob.glob(f"{PREFIX}{run_id[:8]}-*"):
        try:
            os.unlink(path)
        except OSError:
            pass
