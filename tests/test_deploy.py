"""Where classes run the course: Binder (repo2docker), a student's Docker, a JupyterHub.

Neither Docker nor Binder runs here, so these tests check what can be checked without them:
that the files follow repo2docker's documented conventions (and its source, which decides what
it builds), that the README's Binder link and `docker run` line are well formed and point at
what exists, and that docker/Dockerfile installs from our requirements and copies the whole
course. docs/classroom.md says what was run by hand (repo2docker's generated Dockerfile, a
simulated Binder build) and what could not be.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.parse
from pathlib import Path

import pytest

from labkit import limits
from labkit.doctor import LARGEST_RUN

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCKERFILE = ROOT / "docker" / "Dockerfile"
POSTBUILD = ROOT / "postBuild"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# Files that make repo2docker pick another build pack (a Dockerfile wins over everything) or
# read its configuration from elsewhere (a binder/ or .binder/ folder hides the top level's).
OTHER_BUILDPACKS = ["Dockerfile", "environment.yml", "Pipfile", "Pipfile.lock", "Project.toml",
                    "install.R", "default.nix"]  # fmt: skip


# ---------------------------------------------------------------- repo2docker (Binder)


def test_repo2docker_reads_the_top_level_requirements():
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), (
        "repo2docker reads only binder/ (or .binder/) when it exists: the top level's "
        "requirements.txt, runtime.txt and postBuild would be ignored"
    )
    assert (ROOT / "requirements.txt").is_file()
    others = [name for name in OTHER_BUILDPACKS if (ROOT / name).exists()]
    assert not others, f"repo2docker would build from {others}, not requirements.txt"


def test_runtime_txt_names_a_python_the_course_supports():
    """repo2docker's format is `python-X.Y`; without it, it picks its newest Python (3.14 in
    repo2docker 2026.4), which the course's pins are not made for."""
    text = (ROOT / "runtime.txt").read_text(encoding="utf-8")
    match = re.fullmatch(r"python-(3)\.(\d+)\n?", text)
    assert match, f"runtime.txt must be one line `python-3.X`, not {text!r}"
    minor = int(match[2])
    assert 11 <= minor <= 13, "students use Python 3.11 to 3.13 (README, Quick start)"
    floor = re.fullmatch(r">=3\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert floor and minor >= int(floor[1]), "repo2docker refuses a runtime.txt below it"


def test_postbuild_is_an_executable_bash_script_that_stops_on_error():
    text = POSTBUILD.read_text(encoding="utf-8")
    assert os.access(POSTBUILD, os.X_OK), "repo2docker runs ./postBuild"
    assert text.splitlines()[0] in ("#!/bin/bash", "#!/usr/bin/env bash")
    assert re.search(r"^set -[a-z]*e", text, re.MULTILINE), (
        "without set -e a failed step is ignored"
    )
    subprocess.run(["bash", "-n", str(POSTBUILD)], check=True)


def test_postbuild_puts_the_editable_labkit_back():
    """repo2docker runs `pip install .` after requirements.txt when pyproject.toml declares a
    package ([project] and [build-system]); that non-editable labkit would look for data/ and
    notebooks/ in site-packages. postBuild must reinstall it editable."""
    if not ("project" in PYPROJECT and "build-system" in PYPROJECT):
        pytest.skip("repo2docker does not install this repository as a package")
    lines = [line for line in POSTBUILD.read_text().splitlines() if not line.startswith("#")]
    reinstall = [line for line in lines if "pip install" in line]
    assert any(
        "-e ." in line and "--force-reinstall" in line and "--no-deps" in line for line in reinstall
    ), reinstall


def _prepare_line() -> str:
    lines = [line for line in POSTBUILD.read_text().splitlines() if "prepare(" in line]
    assert len(lines) == 1, "postBuild copies the lessons to my-work/ in one line"
    return lines[0]


def test_postbuild_copies_the_lessons_to_my_work(tmp_path):
    """Run postBuild's own line (with `python` = this interpreter) into a scratch my-work/."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "ASYNCLAB_WORK_DIR": str(tmp_path / "my-work")}  # fmt: skip
    subprocess.run(["bash", "-c", _prepare_line()], cwd=ROOT, env=env, check=True, timeout=60)
    copied = sorted(p.name for p in (tmp_path / "my-work").glob("*.ipynb"))
    assert "00_start_here.ipynb" in copied
    assert copied == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _binder_links() -> list[str]:
    return re.findall(r"https://mybinder\.org/v2/[^\s)\]>\"']+", README)


def test_readme_binder_link_opens_lesson_00_from_my_work():
    links = _binder_links()
    assert links, "README has no Launch on Binder link"
    for link in links:
        url = urllib.parse.urlsplit(link)
        assert url.scheme == "https" and url.netloc == "mybinder.org"
        provider, owner, repo, ref = url.path.split("/")[2:6]
        assert provider == "gh" and owner and repo and ref, url.path
        query = urllib.parse.parse_qs(url.query, strict_parsing=True)
        assert list(query) == ["urlpath"], "urlpath says which page JupyterLab opens"
        urlpath = query["urlpath"][0]
        assert urlpath.startswith("lab/tree/"), f"{urlpath}: open it in JupyterLab"
        target = Path(urlpath.removeprefix("lab/tree/"))
        # postBuild copies notebooks/NN_*.ipynb to my-work/ (checked above)
        assert target.parent.name == "my-work", target
        assert target.name == "00_start_here.ipynb"
        assert (ROOT / "notebooks" / target.name).is_file()
    assert "https://mybinder.org/badge_logo.svg" in README


# ---------------------------------------------------------------- docker/Dockerfile


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, `\\` continuations joined."""
    out, pending = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            word, _, args = pending.partition(" ")
            out.append((word.upper(), args.strip()))
            pending = ""
    assert not pending, "a continued line runs off the end of the file"
    return out


KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
         "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}  # fmt: skip


def test_dockerfile_parses_and_starts_from_a_python_the_course_supports():
    steps = _instructions(DOCKERFILE)
    assert {word for word, _ in steps} <= KNOWN, steps
    assert steps[0][0] == "FROM"
    assert re.fullmatch(r"python:3\.1[123]-slim(-\w+)?", steps[0][1]), steps[0]


def test_dockerfile_copies_the_course_then_installs_our_requirements():
    steps = _instructions(DOCKERFILE)
    copies = [shlex.split(args) for word, args in steps if word == "COPY"]
    sources = [a for c in copies for a in c[:-1] if not a.startswith("--")]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    installs = [i for i, (w, a) in enumerate(steps) if w == "RUN" and "-r requirements.txt" in a]
    assert installs, "the image must install from requirements.txt (its pins, labkit, settings)"
    first_copy = next(i for i, (w, _) in enumerate(steps) if w == "COPY")
    assert first_copy < installs[0], "requirements.txt installs `-e .`: copy the course first"
    assert "." in sources, "copy the whole course (.dockerignore says what stays out)"


def test_dockerfile_runs_labkit_lab_as_a_user_on_all_container_interfaces():
    steps = _instructions(DOCKERFILE)
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "students' kernels should not run as root"
    cmd = json.loads(next(args for word, args in reversed(steps) if word == "CMD"))
    assert cmd[:4] == ["python", "-m", "labkit", "lab"], cmd
    assert "--ip=0.0.0.0" in cmd, "Docker forwards the port to the container's own interface"
    port = next(a.split("=")[1] for a in cmd if a.startswith("--port="))
    assert ("EXPOSE", port) in steps


def _docker_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: a path is out if it or a folder above it matches the last
    matching pattern (`*` within a name, `**` across folders, `!` brings back)."""
    out = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        body = re.escape(pattern.lstrip("!").strip("/"))
        regex = body.replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            out = not keep
    return out


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_matcher_follows_docker_rules():
    patterns = ["**/__pycache__", ".git", "my-work", "*.log", "!keep.log"]
    assert _docker_ignored("labkit/servers/__pycache__/x.pyc", patterns)
    assert _docker_ignored(".git/HEAD", patterns) and _docker_ignored("my-work/00.ipynb", patterns)
    assert _docker_ignored("run.log", patterns) and not _docker_ignored("keep.log", patterns)
    assert not _docker_ignored("notebooks/my-work.md", patterns)
    assert not _docker_ignored("data/run.log", patterns)


def test_dockerignore_keeps_the_course_and_leaves_out_local_state():
    patterns = _dockerignore()
    for local in [".git/HEAD", ".venv/bin/python", "my-work/00_start_here.ipynb",
                  "labkit/__pycache__/x.pyc", "asynclab_labkit.egg-info/PKG-INFO"]:  # fmt: skip
        assert _docker_ignored(local, patterns), f"{local} would be copied into the image"
    try:
        tracked = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of the course's files")
    left_out = [name for name in tracked if _docker_ignored(name, patterns)]
    assert not left_out, f"the image would lack these files of the course: {left_out[:10]}"


def _readme_command(program: str) -> list[str]:
    """The README's one `docker build` or `docker run` command, continuation lines joined."""
    text = README.replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(program)]
    assert len(lines) == 1, f"README should show one `{program}` line, found {lines}"
    return shlex.split(lines[0])


def test_readme_docker_lines_build_this_dockerfile_and_bind_loopback():
    build = _readme_command("docker build")
    assert build[build.index("-f") + 1] == "docker/Dockerfile" and build[-1] == "."
    image = build[build.index("-t") + 1]
    run = _readme_command("docker run")
    assert run[-1] == image, "run the image that the build line made"
    assert run[run.index("-p") + 1] == "127.0.0.1:8888:8888", "reachable from this computer only"


def test_readme_docker_run_gives_the_open_files_the_largest_lesson_needs():
    run = _readme_command("docker run")
    limit = run[run.index("--ulimit") + 1]
    soft, hard = (int(n) for n in limit.removeprefix("nofile=").split(":"))
    need = LARGEST_RUN + 2 * limits.RESERVED_FDS  # labkit.doctor's own threshold
    assert limit.startswith("nofile=") and soft <= hard and hard >= need, limit


def test_readme_links_the_classroom_guide():
    assert "docs/classroom.md" in README
    assert (ROOT / "docs" / "classroom.md").is_file()


# ---------------------------------------------------------------- docs/classroom.md


def test_classroom_guide_states_what_ci_really_runs():
    """The guide says CI's classroom runs stand in for Binder's limits: keep that true."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "classroom.md").read_text(encoding="utf-8")
    for command in ["ulimit -Sn 1024", "taskset -c 0", "prlimit --nofile=1024:1024"]:
        assert command in ci and command in guide, command


def test_classroom_guide_z2jh_config_is_valid_yaml_with_the_limits():
    import yaml

    guide = (ROOT / "docs" / "classroom.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", guide, re.DOTALL)
    configs = [yaml.safe_load(block) for block in blocks]
    singleuser = next(c["singleuser"] for c in configs if c and "singleuser" in c)
    assert {"limit", "guarantee"} <= set(singleuser["memory"]), singleuser
    assert "limit" in singleuser["cpu"], singleuser
