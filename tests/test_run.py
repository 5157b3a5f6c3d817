"""A matrix run as the user sees it: one result per (test, combination), from the right environment."""

import gc
import re

import pytest


def test_plain_run_ignores_the_matrix(pytester, hermetic_installer):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_once(envmatrix_combination):
            assert envmatrix_combination is None
        """
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*::test_once PASSED*"])
    result.assert_outcomes(passed=1)


def test_one_result_per_combination_from_its_own_version(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])
        def test_answer(envmatrix_combination):
            import emx_demo
            print("imported", emx_demo.__version__)
            assert emx_demo.__version__ == envmatrix_combination["emx_demo"]
            assert emx_demo.answer() == 2
        """
    )
    result = matrix.run("-v")
    result.stdout.fnmatch_lines_random(
        [
            "*::test_answer[[]emx_demo-1.0[]] FAILED*",
            "*::test_answer[[]emx_demo-2.0[]] PASSED*",
            "*::test_answer[[]emx_demo-3.0[]] FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(["*assert 1 == 2*", "*imported 1.0*"])
    result.assert_outcomes(passed=1, failed=2)


def test_the_parents_site_packages_are_invisible(matrix):
    matrix.pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.envmatrix(emx_demo=["2.0"])
        def test_isolated():
            import emx_demo
            assert sys.prefix in emx_demo.__file__
            # installed in the parent (it runs this suite), absent from the combination
            with pytest.raises(ModuleNotFoundError):
                import filelock
            with pytest.raises(ModuleNotFoundError):
                import pytest_envmatrix
        """
    )
    result = matrix.run("-v")
    result.assert_outcomes(passed=1)


def test_reports_carry_every_outcome_with_tracebacks_and_captured_output(matrix):
    matrix.pytester.makepyfile(
        """
        import sys
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        @pytest.fixture
        def broken_setup():
            raise RuntimeError("setup broke")

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown broke")

        def test_pass():
            print("to stdout")
            sys.stderr.write("to stderr\\n")

        def test_fail():
            print("printed before failing")
            x = {"a": 1}
            assert x == {"a": 2}

        def test_skip():
            pytest.skip("not today")

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False

        @pytest.mark.xfail(reason="known")
        def test_xpass():
            pass

        def test_setup_error(broken_setup):
            pass

        def test_teardown_error(broken_teardown):
            pass
        """
    )
    result = matrix.run("-rA")
    result.assert_outcomes(passed=2, failed=1, skipped=1, xfailed=1, xpassed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_fail[[]emx_demo-1.0[]] _*",
            '*x = {"a": 1}',
            '>*assert x == {"a": 2}',
            "E*AssertionError: assert {'a': 1} == {'a': 2}*",
            "*Captured stdout call*",
            "printed before failing",
        ]
    )
    result.stdout.fnmatch_lines(["*ERROR at setup of test_setup_error*", "*RuntimeError: setup broke*"])
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_teardown_error*", "*RuntimeError: teardown broke*"])
    result.stdout.fnmatch_lines(["*_ test_pass[[]emx_demo-1.0[]] _*", "*Captured stdout call*", "to stdout", "*Captured stderr call*", "to stderr"])
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: not today"])


def test_fixtures_parametrize_and_conftest_work_inside_the_combination(matrix):
    matrix.pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def from_conftest():
            return "conftest value"

        @pytest.fixture
        def wanted_version(envmatrix_combination):
            return envmatrix_combination["emx_demo"]

        @pytest.fixture(autouse=True)
        def record_combination(request, envmatrix_combination):
            request.node.user_properties.append(("seen", envmatrix_combination["emx_demo"]))
        """
    )
    matrix.pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        @pytest.mark.parametrize("n", [1, 2])
        def test_param(n, from_conftest, tmp_path, monkeypatch, capsys, envmatrix_combination):
            import emx_demo
            monkeypatch.setenv("EMX", "set")
            assert os.environ["EMX"] == "set"
            (tmp_path / "f").write_text(str(n))
            print("hello")
            assert capsys.readouterr().out == "hello\\n"
            assert from_conftest == "conftest value"
            assert emx_demo.__version__ == envmatrix_combination["emx_demo"]

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_through_a_fixture(wanted_version, request):
            import emx_demo
            assert emx_demo.__version__ == wanted_version
            assert request.node.user_properties == [("seen", wanted_version)]
        """
    )
    result = matrix.run("-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_param[[]emx_demo-1.0-1[]] PASSED*",
            "*::test_param[[]emx_demo-1.0-2[]] PASSED*",
            "*::test_param[[]emx_demo-2.0-1[]] PASSED*",
            "*::test_param[[]emx_demo-2.0-2[]] PASSED*",
            "*::test_through_a_fixture[[]emx_demo-1.0[]] PASSED*",
            "*::test_through_a_fixture[[]emx_demo-2.0[]] PASSED*",
        ]
    )


def test_module_class_and_function_markers_merge(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"], deps=["emx-extra"])

        @pytest.mark.envmatrix({"EMX_Demo": ["2.0", "3.0"]})
        class TestClass:
            def test_class_wins(self):
                import emx_demo, emx_extra
                assert emx_demo.answer() in (2, 3)

            @pytest.mark.envmatrix(emx_demo=["1.0"])
            def test_function_wins(self):
                import emx_demo
                assert emx_demo.answer() == 1

        def test_module_only():
            import emx_demo, emx_extra
            assert emx_demo.answer() == 1
        """
    )
    result = matrix.run("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines_random(
        [
            "*::TestClass::test_class_wins[[]EMX_Demo-2.0[]] PASSED*",
            "*::TestClass::test_class_wins[[]EMX_Demo-3.0[]] PASSED*",
            "*::TestClass::test_function_wins[[]emx_demo-1.0[]] PASSED*",
            "*::test_module_only[[]emx_demo-1.0[]] PASSED*",
        ]
    )


def test_ini_deps_reach_every_environment(matrix):
    matrix.pytester.makeini(
        """
        [pytest]
        envmatrix_deps =
            emx-extra
        """
    )
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_extra():
            import emx_extra
            assert emx_extra.VALUE == "extra"
        """
    )
    matrix.run().assert_outcomes(passed=1)


def test_unmarked_tests_still_run_in_the_parent(matrix):
    matrix.pytester.makepyfile(
        """
        import sys
        import pytest

        PARENT_PREFIX = sys.prefix

        def test_plain():
            import filelock  # the parent's environment

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_marked():
            import emx_demo
        """
    )
    matrix.run("-v").assert_outcomes(passed=2)


def test_selection_and_stop_options_apply_to_combination_items(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])
        def test_two():
            import emx_demo
            assert emx_demo.answer() == 2

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        @pytest.mark.slow
        def test_slow():
            pass
        """
    )
    matrix.pytester.makeini("[pytest]\nmarkers = slow: slow tests")
    result = matrix.run("-v", "-k", "emx_demo-2.0")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*3 deselected*"])
    assert "emx_demo-1.0" not in result.stdout.str()

    result = matrix.run("-v", "-m", "slow")
    result.assert_outcomes(passed=2)

    # -x: the first failure any environment meets ends the run; which one that is, and what the other
    # environments had passed by then (replayed too), depends on which child got there first
    result = matrix.run("-x", "-v")
    assert result.parseoutcomes()["failed"] == 1
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    reported = {line.split("::")[1].split(" ")[0]: line.split()[1] for line in result.outlines if "::" in line and line.split()[1:2] in (["PASSED"], ["FAILED"])}
    (failed,) = [name for name, outcome in reported.items() if outcome == "FAILED"]
    assert failed in ("test_two[emx_demo-1.0]", "test_two[emx_demo-3.0]")
    assert {name for name, outcome in reported.items() if outcome == "PASSED"} <= {
        "test_two[emx_demo-2.0]", "test_slow[emx_demo-1.0]", "test_slow[emx_demo-2.0]"
    }


def test_last_failed_reruns_only_the_failed_combinations(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])
        def test_two():
            import emx_demo
            assert emx_demo.answer() == 2
        """
    )
    matrix.run().assert_outcomes(passed=1, failed=2)
    result = matrix.run("--lf", "-v")
    result.assert_outcomes(failed=2)
    assert "emx_demo-2.0" not in result.stdout.str().split("short test summary")[0].split("collected")[1]


def test_junitxml_has_one_testcase_per_combination(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_two():
            import emx_demo
            assert emx_demo.answer() == 2
        """
    )
    matrix.run("--junitxml=out.xml")
    import xml.etree.ElementTree as ET

    cases = {c.get("name"): c for c in ET.parse(matrix.pytester.path / "out.xml").iter("testcase")}
    assert set(cases) == {"test_two[emx_demo-1.0]", "test_two[emx_demo-2.0]"}
    assert cases["test_two[emx_demo-1.0]"].find("failure") is not None
    assert cases["test_two[emx_demo-2.0]"].find("failure") is None
    props = {p.get("name"): p.get("value") for p in cases["test_two[emx_demo-2.0]"].iter("property")}
    assert props.pop("envmatrix.key") in {mark["key"] for mark in matrix.envs().values()}
    assert props == {"envmatrix": "emx_demo-2.0", "envmatrix.emx_demo": "2.0"}


def test_recorded_properties_of_any_type_reach_junitxml_as_plain_pytest_writes_them(matrix):
    matrix.pytester.makepyfile(
        """
        import datetime
        import fractions

        import pytest

        class Ratio(float):
            pass

        @pytest.mark.envmatrix(emx_demo=["2.0"])
        def test_props(record_property):
            record_property("day", datetime.date(2026, 1, 2))
            record_property("share", fractions.Fraction(1, 3))
            record_property("ratio", Ratio(0.5))
            record_property("tags", ("a", 1))
        """
    )
    matrix.run("--junitxml=out.xml").assert_outcomes(passed=1)
    import xml.etree.ElementTree as ET

    (case,) = ET.parse(matrix.pytester.path / "out.xml").iter("testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props.pop("envmatrix.key") in {mark["key"] for mark in matrix.envs().values()}
    assert props == {
        "day": "2026-01-02", "share": "1/3", "ratio": "0.5", "tags": "('a', 1)", "envmatrix": "emx_demo-2.0", "envmatrix.emx_demo": "2.0",
    }


def test_a_matrix_run_in_process_leaves_the_garbage_collector_as_it_found_it(matrix):
    """The parent exempts collected objects from garbage collection while it only replays; not beyond."""
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_one():
            pass
        """
    )
    frozen_before = gc.get_freeze_count()
    matrix.run().assert_outcomes(passed=2)
    assert gc.get_freeze_count() == frozen_before


@pytest.mark.parametrize("unmarked_test", [False, True], ids=["matrix-only", "a-test-in-the-parent"])
def test_the_parent_skips_the_exit_collections_only_when_no_test_ran_in_it(matrix, unmarked_test):
    """A pytest that only replayed exempts its objects from Python's collections at exit; one that ran a test does not."""
    report = matrix.pytester.path / "frozen-at-exit.txt"
    matrix.pytester.makeconftest(
        f"""
        import atexit, gc

        # registered before the plugin's exit hook, so it runs after it
        atexit.register(lambda: open({str(report)!r}, "w").write(str(gc.get_freeze_count())))
        """
    )
    source = 'import pytest\n\n@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])\ndef test_one():\n    pass\n'
    matrix.pytester.makepyfile(source + ("\ndef test_here():\n    pass\n" if unmarked_test else ""))
    result = matrix.run(subprocess=True)
    result.assert_outcomes(passed=3 if unmarked_test else 2)
    frozen = int(report.read_text())
    assert (frozen == 0) if unmarked_test else (frozen > 0)


def test_bad_marker_is_a_collection_error_naming_test_and_value(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "not-a-version!"])
        def test_bad():
            pass
        """
    )
    result = matrix.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_bad_marker_is_a_collection_error_naming_test_and_value.py::test_bad: envmatrix axis 'emx_demo': 'not-a-version!' is neither a version*"]
    )
    # without --envmatrix too: a typo shows up in the fast local loop
    matrix.pytester.runpytest().assert_outcomes(errors=1)


def test_a_subclass_marker_is_closer_than_its_base_class_marker(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        class TestBase:
            pass

        @pytest.mark.envmatrix(emx_demo=["3.0"])
        class TestChild(TestBase):
            def test_version(self):
                import emx_demo
                assert emx_demo.answer() == 3
        """
    )
    result = matrix.run("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*::TestChild::test_version[[]emx_demo-3.0[]] PASSED*"])


def test_warnings_raised_inside_the_combination_reach_the_summary(matrix):
    matrix.pytester.makepyfile(
        """
        import warnings
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_warns():
            warnings.warn("careful inside the environment", DeprecationWarning)
        """
    )
    result = matrix.run()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "*test_warns[[]emx_demo-1.0[]]*", "*DeprecationWarning: careful inside the environment"])


def test_skip_and_error_reports_of_the_plugin_carry_the_junit_property(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["9.9"], python=["3.99", "3.11"])
        def test_x():
            pass
        """
    )
    fresh_matrix.run("--junitxml=out.xml").assert_outcomes(skipped=1, errors=1)
    import xml.etree.ElementTree as ET

    cases = {c.get("name"): c for c in ET.parse(fresh_matrix.pytester.path / "out.xml").iter("testcase")}
    props = {name: {p.get("name"): p.get("value") for p in case.iter("property")} for name, case in cases.items()}
    # no interpreter: no environment, no key; a failed build: its key, and no version, since nothing was installed
    assert props["test_x[py3.99-emx_demo-9.9]"] == {"envmatrix": "py3.99-emx_demo-9.9"}
    assert re.fullmatch("[0-9a-f]{64}", props["test_x[py3.11-emx_demo-9.9]"].pop("envmatrix.key"))
    assert props["test_x[py3.11-emx_demo-9.9]"] == {"envmatrix": "py3.11-emx_demo-9.9"}
    assert cases["test_x[py3.99-emx_demo-9.9]"].find("skipped") is not None
    assert cases["test_x[py3.11-emx_demo-9.9]"].find("error") is not None


def test_jobs_bound_the_children_and_the_next_environment_builds_meanwhile(fresh_matrix, monkeypatch, tmp_path):
    """With --envmatrix-jobs=1 one child runs at a time, and the next environment is built while it runs."""
    log = tmp_path / "children.log"
    monkeypatch.setenv("EMX_LOG", str(log))
    monkeypatch.setenv("EMX_ENVS", str(fresh_matrix.cache / "envs"))
    fresh_matrix.pytester.makepyfile(
        """
        import os, time
        from pathlib import Path
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])
        def test_slot(envmatrix_combination):
            start = time.time()
            if envmatrix_combination["emx_demo"] == "1.0":
                deadline = start + 60
                while len(list(Path(os.environ["EMX_ENVS"]).glob("*/envmatrix.json"))) < 2:
                    assert time.time() < deadline, "the next environment was not built while this child ran"
                    time.sleep(0.05)
            time.sleep(0.2)
            with open(os.environ["EMX_LOG"], "a") as log:
                log.write(f"{start} {time.time()}\\n")
        """
    )
    fresh_matrix.run("--envmatrix-jobs=1").assert_outcomes(passed=3)
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert len(spans) == 3
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans


def test_exclude_rules_that_leave_no_combination_fail_collection_instead_of_skipping(matrix):
    matrix.pytester.makepyfile(
        test_all_excluded="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"], exclude=[{"emx_demo": "1.0"}, {"emx_demo": "2.0"}])
        def test_nothing_left():
            pass
        """
    )
    for result in (matrix.run(), matrix.pytester.runpytest()):
        result.assert_outcomes(errors=1)
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines(
            ["*test_all_excluded.py::test_nothing_left: envmatrix exclude rules leave no combination (they exclude all 2)*"]
        )
        assert "NOTSET" not in result.stdout.str()


def test_a_python_value_that_is_not_an_interpreter_request_fails_collection(matrix):
    matrix.pytester.makepyfile(
        test_bad_python="""
        import pytest

        @pytest.mark.envmatrix(python=["3.11", "--index-url=http://x"], emx_demo=["1.0"])
        def test_py():
            pass
        """
    )
    for result in (matrix.run(), matrix.pytester.runpytest()):
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*test_bad_python.py::test_py: envmatrix python: '--index-url=http://x' is not an interpreter request*"]
        )


MISSING_PYTHON = """
import pytest

@pytest.mark.envmatrix(python=["3.99"], emx_demo=["1.0"])
def test_unreleased():
    pass
"""


def test_a_missing_interpreter_is_a_skip_by_default_and_an_error_when_required(fresh_matrix):
    fresh_matrix.pytester.makepyfile(test_missing=MISSING_PYTHON)
    result = fresh_matrix.run("-rs")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *envmatrix: python 3.99 was not found on this machine"])

    result = fresh_matrix.run("--envmatrix-require-python")
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "envmatrix: installer *, every python required",
            "*envmatrix: could not build py3.99 emx-demo==1.0: python 3.99 was not found on this machine, and --envmatrix-require-python (envmatrix_require_python) requires it*",
        ]
    )

    fresh_matrix.pytester.makeini("[pytest]\nenvmatrix_require_python = true\n")
    result = fresh_matrix.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_unreleased[[]py3.99-emx_demo-1.0[]]*", "envmatrix: could not build py3.99 emx-demo==1.0: python 3.99 was not found on this machine, *"])


def test_deps_that_conflict_with_an_axis_fail_collection_before_anything_is_built(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        test_conflict="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"], deps=["emx-demo<2"])
        def test_conflict():
            pass
        """
    )
    result = fresh_matrix.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_conflict.py::test_conflict: envmatrix deps: 'emx-demo<2' excludes emx-demo 2.0 (combination 'emx_demo-2.0')*"]
    )
    assert fresh_matrix.envs() == {}


def test_a_python_value_that_cannot_run_the_parents_pytest_fails_collection(matrix):
    matrix.pytester.makepyfile(
        test_too_old="""
        import pytest

        @pytest.mark.envmatrix(python=["3.6"], emx_demo=["1.0"])
        def test_old():
            pass

        @pytest.mark.envmatrix(python=["3.6"], emx_demo=["1.0"], deps=["pytest<7"])
        def test_old_with_its_own_pytest():
            pass
        """
    )
    for result in (matrix.run("--envmatrix-list"), matrix.pytester.runpytest()):
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [f"*test_too_old.py::test_old: envmatrix python: '3.6' cannot run pytest {pytest.__version__} (Requires-Python *"]
        )
        assert "test_old_with_its_own_pytest" not in result.stdout.str()


def test_strict_project_settings_reach_the_child_without_breaking_it(matrix):
    matrix.pytester.makeini(
        """
        [pytest]
        filterwarnings = error::pytest.PytestConfigWarning
        envmatrix_deps = emx-extra
        envmatrix_jobs = 1
        """
    )
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_one():
            import emx_extra
        """
    )
    result = matrix.run("-v", "--strict-config")
    result.assert_outcomes(passed=1)
