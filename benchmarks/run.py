"""Measure the course's performance goals on this machine and write benchmarks/results.md.

    python -m benchmarks              # every benchmark
    python -m benchmarks fetch        # only some (names below)
    python benchmarks/run.py fetch    # the same
    python -m benchmarks --help       # the benchmarks and their options (smaller runs, say)

Each benchmark reports ratios measured within one run (never against a typed-in constant), and
says whether its goal is met. The machine is shared and noisy: run it when it is quiet, and
read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
BENCHMARKS = {"fetch": "benchmarks.fetch_speedup", "files": "benchmarks.file_server"}
ABOUT = {
    "fetch": "lesson 04: gevent's speed-up over sequential fetching of N pages",
    "files": "lesson 08: 10,000 clients GET and PUT a file, every hash verified",
}
RESULTS = HERE / "results.md"


def machine() -> str:
    import os

    return (
        f"Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}"
    )


def numbers(kind: type) -> Callable[[str], list]:
    """``10,100`` -> [10, 100]: the type of a comma-separated option."""
    return lambda text: [kind(part) for part in text.split(",") if part.strip()]


def parser() -> argparse.ArgumentParser:
    about = "\n".join(f"  {name:8} {ABOUT[name]}" for name in BENCHMARKS)
    cli = argparse.ArgumentParser(
        prog="python -m benchmarks",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure the course's performance goals and write benchmarks/results.md.",
        epilog=f"benchmarks:\n{about}\n\nOptions left out keep each benchmark's defaults; "
        "results of benchmarks not run are kept.",
    )
    cli.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    cli.add_argument("--sizes", type=numbers(int), help="fetch: N pages per run (10,100,1000)")
    cli.add_argument(
        "--latencies",
        type=numbers(float),
        help="fetch: seconds per page, the goal judged at the first (1,0.1)",
    )
    cli.add_argument("--clients", type=int, help="files: concurrent clients (10000)")
    cli.add_argument("--results", type=Path, help="where to write (benchmarks/results.md)")
    return cli


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    results = args.results or RESULTS
    sections = read_sections(results)
    for name in names:
        print(f"== {name}", flush=True)
        run = importlib.import_module(BENCHMARKS[name]).run
        # Pass each benchmark only the options it takes, and only those given.
        options = {
            key: value
            for key, value in vars(args).items()
            if value is not None and key in inspect.signature(run).parameters
        }
        started = time.perf_counter()
        text = run(**options)
        took = time.perf_counter() - started
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sections[name] = f"{text}\n_Measured {stamp} on {machine()}, in {took:.0f} s._\n"
        print(text, flush=True)
    write_sections(sections, results)
    print(f"wrote {results}")


def read_sections(results: Path | None = None) -> dict[str, str]:
    """Keep the results of benchmarks not run this time."""
    results = results or RESULTS
    sections: dict[str, str] = {}
    if results.exists():
        current = None
        for line in results.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.startswith("<!-- benchmark: "):
                current = line.split()[2]
                sections[current] = ""
            elif current:
                sections[current] += line
    return {name: text.strip() + "\n" for name, text in sections.items()}


def write_sections(sections: dict[str, str], results: Path | None = None) -> None:
    parts = ["# Benchmark results\n\nWritten by `python -m benchmarks`; see benchmarks/run.py.\n"]
    for name in BENCHMARKS:
        if name in sections:
            parts.append(f"<!-- benchmark: {name} -->\n{sections[name].strip()}\n")
    (results or RESULTS).write_text("\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()
