"""unittest-style suites: a marked ``unittest.TestCase`` runs each method once per combination, in its environment.

pytest does not parametrize unittest methods (``pytest_generate_tests``
never sees them), so the plugin expands them itself; these tests check that
the user sees the same as for test functions: one item per method and
combination, selectable, listed, run in the child, with every unittest
outcome replayed.
"""

import importlib.util
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from filelock import FileLock


def test_the_parent_has_no_demo_package():
    """What the tests below rely on: only an environment can import emx_demo."""
    assert importlib.util.find_spec("emx_demo") is None


def test_a_marked_testcase_runs_each_method_in_each_combination(matrix):
    matrix.pytester.makepyfile(
        """
        import sys
        import unittest
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        class TestAnswer(unittest.TestCase):
            def test_answer(self):
                import emx_demo
                self.assertIn(sys.prefix, emx_demo.__file__)
                self.assertEqual(emx_demo.answer(), 1)

            def test_version(self):
                import emx_demo
                self.assertTrue(emx_demo.__version__.startswith(str(emx_demo.answer())))
        """
    )
    result = matrix.run("-v")
    result.stdout.fnmatch_lines_random(
        [
            "*::TestAnswer::test_answer[[]emx_demo-1.0[]] PASSED*",
            "*::TestAnswer::test_answer[[]emx_demo-2.0[]] FAILED*",
            "*::TestAnswer::test_version[[]emx_demo-1.0[]] PASSED*",
            "*::TestAnswer::test_version[[]emx_demo-2.0[]] PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(["*_ TestAnswer.test_answer[[]emx_demo-2.0[]] _*", "*AssertionError: 2 != 1*"])
    result.assert_outcomes(passed=3, failed=1)


def test_a_module_pytestmark_over_testcases_expands_them_and_selection_works(matrix):
    matrix.pytester.makepyfile(
        test_module_mark="""
        import unittest
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])

        class TestOne(unittest.TestCase):
            def test_two(self):
                import emx_demo
                assert emx_demo.answer() == 2

        class TestPlain:
            def test_function(self):
                import emx_demo
                assert emx_demo.answer() == 2
        """
    )
    result = matrix.run("-v", "-k", "emx_demo-2.0")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines_random(
        ["*::TestOne::test_two[[]emx_demo-2.0[]] PASSED*", "*::TestPlain::test_function[[]emx_demo-2.0[]] PASSED*"]
    )
    result.stdout.fnmatch_lines(["*4 deselected*"])

    result = matrix.run("--junitxml=out.xml")
    result.assert_outcomes(passed=2, failed=4)
    cases = {(c.get("classname"), c.get("name")) for c in ET.parse(matrix.pytester.path / "out.xml").iter("testcase")}
    assert ("test_module_mark.TestOne", "test_two[emx_demo-1.0]") in cases
    assert len(cases) == 6

    result = matrix.run("--lf", "-v")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines_random(["*::TestOne::test_two[[]emx_demo-1.0[]] FAILED*", "*::TestOne::test_two[[]emx_demo-3.0[]] FAILED*"])


def test_envmatrix_list_shows_the_testcase_combinations(matrix):
    matrix.pytester.makepyfile(
        test_listed="""
        import unittest
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        class TestListed(unittest.TestCase):
            def test_it(self):
                pass
        """
    )
    result = matrix.pytester.runpytest(*matrix.options(), "--envmatrix-list")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "envmatrix: tests and their combinations",
            "  test_listed.py::TestListed::test_it[[]emx_demo-1.0[]]",
            "  test_listed.py::TestListed::test_it[[]emx_demo-2.0[]]",
            "envmatrix: environments",
        ]
    )


UNITTEST_OUTCOMES = """
    import unittest
    import pytest

    pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

    class TestOutcomes(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            import emx_demo
            cls.version = emx_demo.__version__

        def setUp(self):
            import emx_demo
            self.answer = emx_demo.answer()

        def test_pass(self):
            self.assertEqual(self.version, "1.0")

        def test_fail(self):
            self.assertEqual(self.answer, 2, "answer from the environment")

        def test_error(self):
            raise RuntimeError("broke inside")

        @unittest.skip("not today")
        def test_skip_decorator(self):
            pass

        def test_skip_test(self):
            self.skipTest("skipped inside")

        @unittest.expectedFailure
        def test_expected_failure(self):
            self.assertEqual(self.answer, 2)

        @unittest.expectedFailure
        def test_unexpected_success(self):
            pass

        def test_subtests(self):
            for i in range(3):
                with self.subTest(i=i):
                    self.assertLess(i, 2)

    @unittest.skip("whole class")
    class TestSkippedClass(unittest.TestCase):
        def test_never(self):
            raise AssertionError("ran")
"""


def test_unittest_outcomes_are_replayed_as_plain_pytest_reports_them(matrix, monkeypatch):
    """Each unittest outcome (skips, expectedFailure, subTest failures) reads as in a plain run that has emx_demo 1.0."""
    fake = matrix.pytester.mkdir("fake_site")
    (fake / "emx_demo.py").write_text("__version__ = '1.0'\n\ndef answer():\n    return 1\n")
    matrix.pytester.makepyfile(test_outcomes=UNITTEST_OUTCOMES)
    with monkeypatch.context() as patched:
        patched.syspath_prepend(fake)
        plain = matrix.pytester.runpytest("-rA")
    in_matrix = matrix.run("-rA")
    expected = plain.parseoutcomes()
    assert expected["failed"] >= 3 and expected["skipped"] == 3 and expected["xfailed"] == 1, expected
    assert in_matrix.parseoutcomes() == expected
    in_matrix.stdout.fnmatch_lines(["*_ TestOutcomes.test_fail[[]emx_demo-1.0[]] _*", "*AssertionError: 1 != 2 : answer from the environment*"])
    in_matrix.stdout.fnmatch_lines(["*RuntimeError: broke inside*"])
    in_matrix.stdout.fnmatch_lines(["*_ TestOutcomes.test_subtests[[]emx_demo-1.0[]]*_*", "*AssertionError: 2 not less than 2*"])
    if "SUBFAILED" in plain.stdout.str():  # pytest 9 reports subtests itself
        # their context crosses as JSON, as under xdist: (i='2') where a plain run says (i=2)
        in_matrix.stdout.fnmatch_lines(["SUBFAILED(i=*2*) test_outcomes.py::TestOutcomes::test_subtests[[]emx_demo-1.0[]]*"])
    in_matrix.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] test_outcomes.py:*: not today",
            "SKIPPED [[]1[]] test_outcomes.py:*: skipped inside",
            "SKIPPED [[]1[]] test_outcomes.py:*: whole class",
            "XFAIL test_outcomes.py::TestOutcomes::test_expected_failure[[]emx_demo-1.0[]]*",
            "FAILED test_outcomes.py::TestOutcomes::test_unexpected_success[[]emx_demo-1.0[]]*",
        ]
    )
    assert "AssertionError: ran" not in in_matrix.stdout.str()


def test_a_bad_marker_on_a_testcase_is_a_collection_error_in_both_modes(matrix):
    matrix.pytester.makepyfile(
        test_bad_case="""
        import unittest
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "banana!"])
        class TestBad(unittest.TestCase):
            def test_it(self):
                pass
        """
    )
    for result in (matrix.run(), matrix.pytester.runpytest()):
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*test_bad_case.py::TestBad::test_it: envmatrix axis 'emx_demo': 'banana!' is neither a version*"])


def test_a_marker_on_an_item_that_cannot_be_expanded_is_an_error_naming_it(matrix):
    """A doctest (or any plugin's item) is not a test function: it errors instead of running in the parent."""
    matrix.pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name.endswith("twice"):
                    item.add_marker(pytest.mark.envmatrix(emx_demo=["1.0"]))
        """
    )
    matrix.pytester.makepyfile(
        test_doc='''
        def twice(x):
            """
            >>> import emx_demo
            >>> twice(2)
            4
            """
            return 2 * x
        '''
    )
    result = matrix.run("--doctest-modules", "-rA")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["envmatrix: test_doc.py::test_doc.twice is a DoctestItem, not a test function or unittest method*it was not run*"]
    )


def test_a_plugin_item_collected_with_the_marker_is_a_collection_error(matrix):
    matrix.pytester.makeconftest(
        """
        import pytest

        class SpecItem(pytest.Item):
            def runtest(self):
                import emx_demo

        class SpecFile(pytest.File):
            def collect(self):
                item = SpecItem.from_parent(self, name="spec")
                item.add_marker(pytest.mark.envmatrix(emx_demo=["1.0"]))
                yield item

        def pytest_collect_file(file_path, parent):
            if file_path.suffix == ".spec":
                return SpecFile.from_parent(parent, path=file_path)
        """
    )
    (matrix.pytester.path / "check.spec").write_text("anything\n")
    for result in (matrix.run(), matrix.pytester.runpytest()):
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*check.spec::spec: envmatrix: this is a SpecItem, not a test function or unittest method*"])


ANSWER_CASE = """
import unittest
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
class TestAnswer(unittest.TestCase):
    def test_answer(self):
        import emx_demo
        self.assertEqual(emx_demo.answer(), 1)

    def test_other(self):
        pass
"""


def test_a_repeated_run_starts_the_testcase_children_early_with_the_same_results(fresh_matrix):
    fresh_matrix.pytester.makepyfile(test_answer_case=ANSWER_CASE)
    fresh_matrix.run("-v").assert_outcomes(passed=3, failed=1)
    second = fresh_matrix.run("-v")
    second.assert_outcomes(passed=3, failed=1)
    second.stdout.fnmatch_lines(["*2 reused (2 started during collection)*"])
    second.stdout.fnmatch_lines_random(
        ["*::TestAnswer::test_answer[[]emx_demo-1.0[]] PASSED*", "*::TestAnswer::test_answer[[]emx_demo-2.0[]] FAILED*"]
    )


def test_xdist_runs_each_testcase_combination_once(matrix):
    pytest.importorskip("xdist")
    matrix.pytester.makepyfile(test_answer_case=ANSWER_CASE)
    result = matrix.run("-n", "2", "-v", subprocess=True)
    result.assert_outcomes(passed=3, failed=1)
    assert result.stdout.str().count("PASSED") == 3
    result.stdout.fnmatch_lines(["*FAILED *TestAnswer::test_answer[[]emx_demo-2.0[]]*"])


@pytest.fixture(scope="session")
def pytest8_wheels(request) -> Path:
    """A pytest 8 wheel and its dependencies for this interpreter, downloaded once into this repository's pytest cache."""
    cache = getattr(request.config, "cache", None)
    dest = Path(cache.mkdir("envmatrix-pytest8-wheels")) if cache else Path(tempfile.mkdtemp(prefix="envmatrix-pytest8-"))
    with FileLock(str(dest) + ".lock"):
        if not list(dest.glob("pytest-8.*.whl")):
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                 "--only-binary=:all:", "--dest", str(dest), "pytest>=8.4,<9"],
                check=True,
                timeout=600,
            )
    return dest


def test_a_testcase_runs_in_a_child_whose_pytest_is_8(matrix, pytest8_wheels):
    """pytest 8 and 9 instantiate a TestCase differently; the child runs the plain method with either."""
    matrix.wheel_dirs.append(pytest8_wheels)
    matrix.pytester.makepyfile(
        test_old_pytest="""
        import unittest
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"], deps=["pytest>=8,<9"])
        class TestOld(unittest.TestCase):
            def test_answer(self):
                import emx_demo
                self.assertTrue(pytest.__version__.startswith("8."), pytest.__version__)
                self.assertEqual(emx_demo.answer(), 1)

            @unittest.expectedFailure
            def test_expected(self):
                self.fail("expected")

            def test_skip(self):
                self.skipTest("inside pytest 8")
        """
    )
    result = matrix.run("-v", "-rs")
    result.assert_outcomes(passed=1, failed=1, xfailed=2, skipped=2)
    result.stdout.fnmatch_lines_random(
        [
            "*::TestOld::test_answer[[]emx_demo-1.0[]] PASSED*",
            "*::TestOld::test_answer[[]emx_demo-2.0[]] FAILED*",
            "SKIPPED [[]2[]] test_old_pytest.py:*: inside pytest 8",
        ]
    )
