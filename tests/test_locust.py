"""labkit.locust_lab: Locust headless in child processes, its own stats read back, and nothing
left behind, not even the workers it forks, when the process that started it is killed."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from processes import wait_dead

import labkit
from labkit import locust_lab
from labkit.claims import DATA

LYRICS_SHA = hashlib.sha256((DATA / "lyrics.txt").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pages():
    with labkit.serve("latency_http", delay=0.02) as srv:
        yield srv


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    uploads = tmp_path_factory.mktemp("uploads")
    with labkit.serve("selectors_files", root=DATA, upload_dir=uploads) as srv:
        yield srv


def test_injected_errors_are_locusts_failures(pages, monkeypatch):
    monkeypatch.setenv("LOCUST_LOGLEVEL", "DEBUG")  # ours are the only settings it reads
    steps = []
    run = locust_lab.run_locust(
        "pages",
        pages,
        users=5,
        seconds=2,
        options={"error_rate": 0.3},
        progress=lambda *s: steps.append(s),
    )
    assert run.requests > 20 and 0.1 < run.failure_ratio < 0.6, run.summary()
    assert run.errors and "503" in run.errors[0]["Error"]
    assert int(run.errors[0]["Occurrences"]) == run.failures
    assert run.p50 >= 20  # the server's delay, in ms
    assert run.per_second and sum(r for _, r, _ in run.per_second) == run.requests
    assert run.history and run.history[-1]["users"] == 5
    assert steps and steps[-1][0] > 0  # progress while it ran
    assert "Starting Locust" in run.log and "/DEBUG/" not in run.log
    assert "locust" not in sys.modules and "gevent.monkey" not in sys.modules


def test_file_user_verifies_every_byte(files):
    good = locust_lab.run_locust(
        "files", files, users=4, seconds=2, options={"expected_sha256": LYRICS_SHA}
    )
    assert good.requests > 20 and good.failures == 0, good.summary()
    assert set(good.by_name) == {"GET lyrics.txt", "PUT lyrics.txt"}
    bad = locust_lab.run_locust(
        "files", files, users=4, seconds=2, options={"expected_sha256": "0" * 64}
    )
    assert bad.requests > 20 and bad.failures == bad.requests, bad.summary()  # no PUT after
    assert "SHA-256 mismatch" in bad.errors[0]["Error"]


@pytest.mark.parametrize("mode", ["processes", "workers"])
def test_two_workers_share_the_users(pages, mode):
    run = locust_lab.run_locust("pages", pages, users=6, seconds=2, **{mode: 2})
    assert run.processes == 2 and len(run.workers) == 2, run.workers
    assert all(w["requests"] > 0 for w in run.workers)
    assert sum(w["requests"] for w in run.workers) == run.requests
    assert sorted(run.worker_peak_users.values()) == [3, 3]
    assert "--master-bind-host" in run.command and "127.0.0.1" in run.command


def test_file_load_by_either_generator(files):
    load = locust_lab.FileLoad(files, users=4, seconds=2)
    timing = labkit.Timing(load.ways(), rounds=1)
    ours, theirs = load.ours[-1], load.locust_runs[-1]
    assert ours["requests"] > 20 and ours["mismatches"] == 0 and not ours["errors"]
    assert theirs.requests > 20 and theirs.failures == 0
    for way in ("our greenlets", "Locust"):
        assert timing[way, "cpu_us"] > 0 and timing[way, "server_cpu_us"] > 0, load.costs
    assert theirs.seconds > 1.5, theirs.summary()  # a 2 s run lasts about 2 s
    table = load.table().splitlines()
    assert len(table) == 3 and "Locust" in table[2] and "server CPU" in table[0]


def test_locust_way_keeps_each_run(pages):
    way = locust_lab.LocustWay("pages", pages, users=2, seconds=1)
    with pytest.raises(LookupError):
        _ = way.last
    metrics = way()
    assert way.last is way.runs[0] and metrics["requests"] == way.last.requests > 0
    assert metrics["cpu_ms"] > 0


def test_locusts_run_time_counts_from_when_it_is_armed():
    """Locust arms its -t timer with gevent.spawn_later after a start-up in which gevent's loop
    has not run; the loop's cached time is then stale, and the timer fires that much early.
    locust_run's count_from_now makes the delay count from the moment it is armed."""
    script = Path(locust_lab.run.WRAPPER)
    code = textwrap.dedent(f"""
        import importlib.util, threading, time, gevent
        spec = importlib.util.spec_from_file_location("locust_run", {str(script)!r})
        wrapper = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(wrapper)
        def fired_after(delay, took):
            gevent.get_hub()        # a new loop, its clock read now, as in Locust's start-up
            time.sleep(0.6)         # imports and set-up that never yield to it
            armed = time.monotonic()
            gevent.spawn_later(delay, lambda: None).join()
            took.append(time.monotonic() - armed)
        for patch in (False, True):  # a thread each: each gets a fresh hub
            if patch:
                wrapper.count_from_now(gevent)
            took = []
            thread = threading.Thread(target=fired_after, args=(0.5, took))
            thread.start()
            thread.join()
            print(round(took[0], 2), end=" ")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    plain, fixed = map(float, out.stdout.split())
    assert plain < 0.3, "gevent's timer no longer counts from a stale clock: drop the patch?"
    assert 0.45 < fixed < 1.5, (plain, fixed)


def locust_processes(parent: int) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(parent).children(recursive=True):
        try:
            if any("locust_run.py" in part for part in p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.mark.parametrize("mode", ["processes", "workers"])
def test_kernel_killed_leaves_no_locust(mode):
    """A kernel-like parent starts a long run with two workers and is SIGKILLed in the middle:
    within seconds no Locust process is left, forked workers included."""
    code = textwrap.dedent(f"""
        import threading, time, labkit
        from labkit import locust_lab
        srv = labkit.serve("latency_http", delay=0.05)
        threading.Thread(target=locust_lab.run_locust, daemon=True,
                         args=("pages", srv), kwargs=dict(users=4, seconds=60, {mode}=2)).start()
        print(srv.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    found: list[psutil.Process] = []
    try:
        server = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while len(found := locust_processes(parent.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(found) == 3, "expected a master and two workers"
        listening = set()
        while not listening and time.monotonic() < deadline:  # the master binds its port
            time.sleep(0.2)  # once Locust is imported: seconds, on a busy machine
            listening = {
                c.laddr for p in found for c in p.net_connections("inet") if c.status == "LISTEN"
            }
        time.sleep(1)  # the workers join and run users
        assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening  # no web UI
        cmdline = found[0].cmdline()
        workdir = cmdline[cmdline.index("--workdir") + 1]
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        left = [p.pid for p in found if not wait_dead(p.pid, 5)]
        assert not left, f"Locust processes outlived their parent: {left}"
        assert not Path(workdir).exists(), "the run's folder was left behind"
        assert wait_dead(server, 5)
    finally:
        parent.kill()
        parent.wait(5)
        for p in found:  # a failed test must not leave them running either
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def test_commands_for_several_machines():
    master, worker = locust_lab.distributed_commands("pages", "http://server:8000", 100, 2)
    assert "--master --expect-workers 2" in master and "--headless" in master
    assert "--worker --master-host 10.0.0.1" in worker


def test_a_run_that_outlives_its_time_is_stopped(pages, monkeypatch):
    monkeypatch.setattr(locust_lab.run, "START_GRACE", -1.0)  # 2 s run, stopped after 1 s
    with pytest.raises(locust_lab.LocustError, match="ran over 1 s and was stopped"):
        locust_lab.run_locust("pages", pages, users=2, seconds=2, processes=2)
    assert not locust_processes(os.getpid())


# -- a locustfile of one's own ------------------------------------------------------------------
READER = """
from locust import HttpUser, task


class Reader(HttpUser):
    @task
    def read_page(self):
        self.client.get("/pages/page-48k.html?delay=0.02", name="page")
"""

E = locust_lab.LocustfileError
REFUSED = {
    "a name that is no locustfile of the course": ("pagse", ValueError, "no locustfile 'pagse'"),
    "a missing file": ("gone.py", E, "gone.py: no such file"),
    "a folder": ("folder.py/", E, "is a folder"),
    "not .py": ("reader.txt", E, "only Python files"),
    "not Python": ("syntax.py", E, "syntax.py, line 1: invalid syntax"),
    "not text": ("binary.py", E, "is not text"),
    "no User class": ("plain.py", E, "defines no User class (its classes, Reader"),
    "no class at all": ("empty.py", E, "empty.py defines no User class."),
    "only abstract users": ("abstract.py", E, "every User class in it is abstract"),
    "a user without a task": ("no_task.py", E, "Reader has no task"),
    "@task not imported": ("unimported.py", E, "does not import task"),
}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "folder.py").mkdir()
    (tmp_path / "reader.txt").write_text(READER)
    (tmp_path / "syntax.py").write_text("class Reader(:\n")
    (tmp_path / "binary.py").write_bytes(b"\xff\xfe\x00locust")
    (tmp_path / "plain.py").write_text(READER.replace("(HttpUser)", ""))
    (tmp_path / "empty.py").write_text("import locust\n")
    (tmp_path / "abstract.py").write_text(
        READER.replace("    @task", "    abstract = True\n\n    @task")
    )
    (tmp_path / "no_task.py").write_text(READER.replace("    @task\n", ""))
    (tmp_path / "unimported.py").write_text(READER.replace("HttpUser, task", "HttpUser"))
    return tmp_path


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_run_locust_refuses_what_is_not_a_locustfile(folder, case):
    """Refused before any Locust starts (no server is even reached: port 9 is never dialled),
    with a message that names the file, never its folder's path."""
    name, error, message = REFUSED[case]
    target = name if "." not in name else folder / name
    with pytest.raises(error, match=re.escape(message)) as refused:
        locust_lab.run_locust(target, ("127.0.0.1", 9), users=1, seconds=1)
    assert str(folder) not in str(refused.value)
    assert not locust_processes(os.getpid())


ACCEPTED = {
    "Locust as a module": (
        "import locust\n\nclass R(locust.HttpUser):\n    @locust.task\n    def r(self): ...\n"
    ),
    "a star import, tasks as a list": (
        "from locust import *\n\nclass R(FastHttpUser):\n    tasks = [print]\n"
    ),
    "an alias": (
        "from locust import User as U, task as t\n\nclass R(U):\n    @t(3)\n    def r(self): ...\n"
    ),
    "a task from an abstract base": (
        "from locust import HttpUser, task\n\nclass Base(HttpUser):\n    abstract = True\n\n"
        "    @task\n    def r(self): ...\n\nclass R(Base):\n    pass\n"
    ),
    "a base from another module": "from mybase import Reader\n\nclass R(Reader):\n    pass\n",
}


@pytest.mark.parametrize("case", ACCEPTED, ids=list(ACCEPTED))
def test_every_form_of_a_user_with_a_task_is_accepted(tmp_path, case):
    path = tmp_path / "mine.py"
    path.write_text(ACCEPTED[case])
    assert locust_lab.check_locustfile(path) == ["R"]


def test_the_skeleton_is_a_locustfile_and_is_copied_once(tmp_path, capsys):
    assert locust_lab.check_locustfile(locust_lab.SKELETON) == ["PageReader"]
    mine = locust_lab.start_locustfile(tmp_path / "work" / "my_locustfile.py")
    assert mine.read_text() == locust_lab.SKELETON.read_text()
    mine.write_text(READER)
    assert locust_lab.start_locustfile(mine) == mine and mine.read_text() == READER
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 2 and said[0] == said[1] and str(tmp_path) not in said[0]


def test_a_locustfile_of_ones_own_runs_by_its_path(pages, tmp_path):
    path = tmp_path / "reader.py"
    path.write_text(READER)
    run = locust_lab.run_locust(str(path), pages, users=3, seconds=2)
    assert run.requests > 10 and run.failures == 0, run.summary()
    assert set(run.by_name) == {"GET page"} and run.p50 >= 20
    assert "--host" in run.command and f"http://127.0.0.1:{pages.port}" in run.command
    assert run.task_error(path) == ""


def test_locusts_own_failures_name_the_line_of_the_file(pages, tmp_path):
    """What only running can show: an import that fails (Locust stops) and a task that raises
    (Locust logs it and goes on). Either way the lines shown name the file, not its path."""
    typo = tmp_path / "typo.py"
    typo.write_text("import reqests\n" + READER)
    with pytest.raises(locust_lab.LocustError) as failed:
        locust_lab.run_locust(typo, pages, users=1, seconds=1)
    said = str(failed.value)
    assert said.startswith("Locust could not load typo.py:\n"), said
    assert 'File "typo.py", line 1' in said and "No module named 'reqests'" in said
    assert str(tmp_path) not in said and "site-packages" not in said
    raises = tmp_path / "raises.py"
    raises.write_text(READER.replace('self.client.get("/pages', 'self.client.get(undefined + "'))
    run = locust_lab.run_locust(raises, pages, users=1, seconds=1)
    assert run.requests == 0
    problem = run.task_error(raises)
    assert problem.startswith('  File "raises.py", line 8, in read_page'), problem
    assert problem.endswith("NameError: name 'undefined' is not defined"), problem
