"""``pytest -n N``: one child per environment per worker with markers, N children at once with a suite-wide matrix
or with markers when the last run had only matrix items.

Each test project has a conftest that records every pytest process that
starts inside an environment of the matrix (a child), so the tests count
children, not guess them from timings.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("xdist")

RECORDER = """
import os
import sys

def pytest_configure(config):
    with open({path!r}, "a") as f:
        f.write(f"{{os.getpid()}} {{sys.prefix}}\\n")
"""

SUITE = """
import emx_demo
import pytest

@pytest.mark.parametrize("n", range(12))
def test_many(n, envmatrix_combination):
    assert emx_demo.__version__ == envmatrix_combination["emx_demo"]

def test_answer_is_two():
    assert emx_demo.answer() == 2
"""

AXIS = "--envmatrix-axis=emx_demo=1.0,2.0,3.0"


def children(record: Path, cache: Path) -> list[str]:
    """The interpreters (sys.prefix) of the pytest processes that ran inside the cache's environments, one per process."""
    if not record.exists():
        return []
    lines = [line.split(" ", 1) for line in record.read_text().splitlines()]
    return [prefix for _, prefix in lines if prefix.startswith(str(cache))]


def outcomes(junit: Path) -> dict[str, str]:
    """node name → outcome, from a junit XML report."""
    found = {}
    for case in ET.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return found


@pytest.fixture
def recorded(fresh_matrix, tmp_path):
    record = tmp_path / "processes.txt"
    fresh_matrix.pytester.makeconftest(RECORDER.format(path=str(record)))
    return fresh_matrix, record


def test_a_suite_wide_matrix_under_n_starts_no_worker_and_gives_the_same_results(recorded, tmp_path):
    matrix, record = recorded
    matrix.pytester.makepyfile(test_suite=SUITE)
    plain_xml, spread_xml = tmp_path / "plain.xml", tmp_path / "spread.xml"
    plain = matrix.run(AXIS, "-v", f"--junitxml={plain_xml}", subprocess=True)
    plain.assert_outcomes(passed=37, failed=2)
    assert len(children(record, matrix.cache)) == 3
    record.unlink()

    spread = matrix.run(AXIS, "-v", "-n", "2", f"--junitxml={spread_xml}", subprocess=True)
    spread.assert_outcomes(passed=37, failed=2)
    spread.stdout.fnmatch_lines(["envmatrix: -n 2 with a suite-wide matrix: no xdist workers; up to 2 environments' children collect and run at once"])
    assert "bringing up nodes" not in spread.stdout.str() and "[gw" not in spread.stdout.str()
    # one child per environment, as without -n: it collected the suite and ran what was selected
    assert sorted(children(record, matrix.cache)) == sorted(set(children(record, matrix.cache)))
    assert len(children(record, matrix.cache)) == 3
    assert outcomes(spread_xml) == outcomes(plain_xml)
    verdicts = re.compile(r"^(test_suite\.py::\S+) (PASSED|FAILED)", re.M)
    assert verdicts.findall(spread.stdout.str()) == verdicts.findall(plain.stdout.str())  # same ids, same order


def test_under_n_a_suite_wide_matrix_keeps_k_and_x(recorded):
    matrix, record = recorded
    matrix.pytester.makepyfile(test_suite=SUITE)
    selected = matrix.run(AXIS, "-n", "2", "-k", "answer and not 2.0", "-v", subprocess=True)
    selected.assert_outcomes(failed=2)
    selected.stdout.fnmatch_lines(["*39 items / 37 deselected / 2 selected*"])
    stopped = matrix.run(AXIS, "-n", "2", "-x", "-p", "no:randomly", subprocess=True)
    assert stopped.ret == 1
    assert stopped.parseoutcomes().get("failed") == 1, stopped.stdout.str()


def test_an_explicit_jobs_setting_wins_over_n(recorded):
    matrix, _ = recorded
    matrix.pytester.makepyfile(test_suite=SUITE)
    result = matrix.run(AXIS, "-n", "2", "--envmatrix-jobs=1", subprocess=True)
    result.assert_outcomes(passed=37, failed=2)
    result.stdout.fnmatch_lines(["envmatrix: -n 2 with a suite-wide matrix: no xdist workers; up to 1 environments' children*(--envmatrix-jobs / envmatrix_jobs)"])


MARKED = """
import pytest

pytestmark = pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])

@pytest.mark.parametrize("n", range(8))
def test_many(n):
    import emx_demo
    assert emx_demo.answer() < 3
"""


def test_markers_under_n_run_each_environment_in_one_child(recorded, tmp_path):
    matrix, record = recorded
    # not marked: runs in an xdist worker, as without the plugin
    matrix.pytester.makepyfile(test_marked=MARKED, test_unmarked="def test_plain():\n    pass\n")
    plain_xml, spread_xml = tmp_path / "plain.xml", tmp_path / "spread.xml"
    plain = matrix.run("-v", f"--junitxml={plain_xml}", subprocess=True)
    plain.assert_outcomes(passed=17, failed=8)
    record.unlink()
    spread = matrix.run("-v", "-n", "2", f"--junitxml={spread_xml}", subprocess=True)
    spread.assert_outcomes(passed=17, failed=8)
    # 24 matrix items in 3 environments: 3 children, not one per item or per batch
    assert sorted(children(record, matrix.cache)) == sorted(set(children(record, matrix.cache)))
    assert len(children(record, matrix.cache)) == 3
    # the ids are the same as without -n: no xdist group suffix
    assert "]@" not in spread.stdout.str()
    assert outcomes(spread_xml) == outcomes(plain_xml)
    # that run had a test outside the matrix: the next one starts workers again
    again = matrix.run("-v", "-n", "2", subprocess=True)
    again.assert_outcomes(passed=17, failed=8)
    assert "no xdist workers" not in again.stdout.str()
    again.stdout.fnmatch_lines(["[[]gw?[]] *PASSED test_unmarked.py::test_plain*"])


def run_again(matrix, tmp_path: Path, *args: str) -> pytest.RunResult:
    """A pytest subprocess whose command line is the same each time: a plan is kept per command line, and
    pytester's own subprocess runs each add a ``--basetemp`` of their own."""
    return matrix.pytester.run(
        sys.executable, "-m", "pytest", *matrix.options(), f"--basetemp={tmp_path / 'basetemp'}", *args, timeout=600
    )


NO_WORKERS = "envmatrix: -n 2 and the last run with these options ran only matrix items: no xdist workers; up to 2 environments' children run at once*"


def test_markers_under_n_with_only_matrix_items_start_no_worker_from_the_second_run(recorded, tmp_path):
    matrix, record = recorded
    matrix.pytester.makepyfile(test_marked=MARKED)
    plain_xml, spread_xml = tmp_path / "plain.xml", tmp_path / "spread.xml"
    matrix.run("-v", f"--junitxml={plain_xml}", subprocess=True).assert_outcomes(passed=16, failed=8)
    record.unlink()
    spread_options = ("-v", "-n", "2", f"--junitxml={spread_xml}")  # the same command line each time: one plan

    # the first run under -n cannot know its items before its workers collect: xdist as usual
    first = run_again(matrix, tmp_path, *spread_options)
    first.assert_outcomes(passed=16, failed=8)
    assert "[gw" in first.stdout.str() and "no xdist workers" not in first.stdout.str()
    assert len(children(record, matrix.cache)) == 3
    record.unlink()

    # it found only matrix items: the next runs collect here and run the environments two at a time
    for _ in ("second", "third"):
        spread = run_again(matrix, tmp_path, *spread_options)
        spread.assert_outcomes(passed=16, failed=8)
        spread.stdout.fnmatch_lines([NO_WORKERS])
        assert "[gw" not in spread.stdout.str() and "bringing up nodes" not in spread.stdout.str()
        assert sorted(children(record, matrix.cache)) == sorted(set(children(record, matrix.cache)))
        assert len(children(record, matrix.cache)) == 3
        assert outcomes(spread_xml) == outcomes(plain_xml)
        record.unlink()
    # the third started its children from the second's plan, while it collected
    spread.stdout.fnmatch_lines(["*(3 started during collection)*"])


def test_a_test_outside_the_matrix_added_since_runs_here_and_brings_the_workers_back(recorded, tmp_path):
    matrix, record = recorded
    matrix.pytester.makepyfile(test_marked=MARKED)
    run_again(matrix, tmp_path, "-v", "-n", "2").assert_outcomes(passed=16, failed=8)
    matrix.pytester.makepyfile(test_unmarked="def test_plain():\n    pass\n")

    here = run_again(matrix, tmp_path, "-v", "-n", "2")
    here.assert_outcomes(passed=17, failed=8)
    # the new test ran, in this process: no worker started
    here.stdout.fnmatch_lines([NO_WORKERS, "test_unmarked.py::test_plain PASSED*"])
    assert "[gw" not in here.stdout.str()

    back = run_again(matrix, tmp_path, "-v", "-n", "2")
    back.assert_outcomes(passed=17, failed=8)
    assert "no xdist workers" not in back.stdout.str()
    back.stdout.fnmatch_lines(["[[]gw?[]] *PASSED test_unmarked.py::test_plain*"])  # in a worker again


def test_without_workers_markers_under_n_keep_k_and_x(recorded, tmp_path):
    matrix, record = recorded
    matrix.pytester.makepyfile(test_marked=MARKED)
    for options in (("-k", "not 2.0"), ("-x", "-p", "no:randomly")):
        run_again(matrix, tmp_path, "-n", "2", *options)  # leaves the plan for these options
    selected = run_again(matrix, tmp_path, "-n", "2", "-k", "not 2.0")
    selected.stdout.fnmatch_lines([NO_WORKERS, "*24 items / 8 deselected / 16 selected*"])
    selected.assert_outcomes(passed=8, failed=8)
    stopped = run_again(matrix, tmp_path, "-n", "2", "-x", "-p", "no:randomly")
    stopped.stdout.fnmatch_lines([NO_WORKERS])
    assert stopped.ret == 1
    assert stopped.parseoutcomes().get("failed") == 1, stopped.stdout.str()


class FakeNode:
    """What xdist's scheduler calls on a worker: it records the item indices it is sent."""

    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_the_scheduler_sends_each_environment_whole_to_one_worker(pytester):
    from pytest_envmatrix.scheduling import EnvironmentScheduling

    collection = [f"test_x.py::test_{n}[numpy-{v}]" for v in ("1", "2", "3") for n in range(5)] + ["test_y.py::test_plain"]
    groups = {nodeid: f"numpy=={nodeid[-2]}" for nodeid in collection[:-1]}
    config = pytester.parseconfig("--tx=2*popen")
    scheduler = EnvironmentScheduling(config, None, lambda: groups)
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    done: set[tuple[str, int]] = set()
    while any((node.gateway.id, index) not in done for node in nodes for index in node.sent):
        for node in nodes:  # each worker finishes what it was sent, and may get more
            for index in list(node.sent):
                if (node.gateway.id, index) not in done:
                    done.add((node.gateway.id, index))
                    scheduler.mark_test_complete(node, index)
    assert not scheduler.has_pending
    ran = {node.gateway.id: [collection[i] for i in node.sent] for node in nodes}
    assert sorted(nodeid for sent in ran.values() for nodeid in sent) == sorted(collection)  # every item once
    for version in ("1", "2", "3"):
        owners = {worker for worker, sent in ran.items() for nodeid in sent if nodeid.endswith(f"[numpy-{version}]")}
        assert len(owners) == 1, (version, ran)


def test_without_the_workers_map_every_item_is_a_unit_of_its_own(pytester):
    from pytest_envmatrix.scheduling import EnvironmentScheduling

    config = pytester.parseconfig("--tx=2*popen")
    scheduler = EnvironmentScheduling(config, None, dict)
    assert scheduler._split_scope("test_x.py::test_a[numpy-1]") != scheduler._split_scope("test_x.py::test_b[numpy-1]")
