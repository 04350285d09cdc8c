"""The slow set: .ci/slow-tests.txt names real tests, and conftest.py marks exactly those."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("slow_tests", ROOT / ".ci" / "slow_tests.py")
assert _spec and _spec.loader
slow_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slow_tests)

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_sanitize" name="test_random_claim_lines_keep_their_marks"
 time="2.5"/>
<testcase classname="tests.test_sanitize" name="test_the_patterns_exist_and_none_mentions_a_mark"
 time="0.01"/>
<testcase classname="tests.test_browser.TestSomething" name="test_x[a-b]" time="3"/>
<testcase classname="notebooks.10_cpu_and_processes.ipynb" name="Cell 13" time="20"/>
</testsuite></testsuites>
"""


def listed() -> list[str]:
    lines = slow_tests.LIST.read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def test_a_junit_report_gives_the_node_ids_of_the_slow_unit_tests(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT)
    assert slow_tests.slow_tests(report) == [
        "tests/test_browser.py::TestSomething::test_x[a-b]",
        "tests/test_sanitize.py::test_random_claim_lines_keep_their_marks",
    ]  # a notebook's cells are never in the list: they are not unit tests


def test_every_listed_test_file_exists():
    # A test renamed since the list was written runs by default: harmless, so not checked.
    assert len(listed()) > 10
    for node in listed():
        assert (ROOT / node.split("::", 1)[0]).is_file(), node


class Item:
    """What conftest's hook uses of a collected test: its node id and add_marker."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid, self.markers = nodeid, []

    def add_marker(self, mark) -> None:
        self.markers.append(mark.name)


def test_conftest_marks_the_listed_tests_and_only_those():
    import conftest

    items = [Item(node) for node in listed()[:3]] + [Item("tests/test_x.py::test_fast")]
    conftest.pytest_collection_modifyitems(None, items)
    assert [item.markers for item in items] == [["slow"], ["slow"], ["slow"], []]


def test_the_default_run_leaves_out_the_slow_and_the_browser_tests():
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    addopts = options["ini_options"]["addopts"]
    assert addopts[addopts.index("-m") + 1] == "not browser and not slow"


def test_a_new_report_adds_to_the_list_and_fresh_starts_again(tmp_path, monkeypatch):
    report, old = tmp_path / "junit.xml", "tests/test_old.py::test_was_slow"
    report.write_text(JUNIT)
    monkeypatch.setattr(slow_tests, "LIST", tmp_path / "slow-tests.txt")
    slow_tests.LIST.write_text(f"# header\n{old}\n")
    slow_tests.main([str(report)])
    assert old in slow_tests.listed() and len(slow_tests.listed()) == 3
    slow_tests.main([str(report), "--fresh"])
    assert old not in slow_tests.listed() and len(slow_tests.listed()) == 2
