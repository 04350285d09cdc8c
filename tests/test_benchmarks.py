"""The benchmarks run end to end at a small scale, through the same command line as the real
runs (`python -m benchmarks`), and write what they measured into the results file."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import fetch_speedup, file_server, run
from labkit import netstat

ROOT = Path(__file__).resolve().parent.parent


def rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the rows of the first table under ``heading``."""
    block = next(b for b in text[text.index(heading) :].split("\n\n") if b.startswith("|"))
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in block.splitlines()
        if not line.startswith("|---")
    ][1:]


def command(*words: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *words], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_benchmark():
    out = command("-m", "benchmarks", "--help")
    assert out.returncode == 0, out.stderr
    for name in run.BENCHMARKS:
        assert re.search(rf"^\s+{name}\s+\S", out.stdout, re.MULTILINE), name
    for name in ("fetch", "files"):  # echo's line is its own helper's to word
        assert re.search(rf"^\s+{name}\s+lesson \d\d: ", out.stdout, re.MULTILINE), name
    assert "--results" in out.stdout and "NAME --help" in out.stdout


def test_help_works_from_any_working_directory(tmp_path):
    """By path from anywhere; `-m benchmarks` finds the package only where it is importable
    (the repository's root, or an install that includes it)."""
    out = command(str(ROOT / "benchmarks" / "run.py"), "files", "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "--clients" in out.stdout


def test_each_benchmark_help_lists_its_options_with_defaults():
    """The contract: every module has ABOUT, add_arguments and run(args); every option has a
    help text that names its default; `NAME --help` exits 0 and lists them."""
    for name in run.BENCHMARKS:
        try:
            module = run.load(name)
        except ModuleNotFoundError:
            continue  # not written yet; the test below covers a missing module
        assert isinstance(module.ABOUT, str) and "\n" not in module.ABOUT.strip(), name
        assert callable(module.run), name
        cli = run.benchmark_parser(name, module)
        for action in cli._actions:
            if action.option_strings and action.dest not in ("help", "results"):
                assert action.help and "default" in action.help, (name, action.dest)
        out = command("-m", "benchmarks", name, "--help")
        assert out.returncode == 0, (name, out.stderr)
        assert module.ABOUT in " ".join(out.stdout.split()), name
        assert "--results" in out.stdout, name
    files = command("-m", "benchmarks", "files", "--help").stdout
    assert "--clients" in files and "--sizes" not in files
    fetch = command("-m", "benchmarks", "fetch", "--help").stdout
    assert "--sizes" in fetch and "--latencies" in fetch and "--clients" not in fetch


def test_a_missing_benchmark_module_is_listed_and_refused(monkeypatch, capsys, tmp_path):
    """Help still works when a registered module is missing; running it stops before any
    other benchmark is measured, and says which."""
    monkeypatch.setitem(run.BENCHMARKS, "ghost", "benchmarks.no_such_module")
    with pytest.raises(SystemExit) as help_exit:
        run.main(["--help"])
    assert help_exit.value.code == 0
    listed = capsys.readouterr().out
    assert re.search(r"^\s+ghost\s+\(cannot be run here: ModuleNotFoundError", listed, re.MULTILINE)
    results = tmp_path / "results.md"
    with pytest.raises(SystemExit) as run_exit:
        run.main(
            ["fetch", "--sizes", "1", "--latencies", "0.01", "ghost", "--results", str(results)]
        )
    assert "ghost" in str(run_exit.value.code) and "no_such_module" in str(run_exit.value.code)
    assert not results.exists()  # nothing measured


def test_options_follow_their_benchmark(monkeypatch):
    """`fetch --sizes ... files --clients ...`: each benchmark gets its own options and its
    defaults for the rest; an option of another benchmark is an error."""
    runs, results = run.parse(["fetch", "--sizes", "3,4", "files", "--clients", "7"])
    assert results == run.RESULTS
    (fetch, _, fetch_args), (files, _, files_args) = runs
    assert (fetch, fetch_args.sizes, fetch_args.latencies) == ("fetch", [3, 4], [1.0, 0.1])
    assert (files, files_args.clients) == ("files", 7)
    with pytest.raises(SystemExit):
        run.parse(["fetch", "--clients", "7"])
    with pytest.raises(SystemExit):
        run.parse(["--results", "a.md", "fetch", "--results", "b.md"])
    runs, results = run.parse(["--results", "a.md", "files"])
    assert results == Path("a.md") and [name for name, *_ in runs] == ["files"]


def test_unknown_benchmark_is_an_error_naming_the_choices():
    out = command("-m", "benchmarks", "nope")
    assert out.returncode != 0 and "nope" in out.stderr and "fetch" in out.stderr


def test_fetch_benchmark_small_writes_its_tables(tmp_path):
    """Sizes and latencies come from the command line; N above SEQUENTIAL_UP_TO is estimated."""
    results = tmp_path / "results.md"
    results.write_text("<!-- benchmark: files -->\n## files, measured before\n", encoding="utf-8")
    big = fetch_speedup.SEQUENTIAL_UP_TO + 20
    run.main(
        ["fetch", "--sizes", f"5,2,{big}", "--latencies", "0.02,0.01", "--results", str(results)]
    )
    text = results.read_text(encoding="utf-8")
    assert text.index("<!-- benchmark: fetch -->") < text.index("## files, measured before")
    assert "at a latency of 0.02 s." in text
    for latency, judged in (("0.02", True), ("0.01", False)):
        table = rows(text, f"### Latency {latency} s per page")
        assert [row[0] for row in table] == ["2", "5", f"{big}"]
        for n, sequential, gevent, speedup, per_n, goal in table:
            assert sequential.endswith("(extrapolated)") == (n == f"{big}")
            seq = float(sequential.split()[0])
            assert seq >= int(n) * float(latency) - 0.005  # waits out every page (rounded)
            assert float(gevent) >= float(latency)  # gevent waits out a page at least
            assert abs(float(per_n) - float(speedup) / int(n)) <= 0.01 + 0.05 / int(n)
            if n == f"{big}":
                assert float(speedup) > 2  # overlap: the point of lesson 04
            assert goal in (("yes", "NO") if judged and int(n) <= 100 else ("-",))
    assert re.search(r"_Measured .* UTC on Python .*, in \d+ s\._", text)


def test_file_server_benchmark_small(tmp_path):
    """Both loads, both servers, every run verified; the ramped load's gate is named, and what
    limited the runs is stated from the kernel's counters and limits."""
    results = tmp_path / "results.md"
    run.main(["files", "--clients", "200", "--repeats", "2", "--results", str(results)])
    text = results.read_text(encoding="utf-8")
    assert "## 200 clients: GET lyrics.txt" in text
    for heading in ("### Ramped: at most ", "### All at once"):
        table = rows(text, heading)
        assert [row[0] for row in table] == ["selectors_files", "gevent_files"]
        for server, served, mismatches, errors, most, wall, *rest in table:
            server_cpu, client_cpu, memory, overflows, retransmits, goal = rest
            assert (served, mismatches, errors, goal) == ("200", "0", "0", "yes"), server
            assert re.fullmatch(r"[\d,]+ \([\d,]+–[\d,]+\)", most), most  # median (min–max)
            median, low, high = map(float, re.findall(r"[\d.]+", wall))
            assert low <= median <= high, wall
            assert 0 < float(server_cpu) < 2 * high and 0 < float(client_cpu) < 2 * high, rest
            assert float(memory.split()[0]) > 1, memory
            assert re.fullmatch(r"[\d,]+", overflows) and re.fullmatch(r"[\d,]+", retransmits)
    backlog = min(file_server.BACKLOG, netstat.listen_limits().get("somaxconn", 1 << 30))
    assert f"### Ramped: at most {backlog // 2:,} clients" in text
    assert f"their accept queue holds {backlog:,}" in text
    assert "Open files (soft/hard): this client process " in text
    assert re.search(r"ramped \(median .*\): selectors_files: server \d+%, clients \d+%", text)


def test_file_server_benchmark_without_the_burst(tmp_path):
    results = tmp_path / "results.md"
    run.main(
        ["files", "--clients", "50", "--repeats", "1", "--max-unanswered", "7"]
        + ["--no-all-at-once", "--results", str(results)]
    )
    text = results.read_text(encoding="utf-8")
    assert "### Ramped: at most 7 clients" in text and "### All at once" not in text
    assert [row[1] for row in rows(text, "### Ramped")] == ["50", "50"]


def test_threadpool_benchmark_small(tmp_path):
    """One row per run, both servers in each; the goal is judged, met or not (a ratio measured
    in the run, not a unit test's business)."""
    results = tmp_path / "results.md"
    run.main(["threadpool", "--runs", "2", "--work-ms", "200", "--results", str(results)])
    text = results.read_text(encoding="utf-8")
    table = rows(text, "## PINGs during a WORK")
    assert [row[0] for row in table] == ["1", "2"]
    for _, *servers in table:
        for cell in servers:
            count, quick, median, p99 = (c.strip() for c in cell.split(","))
            assert 0 <= int(quick) <= int(count), cell
            assert median.endswith(" ms") and p99.endswith(" ms"), cell
        assert int(servers[1].split(",")[0]) > 0  # the process pool answers during the WORK
    assert re.search(r"Best p99 over best p99: [\d.]+: goal (met|NOT met)\.", text)


def test_results_file_sections_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results.md")
    sections = {"files": "## files\nrow\n", "fetch": "## fetch\nrow\n", "old": "## old\n"}
    run.write_sections(sections)
    assert run.read_sections() == sections  # a section of no registered benchmark is kept
    text = run.RESULTS.read_text(encoding="utf-8")
    assert text.index("## fetch") < text.index("## files") < text.index("## old")
