"""A suite-wide matrix: every test of an unmarked suite in every combination, collected inside each environment.

The parent running these tests does not have emx_demo: test modules that
import it at the top could not even be imported here.
"""

import json
import xml.etree.ElementTree as ET

import pytest


STATS = """
        import emx_demo
        import pytest

        def test_version_is_the_combinations(envmatrix_combination):
            assert emx_demo.__version__ == envmatrix_combination["emx_demo"]

        def test_answer_is_two():
            assert emx_demo.answer() == 2

        @pytest.mark.parametrize("n", range(emx_demo.answer()))
        def test_one_per_major(n):
            pass
        """


@pytest.fixture
def suite(matrix):
    matrix.pytester.makepyfile(test_stats=STATS)
    return matrix


def test_every_test_runs_in_every_combination_and_the_parent_imports_none(suite):
    result = suite.run("-v", "--envmatrix-axis=emx_demo=1.0,2.0")
    result.stdout.fnmatch_lines_random(
        [
            "*test_stats.py::test_version_is_the_combinations[[]emx_demo-1.0[]] PASSED*",
            "*test_stats.py::test_version_is_the_combinations[[]emx_demo-2.0[]] PASSED*",
            "*test_stats.py::test_answer_is_two[[]emx_demo-1.0[]] FAILED*",
            "*test_stats.py::test_answer_is_two[[]emx_demo-2.0[]] PASSED*",
            # collected with each combination's own version: one item for 1.0, two for 2.0
            "*test_stats.py::test_one_per_major[[]emx_demo-1.0-0[]] PASSED*",
            "*test_stats.py::test_one_per_major[[]emx_demo-2.0-0[]] PASSED*",
            "*test_stats.py::test_one_per_major[[]emx_demo-2.0-1[]] PASSED*",
        ]
    )
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["*assert 1 == 2*"])
    with pytest.raises(ImportError):
        import emx_demo  # noqa: F401  (the claim above: the parent lacks it)


def test_k_selects_among_the_childrens_items(suite):
    result = suite.run("-v", "--envmatrix-axis=emx_demo=1.0,2.0", "-k", "answer and 2.0")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*collected 7 items / 6 deselected / 1 selected*"])


def test_last_failed_reruns_only_the_failure(suite):
    suite.run("--envmatrix-axis=emx_demo=1.0,2.0", "-p", "cacheprovider").assert_outcomes(passed=6, failed=1)
    result = suite.run("-v", "--envmatrix-axis=emx_demo=1.0,2.0", "--lf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_answer_is_two[[]emx_demo-1.0[]] FAILED*"])


def test_axes_from_the_ini_file(suite):
    suite.pytester.makeini(
        """
        [pytest]
        envmatrix_axes =
            emx_demo=1.0,3.0
        """
    )
    result = suite.run("-v")
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines_random(["*test_answer_is_two[[]emx_demo-3.0[]] FAILED*", "*test_one_per_major[[]emx_demo-3.0-2[]] PASSED*"])


def test_a_module_level_skip_and_an_import_error_are_the_combinations_own(matrix):
    matrix.pytester.makepyfile(
        test_new_api="""
        import pytest

        emx_demo = pytest.importorskip("emx_demo", minversion="2.0")

        def test_new():
            assert emx_demo.answer() >= 2
        """,
        test_broken_on_3="""
        import emx_demo

        if emx_demo.answer() == 3:
            raise ImportError("this module does not work with emx-demo 3")

        def test_fine():
            pass
        """,
    )
    result = matrix.run("-v", "-rs", "--envmatrix-axis=emx_demo=1.0,2.0,3.0")
    result.stdout.fnmatch_lines_random(
        [
            "*test_new_api.py::test_new[[]emx_demo-2.0[]] PASSED*",
            "*test_new_api.py::test_new[[]emx_demo-3.0[]] PASSED*",
            "*test_broken_on_3.py::test_fine[[]emx_demo-1.0[]] PASSED*",
            "*test_broken_on_3.py::test_fine[[]emx_demo-2.0[]] PASSED*",
            "*test_broken_on_3.py[[]emx_demo-3.0[]] ERROR*",
            "SKIPPED [[]1[]] test_new_api.py:*emx_demo*2.0*(in emx_demo-1.0)",
        ]
    )
    result.stdout.fnmatch_lines(["*could not collect test_broken_on_3.py in emx_demo-3.0*", "*this module does not work with emx-demo 3*"])
    result.assert_outcomes(passed=4, skipped=1, errors=1)


def test_a_combination_that_cannot_be_built_errors_once_and_the_rest_runs(suite):
    result = suite.run("-v", "--envmatrix-axis=emx_demo=2.0,9.9")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*envmatrix[[]emx_demo-9.9[]] ERROR*"])
    result.stdout.fnmatch_lines(["*could not build emx-demo==9.9*"])


def test_a_marker_narrows_the_suite_wide_matrix_for_its_test(matrix):
    matrix.pytester.makepyfile(
        test_narrow="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["2.0"])
        def test_only_on_two():
            import emx_demo
            assert emx_demo.answer() == 2

        def test_everywhere():
            pass

        @pytest.mark.envmatrix(emx_demo=["1.5"])
        def test_outside_the_suite():
            pass
        """
    )
    result = matrix.run("-v", "--envmatrix-axis=emx_demo=1.0,2.0")
    result.stdout.fnmatch_lines_random(
        [
            "*::test_only_on_two[[]emx_demo-2.0[]] PASSED*",
            "*::test_everywhere[[]emx_demo-1.0[]] PASSED*",
            "*::test_everywhere[[]emx_demo-2.0[]] PASSED*",
            "*::test_outside_the_suite[[]emx_demo-1.0[]] ERROR*",
        ]
    )
    assert "test_only_on_two[emx_demo-1.0]" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*emx_demo='1.5' is not among the suite-wide matrix's values (1.0, 2.0)*"])
    result.assert_outcomes(passed=3, errors=2)


def test_unittest_classes_and_markers_registered_only_in_the_child(matrix):
    matrix.pytester.makeconftest(
        """
        def pytest_configure(config):
            config.addinivalue_line("markers", "slow: a slow test")
        """
    )
    matrix.pytester.makepyfile(
        test_case="""
        import unittest
        import pytest
        import emx_demo

        class TestAnswer(unittest.TestCase):
            def test_is_one(self):
                self.assertEqual(emx_demo.answer(), 1)

        @pytest.mark.slow
        def test_slow():
            pass
        """
    )
    result = matrix.run("-v", "--envmatrix-axis=emx_demo=1.0,2.0", "-W", "error::pytest.PytestUnknownMarkWarning")
    result.stdout.fnmatch_lines_random(
        [
            "*test_case.py::TestAnswer::test_is_one[[]emx_demo-1.0[]] PASSED*",
            "*test_case.py::TestAnswer::test_is_one[[]emx_demo-2.0[]] FAILED*",
        ]
    )
    result.assert_outcomes(passed=3, failed=1)
    selected = matrix.run("-v", "--envmatrix-axis=emx_demo=1.0,2.0", "-m", "slow")
    selected.assert_outcomes(passed=2)


def test_the_reports_name_the_version_installed_and_the_environment_of_each_combination(matrix):
    """As with markers: a range on the axis, and the JUnit properties and the JSON report say what it installed."""
    matrix.pytester.makepyfile(
        test_plain="""
        import emx_demo

        def test_answer():
            assert emx_demo.answer() in (1, 2)
        """
    )
    result = matrix.run("--envmatrix-axis=emx_demo=>=2,<3,1.0", "--junitxml=out.xml", "--envmatrix-report=report.json")
    result.assert_outcomes(passed=2)
    cases = ET.parse(matrix.pytester.path / "out.xml").iter("testcase")
    props = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases}
    assert {name: case["envmatrix.emx_demo"] for name, case in props.items()} == {
        "test_answer[emx_demo->=2,<3]": "2.0",
        "test_answer[emx_demo-1.0]": "1.0",
    }
    marks = matrix.envs()
    assert all(marks[case["envmatrix.key"][:16]]["key"] == case["envmatrix.key"] for case in props.values())
    report = json.loads((matrix.pytester.path / "report.json").read_text())
    environments = {env["key"]: env for env in report["environments"]}
    for item in report["items"]:
        env = environments[item["environment"]]
        assert env["combinations"] == [item["combination"]]
        assert env["installed"]["emx-demo"] == props[item["nodeid"].split("::")[1]]["envmatrix.emx_demo"]


def test_the_childrens_collection_warnings_are_shown_once_as_plain_pytest_shows_them(matrix):
    """The parent collects no module of a suite-wide matrix; what the children's collections raised is not lost."""
    matrix.pytester.makepyfile(
        test_warns="""
        import warnings
        import emx_demo

        warnings.warn("emx_demo's old api", DeprecationWarning)
        if emx_demo.__version__ == "2.0":
            warnings.warn("raised with emx_demo 2.0 only", UserWarning)

        class TestNotCollected:
            def __init__(self):
                pass

        def test_plain():
            pass
        """
    )
    result = matrix.run("--envmatrix-axis=emx_demo=1.0,2.0")
    result.assert_outcomes(passed=2, warnings=3)
    result.stdout.fnmatch_lines_random(
        [
            "*test_warns.py:4: DeprecationWarning: emx_demo's old api",
            "*test_warns.py:6: UserWarning: raised with emx_demo 2.0 only",
            "*test_warns.py:8: PytestCollectionWarning: cannot collect test class 'TestNotCollected'*",
        ]
    )


def test_x_junitxml_and_collect_only(suite):
    junit = suite.pytester.path / "junit.xml"
    result = suite.run("--envmatrix-axis=emx_demo=1.0,2.0", "-x", f"--junitxml={junit}", "-p", "no:randomly")
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed", 0) < 6, outcomes
    xml = junit.read_text()
    assert 'name="test_answer_is_two[emx_demo-1.0]"' in xml and "<failure" in xml
    listed = suite.run("--envmatrix-axis=emx_demo=1.0,2.0", "--collect-only", "-q")
    listed.stdout.fnmatch_lines(["test_stats.py::test_one_per_major[[]emx_demo-2.0-1[]]", "*7 tests collected*"])


def test_bad_axes_are_usage_errors(matrix):
    result = matrix.run("--envmatrix-axis=emx_demo")
    result.stderr.fnmatch_lines(["*--envmatrix-axis: 'emx_demo' is not an axis: write name=version,version*"])
    result = matrix.run("--envmatrix-axis=emx_demo=banana")
    result.stderr.fnmatch_lines(["*emx_demo*'banana' is neither a version*"])
    result = matrix.run("--envmatrix-axis=emx_demo=1.0", "--envmatrix-axis=emx-demo=2.0")
    result.stderr.fnmatch_lines(["*--envmatrix-axis: axis 'emx-demo' is given twice*"])


def test_the_command_line_axis_replaces_the_ini_files(suite):
    suite.pytester.makeini(
        """
        [pytest]
        envmatrix_axes = emx_demo=1.0,3.0
        """
    )
    result = suite.run("-v", "--envmatrix-axis=emx_demo=2.0")
    result.assert_outcomes(passed=4)


def test_list_shows_the_suites_environments_and_starts_nothing(fresh_matrix):
    fresh_matrix.pytester.makepyfile(test_stats=STATS)
    fresh_matrix.run("--envmatrix-axis=emx_demo=1.0").assert_outcomes(passed=2, failed=1)
    result = fresh_matrix.run("--envmatrix-list", "--envmatrix-axis=emx_demo=1.0,2.0")
    result.stdout.fnmatch_lines(
        [
            "envmatrix: suite-wide matrix: every test, collected in each environment",
            "envmatrix: environments",
            "*cached*emx-demo==1.0*(emx_demo-1.0: every test)",
            "*not built*emx-demo==2.0*(emx_demo-2.0: every test)",
        ]
    )
    assert len(list((fresh_matrix.cache / "envs").glob("*/envmatrix.json"))) == 1, "listing built an environment"


def test_with_markers_a_module_the_parent_cannot_import_says_why_and_points_to_the_suite_wide_form(matrix):
    matrix.pytester.makepyfile(
        test_top_import="""
        import emx_demo
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_one():
            pass
        """,
        test_skipping="""
        import pytest

        emx_demo = pytest.importorskip("emx_demo")

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_two():
            pass
        """,
    )
    result = matrix.run("--continue-on-collection-errors")
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "*envmatrix: test_top_import.py could not be imported in this process for want of 'emx_demo'*--envmatrix-axis emx_demo=*",
            "*envmatrix: test_skipping.py could not be imported in this process for want of 'emx_demo'*",
        ]
    )


def test_a_pytestmark_in_a_conftest_is_named_as_ignored(matrix):
    matrix.pytester.makeconftest(
        """
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        """
    )
    matrix.pytester.makepyfile(
        """
        def test_plain():
            pass
        """
    )
    result = matrix.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*conftest.py sets pytestmark = envmatrix(...), which pytest ignores in a conftest.py*envmatrix_axes*"])
