"""The course's Jupyter settings, as JupyterLab and Jupyter Server read them from the venv.

On a shared hub a forgotten kernel keeps its servers, memory and CPU: closing a lesson's tab
shuts its kernel down (JupyterLab's ``kernelShutdown``), and a kernel idle for an hour is culled
(Jupyter Server's ``cull_idle_timeout``, with ``cull_connected`` so an open but forgotten tab
counts too). docs/classroom.md states both. JupyterLab saves the widgets' state with a notebook
(ipywidgets' ``saveState``), so a lesson run and saved reopens with its panels. The browser tests
(tests/test_browser.py, marker ``browser``) check what each setting does in JupyterLab.
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


def overrides_in(folder: Path) -> dict:
    return json.loads((folder / "labconfig" / "default_setting_overrides.json").read_text())


def test_the_installed_settings_are_the_packages():
    assert overrides_in(INSTALLED) == overrides_in(PACKAGE), (
        "reinstall the course's Jupyter settings: pip install ./labkit/jupyter"
    )


def test_a_saved_notebook_keeps_its_widgets_state():
    for folder in (PACKAGE, INSTALLED):
        assert overrides_in(folder)["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"]


def test_every_override_names_a_setting_of_the_installed_jupyterlab():
    """A misspelt plugin or setting name is ignored by JupyterLab without a word."""
    schemas = [
        Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas",
        *(Path(sys.prefix) / "share" / "jupyter" / "labextensions").glob("**/schemas"),
    ]
    for plugin, settings in overrides_in(PACKAGE).items():
        package, name = plugin.split(":")
        found = [
            s / package / f"{name}.json" for s in schemas if (s / package / f"{name}.json").exists()
        ]
        assert found, f"no schema for {plugin}"
        schema = json.loads(found[0].read_text())
        assert set(settings) <= set(schema["properties"]), (plugin, set(settings))


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
    assert all(name in text for name in ("kernelShutdown", "cull_idle_timeout", "saveState"))
