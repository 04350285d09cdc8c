"""docs/claim_margins.py, on a fake claim log: the table it makes and the one block it writes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "claim_margins.py"

_spec = importlib.util.spec_from_file_location("claim_margins", SCRIPT)
assert _spec and _spec.loader
margins = importlib.util.module_from_spec(_spec)
sys.modules["claim_margins"] = margins  # dataclasses look their module up there
_spec.loader.exec_module(margins)


def record(text, holds=True, value=None, limit=None, op=None, margin=None, rounds=None, **kw):
    """One line of LABKIT_CLAIM_LOG, as labkit.claims writes it."""
    machine = {"usable_cpus": 2, "load1": 0.4, "cwd": "/work/main/notebooks"} | kw
    return {"text": text, "holds": holds, "value": value, "limit": limit, "op": op,
            "margin": margin, "rounds": rounds} | machine  # fmt: skip


FAST = "gather took under two latencies"
RATIO = "gather was over 5 times faster"
FAKE = {
    "idle": [
        record("every byte came back"),  # a plain claim: no margin, left out
        record(FAST, value=0.21, limit=0.4, op="<", margin=1.9, rounds=1),
        record(FAST, value=0.26, limit=0.4, op="<", margin=1.54, rounds=2),
        record(RATIO, value=9.0, limit=5, op=">", margin=1.8, rounds=1),
    ],
    "neighbour": [
        record(FAST, value=0.3, limit=0.4, op="<", margin=1.33, rounds=3, load1=2.5),
    ],
    "quota": [
        record(FAST, value=0.35, limit=0.4, op="<", margin=1.14, rounds=5, usable_cpus=1),
        record(
            RATIO,
            holds=False,
            value=4.0,
            limit=5,
            op=">",
            margin=0.8,
            rounds=5,
            usable_cpus=1,
            load1=1.2,
        ),  # fmt: skip
    ],
}


def rows(text: str) -> dict[str, list[str]]:
    found = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 2:
            found[cells[1]] = cells
    return found


def test_each_timing_claim_gets_its_worst_margin_in_each_condition():
    claims, machines = margins.collect(FAKE)
    assert [c.text for c in claims] == [FAST, RATIO]  # the plain claim is left out
    text = margins.block(claims, machines, {"quota": {"status": 1, "seconds": 300}}, "2026-12-07")
    table = rows(text)
    assert table["Claim"] == ["Lesson", "Claim", "Needed", "Idle", "Beside a neighbour",
                              "One-CPU quota"]  # fmt: skip
    assert table[FAST][2:] == ["< 0.4", "1.54× (2 times)", "1.33×", "1.14×"]
    assert table[RATIO][2:] == ["> 5", "1.80×", "—", "✘ 0.80×"]
    assert "* One-CPU quota: usable CPUs 1, load 0.4–1.2; pytest exit status 1 in 5.0 min" in text
    assert text.startswith(margins.START) and text.endswith(margins.END)


GUIDE = "# Guide\n\n## Lesson 12 · Capstone\n\ntext\n\n## The original course, by section\n\nend\n"


def test_the_block_goes_under_its_heading_once_and_nothing_else_changes():
    first = margins.with_block(GUIDE, f"{margins.START}\nOLD BLOCK\n{margins.END}")
    assert first.count(margins.HEADING) == 1 and first.count(margins.START) == 1
    assert first.index(margins.HEADING) < first.index("## The original course")
    second = margins.with_block(first, f"{margins.START}\nnew | table\n{margins.END}")
    assert "new | table" in second and "OLD BLOCK" not in second
    assert second.replace("new | table", "OLD BLOCK") == first  # only the block changed
    assert margins.with_block(second, margins.BLOCK.search(second)[0]) == second


def test_the_guide_is_written_under_the_lock(tmp_path):
    guide, lock = tmp_path / "instructors.md", tmp_path / "guide.lock"
    guide.write_text(GUIDE)
    margins.write_guide(f"{margins.START}\nx\n{margins.END}", guide, lock)
    assert f"{margins.START}\nx\n{margins.END}" in guide.read_text() and lock.exists()


def test_a_claim_is_named_by_the_lesson_that_shows_it():
    shown = {"05_event_driven": "✔ one\n", "09_asyncio": "✔ gather took under two latencies\n"}
    assert margins.lesson_of(FAST, shown) == "09_asyncio"
    assert margins.lesson_of("a sentence no lesson prints, anywhere", shown) == "?"


def test_the_script_reads_logs_and_prints_the_block(tmp_path):
    for condition, records in FAKE.items():
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (tmp_path / f"{condition}.jsonl").write_text(lines)
    (tmp_path / "runs.json").write_text(json.dumps({"idle": {"status": 0, "seconds": 240}}))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--from-logs", "--print", "--logs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table[FAST][3:] == ["1.54× (2 times)", "1.33×", "1.14×"]
    assert "* Idle: usable CPUs 2, load 0.4–0.4; pytest exit status 0 in 4.0 min" in result.stdout


def test_the_guide_has_at_most_one_margins_block():
    guide = (ROOT / "docs" / "instructors.md").read_text()
    assert guide.count(margins.START) == guide.count(margins.END) <= 1


def test_a_run_names_the_conditions_the_runner_set_not_how_it_ended():
    output = (
        "classroom crowded: CPU quota: 1 CPU (cpu.max '100000 100000', cgroup v2 "
        "/sys/fs/cgroup/asynclab-classroom-41); affinity: cores 0,1; "
        "neighbour: pid 4242, log /work/artifacts/classroom/neighbour.log\n"
        "....\n2 passed in 3.1s\n"
        "classroom crowded: the command took 4 s, cleaning up 0 s; exit status 0\n"
    )
    assert margins.conditions_set(output) == (
        "CPU quota: 1 CPU (cpu.max '100000 100000', cgroup v2); affinity: cores 0,1; "
        "neighbour: a loop of pytest notebooks/"
    )
    assert margins.conditions_set("2 passed\n") is None
