"""The benchmark scripts still run (at a tiny scale: the real runs are `python -m benchmarks`)."""
from benchmarks import fetch_speedup, file_server, run


def test_file_server_benchmark_small(monkeypatch):
    monkeypatch.setattr(file_server, "CLIENTS", 200)
    text = file_server.run()
    assert text.count("| yes |") == 2 and "| 200 | 0 | 0 |" in text


def test_fetch_benchmark_small(monkeypatch):
    monkeypatch.setattr(fetch_speedup, "COUNTS", (2, 100, 5))
    monkeypatch.setattr(fetch_speedup, "table",
                        lambda latency, with_goal, real=fetch_speedup.table: real(0.01, with_goal))
    text = fetch_speedup.run()
    assert text.count("| 5 |") == 2 and "(extrapolated)" in text


def test_results_file_sections_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results.md")
    run.write_sections({"files": "## files\nrow\n", "fetch": "## fetch\nrow\n"})
    assert run.read_sections() == {"fetch": "## fetch\nrow\n", "files": "## files\nrow\n"}
