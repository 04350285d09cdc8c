#!/usr/bin/env python3
"""Which unit tests are slow: those that took a second or more in a measured run.

The README's test command must stay short (about ten minutes on two cores, most of it the
notebooks), so the unit tests that each take a second or more carry the marker ``slow``:
plain ``pytest`` leaves them out, ``pytest -m slow tests/`` runs them, and CI always does.
conftest.py marks every test listed in ``.ci/slow-tests.txt``; this script adds to that list
the slow tests of a JUnit report:

    .venv/bin/python -m pytest --junitxml=artifacts/junit.xml     # the README's test command
    python3 .ci/slow_tests.py artifacts/junit.xml         # adds its slow tests to the list

A report of the default run cannot say whether a listed test got faster (it did not run), so
the listed tests stay. To start again, measure every unit test and write only those:

    .venv/bin/python -m pytest -m "" tests/ --junitxml=artifacts/junit.xml
    python3 .ci/slow_tests.py --fresh artifacts/junit.xml

A test missing from the list (a new one, or one renamed since) runs by default until the list
is written again: the default run can only get slower, never skip a test that CI does not run.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / ".ci" / "slow-tests.txt"
SLOW = 1.0  # seconds: setup, call and teardown of one test, as JUnit reports it
HEADER = """\
# Unit tests that took {slow:g} s or more in a measured run: the marker "slow" (conftest.py).
# Plain `pytest` leaves them out; `pytest -m slow tests/` runs them; CI always does.
# Written by `python3 .ci/slow_tests.py JUNIT.xml` (its docstring says how); do not edit by hand.
"""


def node_id(classname: str, name: str) -> str:
    """pytest's node id from JUnit's dotted class name: the module's path, then any classes."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = Path(*parts[:cut]).with_suffix(".py")
        if (ROOT / path).exists():
            return "::".join([path.as_posix(), *parts[cut:], name])
    return "::".join([classname, name])


def slow_tests(report: Path, slow: float = SLOW) -> list[str]:
    """Node ids of the unit tests (not notebook cells) that took ``slow`` seconds or more."""
    found = []
    for case in ET.parse(report).iter("testcase"):
        classname = case.get("classname", "")
        if classname.startswith("tests.") and float(case.get("time", 0)) >= slow:
            found.append(node_id(classname, case.get("name", "")))
    return sorted(set(found))


def listed() -> list[str]:
    lines = LIST.read_text().splitlines() if LIST.exists() else []
    return [line for line in lines if line and not line.startswith("#")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="a JUnit XML report")
    parser.add_argument("--slow", type=float, default=SLOW, help="seconds (default %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="drop the tests listed now")
    args = parser.parse_args(argv)
    found = slow_tests(args.report, args.slow)
    tests = sorted(set(found) | (set() if args.fresh else set(listed())))
    LIST.write_text(HEADER.format(slow=args.slow) + "".join(f"{t}\n" for t in tests))
    print(f"{len(found)} slow tests in the report; {len(tests)} listed in {LIST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
