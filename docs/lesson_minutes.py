"""How long each lesson takes a student: measured where it can be, modelled where it cannot.

No student can be timed here, so the minutes come from what can be measured, combined by a
model stated in the open (docs/instructors.md, "How the minutes were measured"):

* **kernel seconds**: the time the lesson's code takes to run, measured by running the notebook
  under nbval with ``--durations=0`` (``--run``; the numbers are kept in
  ``docs/lesson_seconds.json`` so that the table is reproducible without re-running);
* **words** of prose the student reads (markdown cells of ``notebooks/src/NN_*.py``);
* **lines of code** the student reads (non-blank code lines) and **code cells** run;
* **figures** drawn (PNG outputs stored in the built notebook) and **widget panels**;
* **exercises** (``labkit.exercises``), each worth a fixed number of minutes.

    python docs/lesson_minutes.py            # the table, from the sources and the stored times
    python docs/lesson_minutes.py --run      # first re-measure the kernel seconds (minutes)
    python docs/lesson_minutes.py --run 05_event_driven   # re-measure one lesson
    python docs/lesson_minutes.py --guide    # write the minutes into docs/instructors.md
    python docs/lesson_minutes.py --run 11_locust --guide   # both

A lesson split into sittings (a markdown heading ``## Sitting k of m (about N minutes)``) gets
one row per sitting; the exercises are counted in the last sitting.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SECONDS = ROOT / "docs" / "lesson_seconds.json"
sys.path.insert(0, str(NOTEBOOKS))
import build  # noqa: E402

# -- the model (docs/instructors.md explains where each number comes from) ------------------------
WORDS_PER_MINUTE = 150  # studying technical prose: well under the ~240 wpm of plain reading
CODE_LINES_PER_MINUTE = 10  # reading code closely enough to predict its output: 6 s a line
MINUTES_PER_CELL = 0.25  # run a cell, read its output (beyond the kernel time)
MINUTES_PER_FIGURE = 1.0  # read a timeline or a bar chart
MINUTES_PER_PANEL = 2.0  # move a widget's sliders and watch the figure change
MINUTES_PER_EXERCISE = 6.0  # think, try, check, perhaps a hint: a small exercise
SITTING = 45  # one sitting, in minutes: the most a lesson part should take
SPLIT_ABOVE = 50  # a lesson longer than this is split into sittings of at most SITTING

SITTING_HEADING = re.compile(r"^## Sitting (\d+) of (\d+) \(about (\d+) minutes\)", re.MULTILINE)
EXERCISES_HEADING = re.compile(r"^## Exercises$", re.MULTILINE)


@dataclass
class Part:
    """What a student reads and runs in one lesson or one sitting of it."""

    lesson: str
    sitting: str  # "" for a whole lesson, "1 of 2" for a sitting
    words: int = 0
    code_lines: int = 0
    code_cells: int = 0
    figures: int = 0
    panels: int = 0
    exercises: int = 0
    exercise_words: int = 0
    kernel_seconds: float = 0.0

    @property
    def teaching_minutes(self) -> int:
        minutes = (
            self.words / WORDS_PER_MINUTE
            + self.code_lines / CODE_LINES_PER_MINUTE
            + self.code_cells * MINUTES_PER_CELL
            + self.figures * MINUTES_PER_FIGURE
            + self.panels * MINUTES_PER_PANEL
            + self.kernel_seconds / 60
        )
        return round5(minutes)

    @property
    def exercise_minutes(self) -> int:
        if not self.exercises:
            return 0
        return round5(
            self.exercises * MINUTES_PER_EXERCISE + self.exercise_words / WORDS_PER_MINUTE
        )

    @property
    def minutes(self) -> int:
        return self.teaching_minutes + self.exercise_minutes


def round5(minutes: float) -> int:
    """Round to the nearest 5 minutes (at least 5): nobody plans a class to the minute."""
    return max(5, 5 * math.floor(minutes / 5 + 0.5))


def sources() -> list[Path]:
    return sorted((NOTEBOOKS / "src").glob("[0-9][0-9]_*.py"))


def words_of(markdown: str) -> int:
    """Words a student reads: table rules, markup and URLs are not words."""
    text = re.sub(r"\]\([^)]*\)", "]", markdown)  # a link's target
    return len([w for w in re.split(r"\s+", text) if re.search(r"[\w\u4e00-\u9fff]", w)])


def code_lines(code: str) -> int:
    return sum(1 for line in code.splitlines() if line.strip())


def outputs_of(name: str) -> list[tuple[int, int]]:
    """(figures, panels) of each code cell of the built notebook, in order."""
    notebook = NOTEBOOKS / f"{name}.ipynb"
    if not notebook.exists():
        return []
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        kinds = [kind for out in cell.get("outputs", []) for kind in out.get("data", {})]
        panel = "application/vnd.jupyter.widget-view+json" in kinds
        found.append((kinds.count("image/png"), int(panel)))
    return found


def measure(source: Path, seconds: dict[str, list[float]]) -> list[Part]:
    """One Part per sitting (or one for the whole lesson), exercises in the last."""
    name = source.stem
    cells = build.parse(source.read_text(encoding="utf-8"))
    outputs = outputs_of(name)
    cell_seconds = seconds.get(name, [])
    parts = [Part(name, "")]
    in_exercises = False
    code_index = 0
    for kind, body in cells:
        part = parts[-1]
        if kind == "markdown":
            if m := SITTING_HEADING.search(body):
                parts[-1].sitting = f"{int(m[1]) - 1} of {m[2]}"
                part = Part(name, f"{m[1]} of {m[2]}")
                parts.append(part)
            if EXERCISES_HEADING.search(body):
                in_exercises = True
            if in_exercises and body.startswith("**Exercise"):
                part.exercises += 1
                part.exercise_words += words_of(body)
            else:
                part.words += words_of(body)
            continue
        part.code_cells += 1
        part.code_lines += code_lines(body)
        if code_index < len(outputs):
            figures, panel = outputs[code_index]
            part.figures += figures
            part.panels += panel
        if code_index < len(cell_seconds):
            part.kernel_seconds += cell_seconds[code_index]
        code_index += 1
    return parts


def load_seconds() -> dict[str, list[float]]:
    return json.loads(SECONDS.read_text(encoding="utf-8")) if SECONDS.exists() else {}


def run_kernel(name: str) -> list[float]:
    """Each code cell's seconds under nbval (setup, call and teardown of that cell)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", f"notebooks/{name}.ipynb", "--durations=0", "-vv", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:  # the time of each cell still counts; say that it failed
        summary = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        print(f"  {name} did not pass under nbval (timed anyway): {summary}", flush=True)
    per_cell: dict[int, float] = {}
    for line in done.stdout.splitlines():
        m = re.match(r"^\s*([\d.]+)s (?:call|setup|teardown)\s+\S+\.ipynb::Cell (\d+)", line)
        if m:
            per_cell[int(m[2])] = per_cell.get(int(m[2]), 0.0) + float(m[1])
    return [round(per_cell.get(i, 0.0), 2) for i in range(max(per_cell, default=-1) + 1)]


def table(parts: list[Part]) -> str:
    head = (
        "| Lesson | Sitting | Words | Code lines | Cells | Figures | Panels | Kernel s "
        "| Exercises | Teaching min | Exercise min | Total min |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {p.lesson} | {p.sitting or 'whole'} | {p.words} | {p.code_lines} | {p.code_cells} "
        f"| {p.figures} | {p.panels} | {p.kernel_seconds:.0f} | {p.exercises} "
        f"| {p.teaching_minutes} | {p.exercise_minutes} | {p.minutes} |"
        for p in parts
    ]
    return "\n".join([head, *rows])


def lesson_minutes(parts: list[Part]) -> int:
    """The minutes of a whole lesson: the sum of its sittings."""
    return sum(p.minutes for p in parts)


# A project (the capstone's own server) is not modelled: its time depends on the student. Its
# lesson's "Time:" line gives the modelled minutes of the rest and says so in its own words.
PROJECTS = {
    "12_capstone": (
        "**Time:** about {minutes} minutes to read and grade the examples; "
        "your server, one or two sittings."
    ),
}


def time_line(parts: list[Part]) -> str:
    """The "**Time:**" line a lesson's first cell must carry (tests/test_docs.py checks it)."""
    total = lesson_minutes(parts)
    if parts[0].lesson in PROJECTS:
        return PROJECTS[parts[0].lesson].format(minutes=total)
    teaching = sum(p.teaching_minutes for p in parts)
    exercises = sum(p.exercise_minutes for p in parts)
    line = f"**Time:** about {total} minutes"
    if exercises:
        line += f": {teaching} reading and running, {exercises} exercises"
    if len(parts) > 1:
        line += "; sittings of " + " + ".join(str(p.minutes) for p in parts)
    return line + "."


def guide_table(everything: list[list[Part]]) -> str:
    """The guide's table: one row per lesson (and per sitting), with its totals."""
    rows = []
    for parts in everything:
        for p in parts if len(parts) > 1 else parts[:1]:
            rows.append(p)
    course = [p for parts in everything for p in parts if p.lesson[:2] <= "08"]
    total = sum(p.minutes for p in course)
    teaching = sum(p.teaching_minutes for p in course)
    return (
        f"{table(rows)}\n\nLessons 00–08: {teaching} minutes of reading and running, "
        f"{total - teaching} of exercises, {total} in all ({total / 60:.1f} hours)."
    )


MINUTES_LINE = re.compile(r"^\*\*Minutes:\*\*.*$", re.MULTILINE)
LESSON_SECTION = re.compile(r"^## Lesson (\d\d)\b", re.MULTILINE)
TABLE_BLOCK = re.compile(r"(<!-- minutes:start -->\n).*?(<!-- minutes:end -->)", re.DOTALL)


def minutes_line(parts: list[Part]) -> str:
    teaching = sum(p.teaching_minutes for p in parts)
    exercises = sum(p.exercise_minutes for p in parts)
    line = f"**Minutes:** {teaching} teaching + {exercises} exercises = {lesson_minutes(parts)}"
    if len(parts) > 1:
        line += " (sittings: " + " + ".join(str(p.minutes) for p in parts) + ")"
    if parts[0].lesson in PROJECTS:
        line += "; plus the student's own server, which the model does not time"
    return line


def with_minutes(guide: str) -> str:
    """The guide with its minutes table and each lesson's "**Minutes:**" line as measured now."""
    seconds = load_seconds()
    measured = {s.stem[:2]: measure(s, seconds) for s in sources()}
    guide = TABLE_BLOCK.sub(
        lambda m: m[1] + guide_table(list(measured.values())) + "\n" + m[2], guide, count=1
    )
    pieces = LESSON_SECTION.split(guide)  # [before, "00", section, "01", section, ...]
    for i in range(1, len(pieces), 2):
        if pieces[i] in measured:
            line = minutes_line(measured[pieces[i]])
            pieces[i + 1] = MINUTES_LINE.sub(lambda _, line=line: line, pieces[i + 1], count=1)
    out = pieces[0]
    for i in range(1, len(pieces), 2):
        out += f"## Lesson {pieces[i]}{pieces[i + 1]}"
    return out


def main(argv: list[str]) -> None:
    """``[--run [NAME ...]] [--guide]``: re-measure, then write the guide; always print."""
    seconds = load_seconds()
    guide_too = "--guide" in argv
    argv = [a for a in argv if a != "--guide"]
    if argv and argv[0] == "--run":
        names = argv[1:] or [s.stem for s in sources()]
        for name in names:
            print(f"running {name} under nbval ...", flush=True)
            seconds[name] = run_kernel(name)
            SECONDS.write_text(json.dumps(seconds, indent=1, sort_keys=True) + "\n")
    elif argv:
        raise SystemExit(__doc__)
    if guide_too:
        guide = ROOT / "docs" / "instructors.md"
        guide.write_text(with_minutes(guide.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote the minutes into {guide.relative_to(ROOT)}")
    everything = [p for s in sources() for p in measure(s, seconds)]
    print(table(everything))
    print()
    for source in sources():
        parts = measure(source, seconds)
        print(f"{source.stem}: # {time_line(parts)}")


if __name__ == "__main__":
    main(sys.argv[1:])
