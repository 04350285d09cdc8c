"""How far each lesson's timing claims are from failing, idle, beside a neighbour, on one CPU.

A timing claim (``labkit.Timing(...).claim``) holds when a measured value is below or above a
limit. Its *margin* says by how much: 2.0 means the limit was twice what was needed, 1.1 that a
little more noise would have failed it. This script runs ``pytest notebooks/`` three times with
``LABKIT_CLAIM_LOG`` set, so every claim appends its value, limit and margin to a log:

* **idle**: as it is (run it on a quiet machine);
* **beside a neighbour**: a second ``pytest notebooks/`` on the same cores
  (``.ci/classroom.py neighbour``);
* **one-CPU quota**: a CFS quota of one CPU, every core still in the affinity mask
  (``.ci/classroom.py quota``; needs root and a cgroup, else it pins to one core and says so).

It then writes a table of every timing claim and its margin in each condition into
``docs/instructors.md``, between ``<!-- claim-margins:start -->`` and
``<!-- claim-margins:end -->`` (under "Timing claims and their margins"; nothing else there
changes). Plain claims (no value, no limit) are left out: they have no margin.

    python docs/claim_margins.py                     # the three runs, then the guide
    python docs/claim_margins.py --only idle quota   # some of the runs (the others' logs stay)
    python docs/claim_margins.py --from-logs         # no runs: the table from the last logs
    python docs/claim_margins.py --from-logs --print # print the block, leave the guide alone

The logs stay in ``artifacts/claim-margins/`` (one ``CONDITION.jsonl`` per run, its output in
``CONDITION.out`` and ``runs.json`` with each run's exit status and minutes).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "instructors.md"
LOGS = ROOT / "artifacts" / "claim-margins"
LOCK = Path("/tmp/asynclab-guide.lock")  # shared by every script that writes the guide
RUNNER = ROOT / ".ci" / "classroom.py"
PYTHON = ROOT / ".venv" / "bin" / "python"

#: condition -> (column title, the classroom runner's mode or None for as-is)
CONDITIONS: dict[str, tuple[str, str | None]] = {
    "idle": ("Idle", None),
    "neighbour": ("Beside a neighbour", "neighbour"),
    "quota": ("One-CPU quota", "quota"),
}
HEADING = "## Timing claims and their margins"
START, END = "<!-- claim-margins:start -->", "<!-- claim-margins:end -->"
BLOCK = re.compile(re.escape(START) + r"\n.*?" + re.escape(END), re.DOTALL)
INTRO = (
    "Each lesson's timing claims hold with some room to spare: the *margin* is how far a claim\n"
    "was from failing (2.0× means the limit was twice what was needed). `python\n"
    "docs/claim_margins.py` measures it under the conditions classes run in and writes this\n"
    "table; a margin near 1 in any column is a claim to loosen or to measure better.\n"
)


# -- reading the logs --------------------------------------------------------------------------
@dataclass
class Margin:
    """One timing claim in one condition: its worst margin over every time it was judged."""

    margin: float | None = None
    failed: bool = False
    times: int = 0
    rounds: int = 0

    def add(self, record: dict) -> None:
        self.times += 1
        self.failed |= not record["holds"]
        self.rounds = max(self.rounds, record.get("rounds") or 0)
        m = record.get("margin")
        if m is not None and (self.margin is None or m < self.margin):
            self.margin = m

    def cell(self) -> str:
        text = "—" if self.margin is None else f"{self.margin:.2f}×"
        if self.failed:
            text = f"✘ {text}"
        return text + (f" ({self.times} times)" if self.times > 1 else "")


@dataclass
class Claim:
    text: str
    op: str
    limit: float
    lesson: str = "?"
    margins: dict[str, Margin] = field(default_factory=dict)


@dataclass
class Machine:
    """What the claims saw of the machine in one condition."""

    usable_cpus: set = field(default_factory=set)
    load1: list[float] = field(default_factory=list)

    def add(self, record: dict) -> None:
        if record.get("usable_cpus") is not None:
            self.usable_cpus.add(record["usable_cpus"])
        if record.get("load1") is not None:
            self.load1.append(record["load1"])

    def describe(self) -> str:
        cpus = "/".join(f"{c:g}" for c in sorted(self.usable_cpus)) or "?"
        load = f"{min(self.load1):.1f}–{max(self.load1):.1f}" if self.load1 else "?"
        return f"usable CPUs {cpus}, load {load}"


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_timing(record: dict) -> bool:
    return record.get("value") is not None and record.get("limit") is not None


def collect(logs: dict[str, list[dict]]) -> tuple[list[Claim], dict[str, Machine]]:
    """Every timing claim of every condition's log, in the order first seen."""
    claims: dict[tuple[str, str, float], Claim] = {}
    machines = {condition: Machine() for condition in logs}
    for condition, records in logs.items():
        for record in records:
            machines[condition].add(record)
            if not is_timing(record):
                continue
            key = (record["text"], record["op"], record["limit"])
            claim = claims.setdefault(key, Claim(*key))
            claim.margins.setdefault(condition, Margin()).add(record)
    return list(claims.values()), machines


def shown_claims(notebooks: Iterable[Path]) -> dict[str, str]:
    """Each lesson's printed output (its stored stdout), by lesson name."""
    shown = {}
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        outputs = (o for c in cells for o in c.get("outputs", []))
        shown[path.stem] = "".join("".join(o.get("text", "")) for o in outputs)
    return shown


def lesson_of(text: str, shown: dict[str, str]) -> str:
    """The lesson whose stored outputs show this claim (``✔ text``), or whose source has it."""
    for lesson, output in shown.items():
        if f"✔ {text}" in output:
            return lesson
    for path in sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")):
        if text in path.read_text(encoding="utf-8"):
            return path.stem
    return "?"


# -- the table ---------------------------------------------------------------------------------
def cell(text: str) -> str:
    return text.replace("|", "\\|")


def block(
    claims: list[Claim],
    machines: dict[str, Machine],
    runs: dict[str, dict],
    day: str,
) -> str:
    """The text between the markers (markers included)."""
    conditions = [c for c in CONDITIONS if c in machines]
    titles = [CONDITIONS[c][0] for c in conditions]
    lines = [
        START,
        f"Measured on {day} ({os.cpu_count()} cores) by `python docs/claim_margins.py`: "
        "`pytest notebooks/` once per "
        "condition, each claim's worst margin over the times it was judged (✘: it failed in "
        "that run; —: it was not judged there).",
        "",
        "| Lesson | Claim | Needed | " + " | ".join(titles) + " |",
        "|---|---|---|" + "---|" * len(titles),
    ]
    for claim in sorted(claims, key=lambda c: c.lesson):
        margins = [claim.margins.get(c, Margin()).cell() for c in conditions]
        needed = f"{claim.op} {claim.limit:.4g}"
        row = [claim.lesson, cell(claim.text), needed, *margins]
        lines.append("| " + " | ".join(row) + " |")
    if not claims:
        lines.append("| — | no timing claim was logged | |" + " |" * len(titles))
    lines.append("")
    for condition in conditions:
        run = runs.get(condition, {})
        said = f"; {run['conditions']}" if run.get("conditions") else ""
        status = run.get("status", "?")
        minutes = f"{run['seconds'] / 60:.1f} min" if "seconds" in run else "? min"
        lines.append(
            f"* {CONDITIONS[condition][0]}: {machines[condition].describe()}; pytest exit status "
            f"{status} in {minutes}{said}"
        )
    lines.append(END)
    return "\n".join(lines)


def with_block(guide: str, new_block: str) -> str:
    """The guide with the marked block replaced (added, under its heading, if not there)."""
    if BLOCK.search(guide):
        return BLOCK.sub(lambda _: new_block, guide, count=1)
    section = f"{HEADING}\n\n{INTRO}\n{new_block}\n\n"
    anchor = guide.find("\n## The original course")
    if anchor < 0:
        return guide.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    return guide[: anchor + 1] + section + guide[anchor + 1 :]


def write_guide(new_block: str, guide: Path = GUIDE, lock: Path = LOCK) -> None:
    """One read-modify-write under the guide's lock (other scripts edit other sections)."""
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        text = guide.read_text(encoding="utf-8")
        guide.write_text(with_block(text, new_block), encoding="utf-8")


# -- the runs ----------------------------------------------------------------------------------
def conditions_set(output: str) -> str | None:
    """What the classroom runner said it set: its first line (its last says how it went),
    without this run's pids and paths."""
    said = [line for line in output.splitlines() if line.startswith("classroom ")]
    if not said:
        return None
    text = said[0].split(": ", 1)[1]
    text = re.sub(r"(cgroup v\d) \S+\)", r"\1)", text)
    return re.sub(r"neighbour: pid \d+, log \S+", "neighbour: a loop of pytest notebooks/", text)


def run_condition(condition: str, logs: Path) -> dict:
    """``pytest notebooks/`` in one condition, its claims logged; returns what the run did."""
    log, out = logs / f"{condition}.jsonl", logs / f"{condition}.out"
    log.unlink(missing_ok=True)
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    command = [python, "-m", "pytest", "-q", "notebooks/"]
    mode = CONDITIONS[condition][1]
    if mode:
        command = [python, str(RUNNER), mode, "--", *command]
    print(f"== {condition}: {' '.join(command)}", flush=True)
    started = time.monotonic()
    with open(out, "w") as output:
        status = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, "LABKIT_CLAIM_LOG": str(log)},
            stdout=output,
            stderr=subprocess.STDOUT,
        ).returncode
    result = {"status": status, "seconds": round(time.monotonic() - started, 1)}
    if said := conditions_set(out.read_text()):
        result["conditions"] = said
    print(f"   exit status {status} in {result['seconds'] / 60:.1f} min", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    parser.add_argument("--from-logs", action="store_true", help="no runs: use the last logs")
    parser.add_argument("--print", action="store_true", help="print the block, not the guide")
    parser.add_argument("--logs", type=Path, default=LOGS, help="where the logs are kept")
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    runs_file = args.logs / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    if not args.from_logs:
        for condition in args.only:
            runs[condition] = run_condition(condition, args.logs)
            runs_file.write_text(json.dumps(runs, indent=1))
    for condition, run in runs.items():  # read again: what the runner set, in its own words
        out = args.logs / f"{condition}.out"
        said = conditions_set(out.read_text()) if out.exists() else None
        run.pop("conditions", None)
        run.update({"conditions": said} if said else {})
    logs = {
        c: read_log(args.logs / f"{c}.jsonl")
        for c in CONDITIONS
        if (args.logs / f"{c}.jsonl").exists()
    }
    claims, machines = collect(logs)
    shown = shown_claims(sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    for claim in claims:
        claim.lesson = lesson_of(claim.text, shown)
    newest = max((p.stat().st_mtime for p in args.logs.glob("*.jsonl")), default=time.time())
    text = block(claims, machines, runs, date.fromtimestamp(newest).isoformat())  # when measured
    if args.print:
        print(text)
    else:
        write_guide(text)
        print(f"{len(claims)} timing claims written to {GUIDE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
