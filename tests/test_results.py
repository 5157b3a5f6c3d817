"""Every result a child sends reaches the parent as pytest would show it, and nothing passes that did not.

Each test injects, for real, a way a child's results can differ from one
report per phase: a rerun plugin, subtests, a test that forks, a child that
exits with a failing status after all its tests passed, a plugin that renames
or invents reports.
"""

import sys

import pytest


@pytest.fixture
def with_plugins(matrix, plugin_wheels):
    matrix.wheel_dirs.append(plugin_wheels)
    return matrix


def plain_outcomes(pytester, *args):
    """What plain pytest, in this process's environment, counts for the same files."""
    return pytester.runpytest("-p", "no:envmatrix", *args).parseoutcomes()


def test_every_rerun_and_the_final_failure_are_replayed(with_plugins):
    with_plugins.pytester.makeini(
        """
        [pytest]
        envmatrix_deps = pytest-rerunfailures
        reruns = 2
        filterwarnings = ignore:Unknown config option
        """
    )
    with_plugins.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_always_fails():
            import emx_demo
            assert emx_demo.answer() == 0
        """
    )
    result = with_plugins.run("-v", "-p", "no:cacheprovider")
    assert result.ret == 1
    assert result.parseoutcomes() == {"failed": 2, "rerun": 4}
    result.stdout.fnmatch_lines_random(
        ["*test_always_fails[[]emx_demo-1.0[]] FAILED*", "*test_always_fails[[]emx_demo-2.0[]] FAILED*"]
    )


def test_a_flaky_test_that_passes_on_rerun_is_one_pass_and_its_reruns(with_plugins, tmp_path):
    with_plugins.pytester.makeini(
        """
        [pytest]
        envmatrix_deps = pytest-rerunfailures
        filterwarnings = ignore:Unknown config option
        """
    )
    counter = tmp_path / "attempts"
    with_plugins.pytester.makepyfile(
        f"""
        import pathlib
        import pytest

        @pytest.mark.flaky(reruns=3)
        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_flaky():
            counter = pathlib.Path({str(counter)!r})
            attempts = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(attempts))
            assert attempts == 3

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_after():
            pass
        """
    )
    result = with_plugins.run("-v", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    assert result.ret == 0
    assert result.parseoutcomes() == {"passed": 2, "rerun": 2}


@pytest.mark.skipif(pytest.version_tuple < (9,), reason="subtests are built into pytest from 9.0")
def test_subtests_count_as_under_plain_pytest(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_with_subtests(subtests):
            for n in range(3):
                with subtests.test(n=n):
                    assert n != 1
        """
    )
    expected = plain_outcomes(matrix.pytester)
    result = matrix.run()
    assert result.ret == 1
    assert result.parseoutcomes() == expected
    # pytest 9.2 quotes a subtest's values once more on every report round trip (as under xdist): n='1'
    result.stdout.fnmatch_lines(["*(n=*1*)*"])


def test_a_forked_copy_that_goes_on_running_pytest_is_not_a_pass(matrix):
    matrix.pytester.makepyfile(
        """
        import os
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        def test_forks():
            pid = os.fork()
            if pid == 0:
                return  # wrong: the copy goes on running the session
            _, status = os.waitpid(pid, 0)
            assert False, "the real test fails"

        def test_after():
            pass
        """
    )
    result = matrix.run("-v", "-W", "ignore::DeprecationWarning")
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed") == 1, outcomes
    result.stdout.fnmatch_lines(["*test_forks*FAILED*"])
    result.stdout.fnmatch_lines(["*a process forked by this test*went on running pytest*"])
    assert outcomes.get("errors") == 1


def test_a_child_that_exits_failing_after_every_test_passed_is_an_error(matrix):
    matrix.pytester.makeconftest(
        """
        import atexit, importlib.util, os

        if importlib.util.find_spec("pytest_envmatrix") is None:  # in the child only
            def pytest_sessionfinish():
                atexit.register(os._exit, 7)
        """
    )
    matrix.pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        def test_one():
            pass

        def test_two():
            pass
        """
    )
    result = matrix.run("-v")
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_two*", "*exit code 7*"])


def test_a_session_that_ends_with_a_failing_status_is_an_error(matrix):
    matrix.pytester.makeconftest(
        """
        import importlib.util

        if importlib.util.find_spec("pytest_envmatrix") is None:  # in the child only
            def pytest_sessionfinish(session):
                session.exitstatus = 4
        """
    )
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_one():
            pass
        """
    )
    result = matrix.run("-v")
    assert result.ret == 1
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*exit code 4*"])


def test_reports_renamed_inside_the_child_still_belong_to_their_test(matrix):
    matrix.pytester.makeconftest(
        """
        import importlib.util
        import pytest

        if importlib.util.find_spec("pytest_envmatrix") is None:  # in the child only
            @pytest.hookimpl(hookwrapper=True)
            def pytest_runtest_makereport(item, call):
                outcome = yield
                outcome.get_result().nodeid = item.nodeid + "::renamed"
        """
    )
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_fails():
            assert False, "a real failure"
        """
    )
    result = matrix.run("-v")
    assert result.ret == 1
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_fails[[]emx_demo-1.0[]] FAILED*", "*a real failure*"])
    assert "stopped after an earlier failure" not in result.stdout.str()


def test_a_test_reported_only_under_another_id_is_an_error_naming_it(matrix):
    matrix.pytester.makeconftest(
        """
        import importlib.util
        import pytest
        from _pytest.reports import TestReport

        if importlib.util.find_spec("pytest_envmatrix") is None:  # in the child only
            @pytest.hookimpl(tryfirst=True)
            def pytest_runtest_protocol(item, nextitem):
                for when in ("setup", "call", "teardown"):
                    item.ihook.pytest_runtest_logreport(report=TestReport(
                        nodeid=item.nodeid + "-elsewhere", location=item.location, keywords={},
                        outcome="failed" if when == "call" else "passed", longrepr="x" if when == "call" else None,
                        when=when,
                    ))
                return True
        """
    )
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_one():
            pass
        """
    )
    result = matrix.run("-v")
    assert result.ret == 1
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*reported no result for this test*", "*test_one[[]emx_demo-1.0[]]-elsewhere*"]
    )
    assert "stopped after an earlier failure" not in result.stdout.str()


def test_pytest_exit_in_a_child_is_not_called_an_earlier_failure(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        def test_stops():
            pytest.exit("stopping here", returncode=0)

        def test_never_reached():
            pass
        """
    )
    result = matrix.run("-v")
    assert result.ret == 1
    assert "stopped after an earlier failure" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*test_stops[[]emx_demo-1.0[]] FAILED*", "*ended its session while running this test*", "*Exit: stopping here*"]
    )


def test_a_module_that_skips_itself_in_one_combination_is_skipped_there(matrix):
    """As plain pytest shows a module-level skip; another module that cannot be collected there is its own error."""
    version = """
        try:
            from emx_demo import __version__ as VERSION
        except ImportError:  # the parent, which collects the module, has no emx_demo
            VERSION = None
        """
    matrix.pytester.makepyfile(
        test_skips=version + """
        import pytest

        if VERSION == "1.0":
            pytest.skip("needs emx_demo 2", allow_module_level=True)

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_two():
            import emx_demo
            assert emx_demo.answer() == 2
        """,
        test_broken=version + """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_imports():
            pass

        if VERSION == "1.0":
            raise ImportError("emx_demo 1.0 lacks this")
        """,
    )
    result = matrix.run("-v", "-rs", "-p", "no:randomly")
    result.assert_outcomes(passed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "*test_skips.py::test_two[[]emx_demo-1.0[]] SKIPPED*",
            "*test_skips.py::test_two[[]emx_demo-2.0[]] PASSED*",
            "*test_broken.py::test_imports[[]emx_demo-1.0[]] ERROR*",
            "SKIPPED [[]1[]] test_skips.py:*: needs emx_demo 2",
        ]
    )


def test_maxfail_in_the_child_skips_the_rest_and_says_so(matrix):
    matrix.pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.envmatrix(emx_demo=["1.0"])

        def test_a():
            assert False

        def test_b():
            assert False

        def test_c():
            pass
        """
    )
    result = matrix.run("-v", "--maxfail=1", "-p", "no:randomly")
    assert result.ret == 1
    result.assert_outcomes(failed=1)


def test_a_pythonpath_that_shadows_the_combination_is_an_error_not_its_result(matrix, demo_wheels, tmp_path, monkeypatch):
    shadow = tmp_path / "other-site-packages"
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", f"--find-links={demo_wheels}",
         f"--target={shadow}", "emx-demo==3.0"],
        check=True,
        timeout=300,
    )
    monkeypatch.setenv("PYTHONPATH", str(shadow))
    matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_answer():
            import emx_demo
            assert emx_demo.answer() == 3  # true only of the shadowing copy
        """
    )
    result = matrix.run("-v")
    assert result.ret == 1
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*does not hold its combination: emx-demo 3.0 is found first in {shadow} (a PYTHONPATH entry), outside the environment*"]
    )


def test_an_environment_changed_after_its_build_is_an_error_not_its_result(fresh_matrix, tmp_path, monkeypatch):
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))  # hard links would carry the damage there
    fresh_matrix.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_answer():
            import emx_demo
            assert emx_demo.answer() == 1
        """
    )
    fresh_matrix.run().assert_outcomes(passed=1)
    # something (a test running pip inside its environment, say) swaps the installed version
    (env,) = (fresh_matrix.cache / "envs").iterdir()
    (metadata,) = env.glob("lib/python*/site-packages/emx_demo-1.0.dist-info/METADATA")
    metadata.write_text(metadata.read_text().replace("Version: 1.0", "Version: 1.5"))
    result = fresh_matrix.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*emx-demo 1.5 is installed, which does not satisfy emx-demo==1.0*--envmatrix-rebuild*"])
    fresh_matrix.run("--envmatrix-rebuild").assert_outcomes(passed=1)


def test_x_stops_at_the_first_failure_any_environment_meets(matrix, tmp_path):
    finished = tmp_path / "slow-finished"
    matrix.pytester.makepyfile(
        f"""
        import pathlib, time
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_slow():
            time.sleep(60)
            pathlib.Path({str(finished)!r}).write_text("done")

        @pytest.mark.envmatrix(emx_demo=["2.0"])
        def test_fails_at_once():
            assert False, "the first failure"
        """
    )
    result = matrix.run("-v", "-x", "--envmatrix-jobs=2", "-p", "no:randomly")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_fails_at_once[[]emx_demo-2.0[]] FAILED*", "*the first failure*"])
    assert "test_slow[emx_demo-1.0] PASSED" not in result.stdout.str()
    assert not finished.exists()
