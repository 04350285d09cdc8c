"""Refresh tests/data/repo2docker-VERSION/: the Python environment that repo2docker builds before
it installs binder/requirements.txt, for tests/test_binder_env.py.

    python tests/data/repo2docker_env.py 2026.4.0

Needs PyPI and a `python3.11` (a couple of minutes). It writes two files:

* ``environment.py-3.11-linux-64.lock``: repo2docker's own conda lock file for Python 3.11 on
  x86-64 (mybinder.org's machines), copied unchanged from its wheel. It names each package and
  version, but not what each package requires.
* ``requires.json``: for each Python package in that lock, the version and the requirements
  (``Requires-Dist``) that pip reads, taken from PyPI's release of that same version, installed
  without its dependencies into a scratch venv.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = "environment.py-3.11-linux-64.lock"
# conda-forge names whose PyPI distribution has another name.
PYPI_NAMES = {
    "brotli-python": "brotli",
    "python-fastjsonschema": "fastjsonschema",
    "nbconvert-core": "nbconvert",
    "jupyterhub-base": "jupyterhub",
}


def python_packages(lock_text: str) -> dict[str, str]:
    """{PyPI name: version} of the lock's Python packages: the builds whose string starts with
    "py" (noarch `pyh...` or compiled `py311h...`). Left out: C libraries, Python itself,
    conda's metapackages (jupyterhub-singleuser, bleach-with-css: no files of their own) and pip,
    the installer, which requires nothing."""
    found = {}
    for line in lock_text.splitlines():
        if not line.startswith("https://"):
            continue
        filename = line.split("#")[0].rsplit("/", 1)[1]
        stem = re.sub(r"\.(conda|tar\.bz2)$", "", filename)
        name, version, build = stem.rsplit("-", 2)
        if build.startswith("py") and name != "pip":
            found[PYPI_NAMES.get(name, name)] = version
    return found


def main(version: str) -> None:
    out = HERE / f"repo2docker-{version}"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        pip = [sys.executable, "-m", "pip"]
        subprocess.run([*pip, "download", "--quiet", "--no-deps", "--dest", tmp,
                        f"jupyter-repo2docker=={version}"], check=True)  # fmt: skip
        (wheel,) = tmp.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            lock = archive.read(f"repo2docker/buildpacks/conda/{LOCK}").decode()
        (out / LOCK).write_text(lock)
        packages = python_packages(lock)
        venv = tmp / "venv"
        subprocess.run(["python3.11", "-m", "venv", venv], check=True)
        pins = [f"{name}=={v}" for name, v in sorted(packages.items())]
        subprocess.run([venv / "bin" / "pip", "install", "--quiet", "--no-deps", *pins],
                       check=True)  # fmt: skip
        site = next((venv / "lib").glob("python3.*/site-packages"))
        requires = {}
        for name in sorted(packages):
            (dist,) = [d for d in importlib.metadata.distributions(path=[str(site)])
                       if _normal(d.metadata["Name"]) == _normal(name)]  # fmt: skip
            requires[name] = {"version": dist.version, "requires": dist.requires or []}
    (out / "requires.json").write_text(to_json(version, requires))
    print(f"{out}: {len(requires)} packages")


def to_json(version: str, requires: dict[str, dict]) -> str:
    """The file's text: what it was made from, then one line per package."""
    about = {"repo2docker": version, "lock": LOCK, "conda_to_pypi": PYPI_NAMES}
    lines = [
        f"  {json.dumps(name)}: {json.dumps(requires[name], sort_keys=True)}"
        for name in sorted(requires)
    ]
    head = json.dumps(about, indent=1)[:-2]
    return head + ',\n "packages": {\n' + ",\n".join(lines) + "\n }\n}\n"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


if __name__ == "__main__":
    main(sys.argv[1])
