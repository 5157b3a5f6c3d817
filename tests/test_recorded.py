"""Test modules made from the last run's record: the parent does without importing them.

A module whose items were all matrix items is recorded by the run that
collected it; the next run with the same command line makes its items from
the record while the module, its conftest.py files, its ini file and the
rootdir's modules it imported are unchanged. These tests check what the
parent imports, and that a record never changes a result: an edit anywhere
collection reads brings the import back, and a change the digests cannot
see (a marker that reads an environment variable) fails the tests with a
message that says so, and the next run imports the module again.

Each test module here appends the pid of every process that imports it to
a log, so "the parent imported it" is this process's pid in the log (the
runs are in-process).
"""

from __future__ import annotations

import json
import os

import pytest

LOGGED = """
import os
with open({log!r}, "a") as _f:
    _f.write(f"{{os.getpid()}}\\n")
"""

TESTS = """
import pytest

@pytest.mark.envmatrix(emx_demo={versions})
def test_version(envmatrix_combination):
    import emx_demo
    assert emx_demo.__version__ == envmatrix_combination["emx_demo"]

@pytest.mark.envmatrix(emx_demo={versions})
@pytest.mark.slow
def test_answer(envmatrix_combination):
    import emx_demo
    assert emx_demo.answer() == int(envmatrix_combination["emx_demo"][0])
"""


@pytest.fixture
def module(fresh_matrix, tmp_path):
    """Writes test_mod.py (logging each import); returns a function that says whether this process imported it since the last call."""
    log = tmp_path / "imports.log"

    def write(body: str = TESTS.format(versions='["1.0", "2.0"]')) -> None:
        fresh_matrix.pytester.makepyfile(test_mod=LOGGED.format(log=str(log)) + body)

    def parent_imported() -> bool:
        pids = log.read_text().split() if log.exists() else []
        log.write_text("")
        return str(os.getpid()) in pids

    write.parent_imported = parent_imported
    return write


def records(runner) -> dict:
    (plan,) = (runner.cache / "plans").glob("*.json")
    return json.loads(plan.read_text())["modules"]


def test_a_warm_run_does_not_import_a_module_whose_tests_are_all_matrix_items(fresh_matrix, module):
    module()
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    assert module.parent_imported()
    assert set(records(fresh_matrix)) == {"test_mod.py"}

    again = fresh_matrix.run("-v")
    again.assert_outcomes(passed=4)
    assert not module.parent_imported()
    again.stdout.fnmatch_lines_random(
        [
            "test_mod.py::test_version[[]emx_demo-1.0[]] PASSED*",
            "test_mod.py::test_version[[]emx_demo-2.0[]] PASSED*",
            "test_mod.py::test_answer[[]emx_demo-1.0[]] PASSED*",
            "test_mod.py::test_answer[[]emx_demo-2.0[]] PASSED*",
        ]
    )


@pytest.mark.parametrize(
    ("args", "selected"),
    [
        (("-k", "answer and emx_demo-2.0"), ["test_answer[emx_demo-2.0]"]),
        (("-k", "test_mod and not version"), ["test_answer[emx_demo-1.0]", "test_answer[emx_demo-2.0]"]),
        (("-m", "not slow"), ["test_version[emx_demo-1.0]", "test_version[emx_demo-2.0]"]),
    ],
)
def test_k_and_m_select_on_the_modules_as_they_are_now(fresh_matrix, module, args, selected):
    """``-k`` and ``-m`` select on keywords and markers, which a record could hold stale: the module is imported."""
    module()
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    assert module.parent_imported()
    fresh_matrix.run("-v", *args).assert_outcomes(passed=len(selected))
    assert module.parent_imported()
    again = fresh_matrix.run("-v", *args)
    assert module.parent_imported()
    again.assert_outcomes(passed=len(selected))
    passed = sorted(line.split("::")[1].split(" ")[0] for line in again.outlines if " PASSED" in line)
    assert passed == sorted(selected)


def test_last_failed_runs_every_test_again_once_the_failure_is_fixed(fresh_matrix, module):
    """``--lf`` collects only what failed: a record made then would lack the module's other tests."""
    failing = TESTS.format(versions='["1.0", "2.0"]').replace('== envmatrix_combination["emx_demo"]', '!= "2.0"')
    module(failing)
    fresh_matrix.run().assert_outcomes(passed=3, failed=1)
    fresh_matrix.run("--lf").assert_outcomes(failed=1)
    fresh_matrix.run("--lf").assert_outcomes(failed=1)
    module()
    fresh_matrix.run("--lf").assert_outcomes(passed=1)
    fresh_matrix.run("--lf").assert_outcomes(passed=4)  # nothing failed last: --lf runs everything


def test_an_edited_module_is_imported_and_runs_as_it_is_now(fresh_matrix, module):
    module()
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    module(TESTS.format(versions='["1.0", "2.0", "3.0"]'))
    result = fresh_matrix.run("-v")
    assert module.parent_imported()
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*test_answer[[]emx_demo-3.0[]] PASSED*"])


@pytest.mark.parametrize("changed", ["helper module", "conftest.py"])
def test_a_changed_file_that_collection_read_brings_the_import_back(fresh_matrix, module, changed):
    """The marker's versions come from another file of the project: the record depends on it too."""
    pytester = fresh_matrix.pytester
    if changed == "helper module":
        pytester.makepyfile(emx_versions='VERSIONS = ["1.0", "2.0"]')
        module("from emx_versions import VERSIONS\n" + TESTS.format(versions="VERSIONS"))
    else:
        pytester.makeconftest('VERSIONS = ["1.0", "2.0"]')
        module("from conftest import VERSIONS\n" + TESTS.format(versions="VERSIONS"))
    pytester.syspathinsert()
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    assert module.parent_imported()
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    assert not module.parent_imported()

    # a different length: Python's bytecode cache (pytest's for conftest.py too) tells a source from its
    # .pyc by size and whole-second mtime, and without bytecode suppressed an edit of the same size in the
    # same second would be read from the old .pyc, by plain pytest too
    moved = 'VERSIONS = ["2.0", "3.0"]  # moved on'
    if changed == "helper module":
        pytester.makepyfile(emx_versions=moved)
    else:
        pytester.makeconftest(moved)
    result = fresh_matrix.run("-v")
    assert module.parent_imported()
    result.assert_outcomes(passed=4)
    assert "emx_demo-1.0" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*test_version[[]emx_demo-3.0[]] PASSED*"])


def test_a_marker_that_changed_out_of_sight_fails_its_tests_and_the_next_run_imports_again(fresh_matrix, module, monkeypatch):
    """A marker read from an environment variable: no file changed, so the record is used; each child,
    which collects the module anyway, sees other markers, and its tests error instead of running."""
    module("import os\n" + TESTS.format(versions='os.environ["EMX_VERSIONS"].split(",")'))
    monkeypatch.setenv("EMX_VERSIONS", "1.0,2.0")
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    assert module.parent_imported()

    monkeypatch.setenv("EMX_VERSIONS", "1.0,2.0,3.0")
    stale = fresh_matrix.run("-v")
    assert not module.parent_imported()
    stale.assert_outcomes(errors=4)
    stale.stdout.fnmatch_lines(
        [
            "*envmatrix: test_mod.py no longer collects as the last run recorded it (other envmatrix markers on "
            "test_mod.py::test_answer, test_mod.py::test_version); this run made its tests from that record, "
            "so it did not run them in emx_demo-*. The record is dropped: run again*",
        ]
    )
    assert records(fresh_matrix) == {}

    again = fresh_matrix.run("-v")
    assert module.parent_imported()
    again.assert_outcomes(passed=6)
    assert set(records(fresh_matrix)) == {"test_mod.py"}


def test_a_module_with_a_test_outside_the_matrix_is_imported_every_time(fresh_matrix, module):
    module(TESTS.format(versions='["1.0"]') + "\ndef test_here():\n    pass\n")
    fresh_matrix.run().assert_outcomes(passed=3)
    result = fresh_matrix.run()
    result.assert_outcomes(passed=3)
    assert module.parent_imported()
    assert records(fresh_matrix) == {}


def test_a_plugin_that_needs_the_test_function_gets_it(fresh_matrix, module):
    """``item.function`` exists only on a real item: asking for it imports the module after all."""
    module()
    names = fresh_matrix.pytester.path / "functions.txt"
    fresh_matrix.pytester.makeconftest(
        f"""
        import os

        def pytest_collection_modifyitems(items):
            with open({str(names)!r}, "a") as f:
                for item in items:
                    f.write(f"{{os.getpid()}} {{item.function.__name__}}\\n")
        """
    )
    fresh_matrix.run().assert_outcomes(passed=4)
    assert module.parent_imported()
    names.write_text("")
    fresh_matrix.run().assert_outcomes(passed=4)
    assert module.parent_imported()
    here = [name for pid, name in (line.split() for line in names.read_text().splitlines()) if pid == str(os.getpid())]
    assert sorted(here) == ["test_answer"] * 2 + ["test_version"] * 2


def test_collect_only_shows_the_real_collection(fresh_matrix, module):
    module()
    fresh_matrix.run().assert_outcomes(passed=4)
    fresh_matrix.run("--collect-only")  # a command line of its own: recorded here, if at all
    result = fresh_matrix.run("--collect-only")
    assert module.parent_imported()
    result.stdout.fnmatch_lines(["*<Module test_mod.py>", "*<Function test_version[[]emx_demo-1.0[]]>"])


def test_classes_and_parametrized_tests_are_made_from_the_record_as_collected(fresh_matrix, module):
    module(
        """
import pytest

pytestmark = pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])

@pytest.mark.parametrize("n", [1, 2])
def test_times(n, envmatrix_combination):
    import emx_demo
    assert emx_demo.answer() * n == int(envmatrix_combination["emx_demo"][0]) * n

class TestDemo:
    pytestmark = pytest.mark.envmatrix(emx_demo=["2.0", "3.0"])

    def test_version(self, envmatrix_combination):
        import emx_demo
        assert emx_demo.__version__ == envmatrix_combination["emx_demo"]
"""
    )
    first = fresh_matrix.run("-v")
    first.assert_outcomes(passed=6)
    assert module.parent_imported()
    again = fresh_matrix.run("-v")
    assert not module.parent_imported()
    again.assert_outcomes(passed=6)
    assert sorted(line.split(" ")[0] for line in again.outlines if " PASSED" in line) == sorted(
        line.split(" ")[0] for line in first.outlines if " PASSED" in line
    )
    again.stdout.fnmatch_lines_random(
        [
            "test_mod.py::test_times[[]emx_demo-1.0-1[]] PASSED*",
            "test_mod.py::TestDemo::test_version[[]emx_demo-3.0[]] PASSED*",
        ]
    )


def test_a_conftest_that_drops_items_leaves_the_record_whole(fresh_matrix, module):
    """The record holds every item collection made; a conftest.py that drops some, in the parent and in
    each child, drops them from the items made from the record too, and the children do not take the
    dropped ones for tests the module lost."""
    module()
    fresh_matrix.pytester.makeconftest(
        """
        def pytest_collection_modifyitems(config, items):
            kept = [item for item in items if "answer" not in item.nodeid]
            config.hook.pytest_deselected(items=[item for item in items if item not in kept])
            items[:] = kept
        """
    )
    fresh_matrix.run("-v").assert_outcomes(passed=2, deselected=2)
    assert module.parent_imported()
    again = fresh_matrix.run("-v")
    assert not module.parent_imported()
    again.assert_outcomes(passed=2, deselected=2)
    assert "no longer collects" not in again.stdout.str()


def test_a_warm_run_shows_the_collection_warnings_the_module_raises(fresh_matrix, module):
    """The parent does not import the module: the warnings of its collection come from the children, once each."""
    module(
        'import warnings\nwarnings.warn("this module is deprecated", DeprecationWarning)\n\n'
        "class TestNotCollected:\n    def __init__(self):\n        pass\n"
        + TESTS.format(versions='["1.0", "2.0"]')
    )
    cold = fresh_matrix.run()
    cold.assert_outcomes(passed=4, warnings=3)  # the unknown "slow" mark, and the two above
    assert module.parent_imported()
    warm = fresh_matrix.run()
    assert not module.parent_imported()
    warm.assert_outcomes(passed=4, warnings=3)
    warm.stdout.fnmatch_lines_random(
        [
            "*test_mod.py:*: DeprecationWarning: this module is deprecated",
            "*test_mod.py:*: PytestCollectionWarning: cannot collect test class 'TestNotCollected'*",
            "*PytestUnknownMarkWarning: Unknown pytest.mark.slow*",
        ]
    )


def test_a_marker_no_digest_covers_selects_as_it_is_now(fresh_matrix, module, monkeypatch):
    """A marker from an environment variable (or a data file): no digest sees it change. ``-m`` does not use
    the record, so it selects as plain pytest would: the test that became slow is left out, and the one that
    no longer is runs, and fails."""
    monkeypatch.setenv("EMX_SLOW", "test_a")
    fresh_matrix.pytester.makeini("[pytest]\nmarkers = slow: slow tests")
    module(
        "import os\n"
        "import pytest\n\n"
        "pytestmark = pytest.mark.envmatrix(emx_demo=['1.0', '2.0'])\n\n"
        "def slow_if_listed(function):\n"
        "    return pytest.mark.slow(function) if function.__name__ == os.environ['EMX_SLOW'] else function\n\n"
        "@slow_if_listed\n"
        "def test_a():\n"
        "    assert False, 'test_a ran'\n\n"
        "@slow_if_listed\n"
        "def test_b():\n"
        "    pass\n"
    )
    fresh_matrix.run("-m", "not slow").assert_outcomes(passed=2, deselected=2)
    fresh_matrix.run("-m", "not slow").assert_outcomes(passed=2, deselected=2)
    monkeypatch.setenv("EMX_SLOW", "test_b")
    result = fresh_matrix.run("-m", "not slow", "-v")
    result.assert_outcomes(failed=2, deselected=2)
    result.stdout.fnmatch_lines_random(["*test_a[[]emx_demo-1.0[]] FAILED*", "*test_a[[]emx_demo-2.0[]] FAILED*"])
