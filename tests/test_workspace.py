"""Students work on copies in my-work/; a save of a course original never changes it.

The instructors' command must pass after a student's session, and the student's work must not
be lost: these tests check the copy rules, the pre-save hook, and a real JupyterLab started
with the course's Jupyter config (as root, with kernels over IPC)."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest
from tornado.web import HTTPError

from labkit import workspace

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))  # signatures here
    monkeypatch.setattr(workspace, "WORK", tmp_path / "my-work")
    monkeypatch.setattr(workspace, "_redirected", {})
    return tmp_path / "my-work"


def test_prepare_copies_each_lesson_once_and_never_overwrites(work):
    copied = workspace.prepare(work)
    assert copied == [p.name for p in workspace.lessons()] and len(copied) >= 9
    mine = work / copied[0]
    mine.write_text("my edits")
    assert workspace.prepare(work) == []
    assert mine.read_text() == "my edits"


def test_fresh_copy_keeps_the_old_one(work):
    workspace.prepare(work)
    (work / "04_sync_vs_async.ipynb").write_text("half done")
    fresh = workspace.fresh_copy("4", work)
    assert fresh.read_bytes() == (workspace.COURSE / fresh.name).read_bytes()
    kept = list(work.glob("04_sync_vs_async (saved *).ipynb"))
    assert len(kept) == 1 and kept[0].read_text() == "half done"


class FakeContents:
    root_dir = str(ROOT)


def test_saving_a_course_original_goes_to_my_work(work):
    original = ROOT / "notebooks" / "01_coroutines.ipynb"
    before = original.read_bytes()
    nb = nbformat.read(original, as_version=4)
    nb.cells[0].source = "a student's edit"
    model = {"type": "notebook", "content": json.loads(nbformat.writes(nb))}
    for _ in range(2):  # autosave, twice: one copy
        with pytest.raises(HTTPError) as refused:
            workspace.keep_course_pristine(model, "notebooks/01_coroutines.ipynb", FakeContents())
        assert refused.value.status_code == 403 and "my-work/01_coroutines.ipynb" in str(
            refused.value
        )
    assert original.read_bytes() == before
    assert (
        nbformat.read(work / "01_coroutines.ipynb", as_version=4).cells[0].source
        == "a student's edit"
    )
    assert [p.name for p in work.iterdir()] == ["01_coroutines.ipynb"]


def test_other_saves_are_left_alone(work):
    model = {"type": "notebook", "content": {}}
    workspace.keep_course_pristine(model, "my-work/01_coroutines.ipynb", FakeContents())
    workspace.keep_course_pristine(
        {"type": "file"}, "notebooks/src/01_coroutines.py", FakeContents()
    )
    assert not work.exists()


@pytest.fixture
def jupyter(tmp_path):
    """A real JupyterLab over this checkout, configured only by the course's own config
    (JUPYTER_CONFIG_PATH points at it, as the venv install does), without --allow-root. Its
    runtime folder is deep (pytest's tmp_path): too deep for Unix sockets placed beside the
    connection files, as jupyter_client would place them."""
    runtime, token = tmp_path / "runtime", uuid.uuid4().hex
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_CONFIG_PATH": str(ROOT / "labkit" / "jupyter"),
        "ASYNCLAB_WORK_DIR": str(tmp_path / "my-work"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
    ]
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            for info in runtime.glob("jpserver-*.json"):
                data = json.loads(info.read_text() or "{}")
                if data.get("port"):
                    url = f"http://127.0.0.1:{data['port']}"
            time.sleep(0.2)
        assert url, (tmp_path / "lab.log").read_text()

        def api(method, path, body=None):
            req = urllib.request.Request(
                f"{url}{path}",
                method=method,
                data=json.dumps(body).encode() if body else None,
                headers={"Authorization": f"token {token}"},
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")

        yield api, tmp_path, runtime
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)
        log.close()


def test_jupyterlab_as_root_with_ipc_kernels_keeps_the_course_pristine(jupyter):
    api, tmp_path, runtime = jupyter
    original = ROOT / "notebooks" / "00_start_here.ipynb"
    before = original.read_bytes()
    model = api("GET", "/api/contents/notebooks/00_start_here.ipynb")
    model["content"]["cells"][0]["source"] = "edited in the browser"
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(
            "PUT",
            "/api/contents/notebooks/00_start_here.ipynb",
            {"type": "notebook", "format": "json", "content": model["content"]},
        )
    assert refused.value.code == 403
    assert original.read_bytes() == before
    saved = nbformat.read(tmp_path / "my-work" / "00_start_here.ipynb", as_version=4)
    assert saved.cells[0].source == "edited in the browser"
    kernel = api("POST", "/api/kernels", {"name": "python3"})
    try:
        info = json.loads((runtime / f"kernel-{kernel['id']}.json").read_text())
        assert info["transport"] == "ipc" and len(info["ip"]) < 60  # a Unix socket path
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel['id']}.json"))
        client.load_connection_file()  # and it really answers over those Unix sockets
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive("6 * 7", timeout=30)
            assert reply["content"]["status"] == "ok"
        finally:
            client.stop_channels()
    finally:
        api("DELETE", f"/api/kernels/{kernel['id']}")


def test_the_chinese_lessons_have_their_own_folder(work, tmp_path, monkeypatch):
    """`lab --lang zh` copies notebooks/zh/ into my-work/zh/; a save of a Chinese original goes
    there too. (A stand-in course folder, so the test holds before every lesson is translated.)"""
    course = tmp_path / "notebooks"
    (course / "zh").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · 协程")])
    nbformat.write(nb, course / "zh" / "01_coroutines.ipynb")
    nbformat.write(nb, course / "01_coroutines.ipynb")
    monkeypatch.setattr(workspace, "COURSE", course)
    assert workspace.prepare(work / "zh", "zh") == ["01_coroutines.ipynb"]
    assert (work / "zh" / "01_coroutines.ipynb").exists()

    class Contents:
        root_dir = str(tmp_path)

    model = {"type": "notebook", "content": json.loads(nbformat.writes(nb))}
    with pytest.raises(HTTPError) as refused:
        workspace.keep_course_pristine(model, "notebooks/zh/01_coroutines.ipynb", Contents())
    assert "my-work/zh/01_coroutines (saved" in str(refused.value)  # the copy exists: kept
    with pytest.raises(SystemExit, match="no lessons in 'fr'"):
        workspace.lab(["--lang", "fr"])
