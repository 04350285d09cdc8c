"""Measure the course's performance goals on this machine and write benchmarks/results.md.

    python -m benchmarks              # every benchmark
    python -m benchmarks fetch        # only some (names below)
    python benchmarks/run.py fetch    # the same

Each benchmark reports ratios measured within one run (never against a typed-in constant), and
says whether its goal is met. The machine is shared and noisy: run it when it is quiet, and
read the ratios, not the seconds.
"""
from __future__ import annotations

import importlib
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
BENCHMARKS = {"fetch": "benchmarks.fetch_speedup", "files": "benchmarks.file_server"}
RESULTS = HERE / "results.md"


def machine() -> str:
    import os
    return (f"Python {platform.python_version()}, {os.cpu_count()} cores, "
            f"{platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> None:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    sections = read_sections()
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        text = importlib.import_module(BENCHMARKS[name]).run()
        took = time.perf_counter() - started
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        sections[name] = f"{text}\n_Measured {stamp} on {machine()}, in {took:.0f} s._\n"
        print(text, flush=True)
    write_sections(sections)
    print(f"wrote {RESULTS.relative_to(HERE.parent)}")


def read_sections() -> dict[str, str]:
    """Keep the results of benchmarks not run this time."""
    sections: dict[str, str] = {}
    if RESULTS.exists():
        current = None
        for line in RESULTS.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.startswith("<!-- benchmark: "):
                current = line.split()[2]
                sections[current] = ""
            elif current:
                sections[current] += line
    return {name: text.strip() + "\n" for name, text in sections.items()}


def write_sections(sections: dict[str, str]) -> None:
    parts = ["# Benchmark results\n\nWritten by `python -m benchmarks`; see benchmarks/run.py.\n"]
    for name in BENCHMARKS:
        if name in sections:
            parts.append(f"<!-- benchmark: {name} -->\n{sections[name].strip()}\n")
    RESULTS.write_text("\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()
