"""The course's Jupyter settings, as JupyterLab and Jupyter Server read them from the venv.

On a shared hub a forgotten kernel keeps its servers, memory and CPU: closing a lesson's tab
shuts its kernel down (JupyterLab's ``kernelShutdown``), and a kernel idle for an hour is culled
(Jupyter Server's ``cull_idle_timeout``, with ``cull_connected`` so an open but forgotten tab
counts too). docs/classroom.md states both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "labkit" / "jupyter"
INSTALLED = Path(sys.prefix) / "etc" / "jupyter"


def test_closing_a_tab_shuts_its_kernel_down():
    for folder in (PACKAGE, INSTALLED):
        overrides = json.loads(
            (folder / "labconfig" / "default_setting_overrides.json").read_text()
        )
        assert overrides["@jupyterlab/notebook-extension:tracker"]["kernelShutdown"] is True


def test_idle_kernels_are_culled_after_an_hour():
    for folder in (PACKAGE, INSTALLED):
        config = json.loads((folder / "jupyter_server_config.json").read_text())
        kernels = config["AsyncMappingKernelManager"]
        assert kernels["cull_idle_timeout"] == 3600 and kernels["cull_connected"] is True
        assert 0 < kernels["cull_interval"] <= 600


def test_jupyter_server_takes_the_culling_settings():
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from traitlets.config import Config

    config = json.loads((PACKAGE / "jupyter_server_config.json").read_text())
    manager = AsyncMappingKernelManager(config=Config(config))
    assert manager.cull_idle_timeout == 3600 and manager.cull_connected


def test_the_classroom_guide_says_so():
    text = (ROOT / "docs" / "classroom.md").read_text()
    assert "kernelShutdown" in text and "cull_idle_timeout" in text
