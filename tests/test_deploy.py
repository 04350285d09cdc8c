"""Where classes run the course: Binder (repo2docker), a student's Docker, a JupyterHub.

Neither Docker nor Binder runs here, so these tests check what can be checked without them:
that binder/ follows repo2docker's conventions (and its source, repo2docker 2026.4.0's
buildpacks/python/__init__.py, which decides what it builds), that the README's Binder link and
`docker run` line are well formed and point at what exists, and that docker/Dockerfile
installs the course's pins before it copies the course, runs under an init process, starts
from a fixed base image and passes hadolint. tests/test_binder_env.py checks our pins against
repo2docker's own packages. docs/classroom.md says what was run by hand and what could not be.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
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
BINDER = ROOT / "binder"
POSTBUILD = BINDER / "postBuild"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# Files that make repo2docker pick another build pack (a Dockerfile wins over everything).
OTHER_BUILDPACKS = ["Dockerfile", "environment.yml", "Pipfile", "Pipfile.lock", "Project.toml",
                    "install.R", "default.nix"]  # fmt: skip
# Installed by the tests and by maintainers only: never in an image.
TOOLS = ["pytest", "nbval", "hypothesis", "playwright", "ruff", "mypy", "pre-commit",
         "hadolint", "requirements-dev"]  # fmt: skip


# ---------------------------------------------------------------- repo2docker (Binder)


def _requirement_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_repo2docker_reads_the_binder_folder():
    """With a binder/ folder repo2docker reads its configuration files there and nowhere else,
    and does not `pip install .` the repository (its `_is_python_package` is false): labkit
    stays the editable copy that requirements.txt installs, with notebooks/ and data/ beside
    it. A second folder, .binder/, would be an error; a top-level runtime.txt or postBuild
    would be ignored, so there is none."""
    assert BINDER.is_dir() and not (ROOT / ".binder").exists()
    for name in ("requirements.txt", "runtime.txt", "postBuild"):
        assert (BINDER / name).is_file(), f"binder/{name}"
    for name in ("runtime.txt", "postBuild"):
        assert not (ROOT / name).exists(), f"repo2docker ignores ./{name} when binder/ exists"
    others = [name for name in OTHER_BUILDPACKS if (BINDER / name).exists()]
    assert not others, f"repo2docker would build from binder/{others}, not requirements.txt"


def test_binder_installs_the_course_pins():
    """One line: the course's file. pip reads a nested `-r` relative to the file that names it
    and `-e .` relative to where it runs (the repository's top, in repo2docker), and a `-r`
    line makes repo2docker copy the whole repository before pip runs, which `-e .` needs."""
    assert _requirement_lines(BINDER / "requirements.txt") == ["-r ../requirements.txt"]


def test_runtime_txt_names_a_python_the_course_supports():
    """repo2docker's format is `python-X.Y`; without it, it picks its newest Python (3.14 in
    repo2docker 2026.4), which the course's pins are not made for."""
    text = (BINDER / "runtime.txt").read_text(encoding="utf-8")
    match = re.fullmatch(r"python-(3)\.(\d+)\n?", text)
    assert match, f"runtime.txt must be one line `python-3.X`, not {text!r}"
    minor = int(match[2])
    assert 11 <= minor <= 13, "students use Python 3.11 to 3.13 (README, Quick start)"
    floor = re.fullmatch(r">=3\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert floor and minor >= int(floor[1]), "below pyproject.toml's requires-python"


def test_postbuild_is_an_executable_bash_script_that_stops_on_error():
    text = POSTBUILD.read_text(encoding="utf-8")
    assert os.access(POSTBUILD, os.X_OK), "repo2docker runs ./binder/postBuild"
    assert text.splitlines()[0] in ("#!/bin/bash", "#!/usr/bin/env bash")
    assert re.search(r"^set -[a-z]*e", text, re.MULTILINE), (
        "without set -e a failed step is ignored"
    )
    subprocess.run(["bash", "-n", str(POSTBUILD)], check=True)


def test_postbuild_installs_nothing():
    """Everything is installed by binder/requirements.txt, once: no reinstall after it."""
    lines = [line for line in POSTBUILD.read_text().splitlines() if not line.startswith("#")]
    assert not [line for line in lines if re.search(r"\bpip\b|conda|mamba", line)], lines


def _prepare_line() -> str:
    lines = [line for line in POSTBUILD.read_text().splitlines() if "prepare(" in line]
    assert len(lines) == 1, "postBuild copies the lessons to my-work/ in one line"
    return lines[0]


def test_postbuild_copies_the_lessons_to_my_work(tmp_path):
    """Run postBuild's own line (with `python` = this interpreter) into a scratch my-work/."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A script, not a symlink: a venv's Python started through a symlink in another folder
    # finds no pyvenv.cfg there and runs without the venv's packages.
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    (bin_dir / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "ASYNCLAB_WORK_DIR": str(tmp_path / "my-work"),
           "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data")}  # fmt: skip
    subprocess.run(["bash", "-c", _prepare_line()], cwd=ROOT, env=env, check=True, timeout=60)
    copied = sorted(p.name for p in (tmp_path / "my-work").glob("*.ipynb"))
    assert "00_start_here.ipynb" in copied
    assert copied == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    chinese = sorted(p.name for p in (tmp_path / "my-work" / "zh").glob("*.ipynb"))
    assert chinese == sorted(p.name for p in (ROOT / "notebooks" / "zh").glob("[0-9][0-9]_*.ipynb"))
    assert "00_start_here.ipynb" in chinese


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


def test_dockerfile_parses_and_starts_from_a_fixed_python_on_a_fixed_debian():
    """A tag such as python:3.11-slim moves to each new patch release and Debian release; a
    patch release on a named Debian release (python:3.11.14-slim-bookworm) does not."""
    steps = _instructions(DOCKERFILE)
    assert {word for word, _ in steps} <= KNOWN, steps
    assert steps[0][0] == "FROM" and [w for w, _ in steps].count("FROM") == 1
    assert re.fullmatch(r"python:3\.1[123]\.\d+-slim-(bookworm|trixie)", steps[0][1]), steps[0]


def _runs(steps: list[tuple[str, str]]) -> list[tuple[int, str]]:
    return [(i, args) for i, (word, args) in enumerate(steps) if word == "RUN"]


def test_dockerfile_installs_the_pins_before_it_copies_the_course():
    """Docker reuses a layer until a file copied into it, or a step before it, changes. So the
    pins are installed from requirements.txt alone, before the course is copied: an edit of a
    lesson or of labkit rebuilds one layer (labkit and its settings, no download), not the
    130 packages."""
    steps = _instructions(DOCKERFILE)
    copies = [(i, shlex.split(args)) for i, (word, args) in enumerate(steps) if word == "COPY"]
    for _, copy in copies:
        for source in [a for a in copy[:-1] if not a.startswith("--")]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    (first, first_copy), (course, course_copy) = copies
    assert first_copy == ["requirements.txt", "./"], "copy the pins alone first"
    assert course_copy[-2:] == [".", "."], (
        "then the whole course (.dockerignore says what stays out)"
    )
    pins = [i for i, args in _runs(steps) if "pip install -r" in args]
    assert len(pins) == 1 and first < pins[0] < course, "install the pins between the two copies"
    after = [args for i, args in _runs(steps) if i > course]
    assert len(after) == 1, f"one layer after the course is copied, not {after}"
    local = shlex.split(after[0])
    assert local[:5] == ["pip", "install", "--no-deps", "-r", "requirements.txt"], local
    assert "check" in local, "pip check: fail the build if two packages disagree"


def test_dockerfile_installs_the_course_set_without_test_or_lint_tools():
    steps = _instructions(DOCKERFILE)
    installs = " ".join(args for word, args in steps if word in ("RUN", "COPY"))
    assert "requirements.txt" in installs
    named = [tool for tool in TOOLS if re.search(rf"\b{tool}\b", installs)]
    assert not named, f"the image installs {named}: the students' set has none of them"


def test_dockerfile_runs_under_tini_from_debian():
    """Without an init process JupyterLab is process 1: it reaps no orphaned teaching server
    and gets no default signal handling. tini from Debian's packages (pinned, as hadolint asks),
    as the ENTRYPOINT, runs the CMD as its child."""
    steps = _instructions(DOCKERFILE)
    apt = next(args for word, args in steps if word == "RUN" and "apt-get install" in args)
    assert re.search(r"--no-install-recommends\s+tini=\S+", apt), apt
    assert "rm -rf /var/lib/apt/lists/*" in apt, "keep apt's package lists out of the layer"
    entrypoint = json.loads(next(args for word, args in steps if word == "ENTRYPOINT"))
    assert entrypoint in (["tini", "--"], ["/usr/bin/tini", "--"]), entrypoint


def test_dockerfile_runs_labkit_lab_as_a_user_on_all_container_interfaces():
    steps = _instructions(DOCKERFILE)
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "kernels should not run as root"
    cmd = json.loads(next(args for word, args in reversed(steps) if word == "CMD"))
    assert cmd[:4] == ["python", "-m", "labkit", "lab"], cmd
    assert "--ip=0.0.0.0" in cmd, "Docker forwards the port to the container's own interface"
    port = next(a.split("=")[1] for a in cmd if a.startswith("--port="))
    assert ("EXPOSE", port) in steps


def _hadolint() -> str | None:
    """The hadolint that requirements-dev.txt installs beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint(tmp_path):
    """.ci/hadolint (as CI runs it) passes on docker/Dockerfile, and fails on a Dockerfile with
    faults it is there to catch (an unpinned apt package, its lists kept, recommends pulled
    in, a user by name)."""
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -r requirements-dev.txt)")
    env = {**os.environ, "HADOLINT": hadolint}
    script = str(ROOT / ".ci" / "hadolint")
    ours = subprocess.run([script], env=env, capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN apt-get update && apt-get install -y tini\n"
                   "USER student\n")  # fmt: skip
    found = subprocess.run([script, str(bad)], env=env, capture_output=True, text=True, timeout=60)
    assert found.returncode != 0
    for rule in ("DL3008", "DL3009", "DL3015", "DL3066"):
        assert rule in found.stdout, (rule, found.stdout)


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
    """The guide says CI's classroom runs (.ci/classroom.py's three modes, called by .ci/run)
    stand in for Binder's limits: keep that true."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "classroom.md").read_text(encoding="utf-8")
    for mode in ["quota", "crowded", "neighbour"]:
        assert f".ci/classroom.py {mode}" in ci and f".ci/classroom.py {mode}" in guide, mode


def test_classroom_guide_z2jh_config_is_valid_yaml_with_the_limits():
    import yaml

    guide = (ROOT / "docs" / "classroom.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", guide, re.DOTALL)
    configs = [yaml.safe_load(block) for block in blocks]
    singleuser = next(c["singleuser"] for c in configs if c and "singleuser" in c)
    assert {"limit", "guarantee"} <= set(singleuser["memory"]), singleuser
    assert "limit" in singleuser["cpu"], singleuser
