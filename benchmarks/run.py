"""Measure the course's performance goals on this machine and write benchmarks/results.md.

    python -m benchmarks                      # every benchmark, each with its defaults
    python -m benchmarks fetch                # only some (names below)
    python -m benchmarks fetch --sizes 10,100 files --clients 1000   # options follow their NAME
    python benchmarks/run.py fetch            # the same, from any working directory
    python -m benchmarks --help               # the benchmarks
    python -m benchmarks files --help         # one benchmark's options and their defaults

Each benchmark is a module listed in BENCHMARKS that has ``ABOUT`` (one line),
``add_arguments(parser)`` (its options) and ``run(args) -> str`` (its Markdown section). A module
is imported only when it is asked for: ``--help`` lists a benchmark that cannot be imported as
such, and running it stops before anything is measured, naming what is missing.

Each benchmark reports ratios measured within one run (never against a typed-in constant), and
says whether its goal is met. The machine is shared and noisy: run it when it is quiet, and
read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # `python benchmarks/run.py` from anywhere finds the package
BENCHMARKS = {
    "fetch": "benchmarks.fetch_speedup",
    "files": "benchmarks.file_server",
    "echo": "benchmarks.echo",
    "threadpool": "benchmarks.threadpool_latency",
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


def load(name: str) -> ModuleType:
    """The benchmark's module, imported now (and not before: it may import gevent, uvloop...)."""
    return importlib.import_module(BENCHMARKS[name])


def about(name: str) -> str:
    """The benchmark's one line for ``--help``; if it cannot be imported, why not."""
    try:
        return load(name).ABOUT
    except Exception as err:  # --help must still work, and say what is wrong
        return f"(cannot be run here: {type(err).__name__}: {err})"


def add_results_option(cli: argparse.ArgumentParser) -> None:
    cli.add_argument(
        "--results",
        type=Path,
        default=None,
        help="the Markdown file to write; sections of benchmarks not run are kept "
        "(default: benchmarks/results.md)",
    )


def parser(listing: bool = True) -> argparse.ArgumentParser:
    """The command's own parser: which benchmarks to run; their options follow each NAME.
    Its ``--help`` lists every benchmark, importing each (``listing=False`` imports none)."""
    names = "\n".join(f"  {name:8} {about(name) if listing else ''}" for name in BENCHMARKS)
    cli = argparse.ArgumentParser(
        prog="python -m benchmarks",
        usage="python -m benchmarks [--results FILE] [NAME [NAME's options] ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure the course's performance goals and write benchmarks/results.md.",
        epilog=f"benchmarks:\n{names}\n\n"
        "Each benchmark's options follow its NAME, e.g. `files --clients 1000`; "
        "`python -m benchmarks NAME --help` lists them with their defaults. "
        "Options left out keep the defaults; results of benchmarks not run are kept.",
    )
    cli.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    add_results_option(cli)
    return cli


def benchmark_parser(name: str, module: ModuleType) -> argparse.ArgumentParser:
    """``python -m benchmarks NAME``'s parser: the module's options, and ``--results``."""
    cli = argparse.ArgumentParser(
        prog=f"python -m benchmarks {name}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"{module.ABOUT}\n\n{(module.__doc__ or '').strip()}",
    )
    module.add_arguments(cli)
    add_results_option(cli)
    return cli


def split(argv: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The command's own arguments, then (NAME, its arguments) for each benchmark named.
    A NAME is a word that is a benchmark's name; an option's value spelled like one needs
    ``--option=value``."""
    own: list[str] = []
    named: list[tuple[str, list[str]]] = []
    for word in argv:
        if word in BENCHMARKS:
            named.append((word, []))
        else:
            (named[-1][1] if named else own).append(word)
    return own, named


def parse(argv: list[str]) -> tuple[list[tuple[str, ModuleType, argparse.Namespace]], Path]:
    """Every benchmark to run with its options, and where to write; exits on a bad command
    line or a benchmark that cannot be imported, before anything is measured."""
    own, named = split(argv)
    wants_help = any(word in ("-h", "--help") for word in own)
    top = parser(listing=wants_help).parse_args(own)  # --help exits here; a typo lands in names
    if top.names:
        sys.exit(f"unknown benchmark(s) {top.names}; choose from {list(BENCHMARKS)}")
    named = named or [(name, []) for name in BENCHMARKS]
    runs, results = [], {top.results} - {None}
    for name, words in named:
        try:
            module = load(name)
        except ImportError as err:
            sys.exit(f"benchmark {name!r} cannot be run: {type(err).__name__}: {err}")
        args = benchmark_parser(name, module).parse_args(words)
        results |= {args.results} - {None}
        runs.append((name, module, args))
    if len(results) > 1:
        sys.exit(f"--results given twice, differently: {sorted(map(str, results))}")
    return runs, results.pop() if results else RESULTS


def main(argv: list[str] | None = None) -> None:
    runs, results = parse(sys.argv[1:] if argv is None else argv)
    for name, module, args in runs:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        text = module.run(args)
        took = time.perf_counter() - started
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sections = read_sections(results)  # now: another run may have written meanwhile
        sections[name] = f"{text}\n_Measured {stamp} on {machine()}, in {took:.0f} s._\n"
        print(text, flush=True)
        write_sections(sections, results)  # after each: a later failure keeps this one
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
    for name in [*BENCHMARKS, *(n for n in sections if n not in BENCHMARKS)]:
        if name in sections:
            parts.append(f"<!-- benchmark: {name} -->\n{sections[name].strip()}\n")
    (results or RESULTS).write_text("\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()
