"""The benchmarks run end to end at a small scale, through the same command line as the real
runs (`python -m benchmarks`), and write what they measured into the results file."""

import re
import subprocess
import sys
from pathlib import Path

from benchmarks import fetch_speedup, run

ROOT = Path(__file__).resolve().parent.parent


def rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the rows of the first table under ``heading``."""
    block = next(b for b in text[text.index(heading) :].split("\n\n") if b.startswith("|"))
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in block.splitlines()
        if not line.startswith("|---")
    ][1:]


def test_help_lists_every_benchmark():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for name in run.BENCHMARKS:
        assert re.search(rf"^\s+{name}\s+lesson \d\d: ", out.stdout, re.MULTILINE), name
    for option in ("--sizes", "--latencies", "--clients", "--results"):
        assert option in out.stdout


def test_unknown_benchmark_is_an_error_naming_the_choices():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
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
    results = tmp_path / "results.md"
    run.main(["files", "--clients", "200", "--results", str(results)])
    text = results.read_text(encoding="utf-8")
    assert "## 200 clients: GET lyrics.txt" in text
    table = rows(text, "## 200 clients")
    assert [row[0] for row in table] == ["selectors_files", "gevent_files"]
    for server, served, mismatches, errors, *_, goal in table:
        assert (served, mismatches, errors, goal) == ("200", "0", "0", "yes"), server


def test_results_file_sections_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results.md")
    run.write_sections({"files": "## files\nrow\n", "fetch": "## fetch\nrow\n"})
    assert run.read_sections() == {"fetch": "## fetch\nrow\n", "files": "## files\nrow\n"}
