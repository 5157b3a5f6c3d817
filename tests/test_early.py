"""Children started from the last run's plan, while the parent still collects.

Each run records which cached environment ran which items; the next run
with the same command line starts those children at once. These tests check
that this head start never changes a result: an edited test runs as edited,
an added test runs, a removed or moved test is not reported, and a changed
environment is not used.
"""

import json

import pytest

TWO_TESTS = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
def test_version(envmatrix_combination):
    import emx_demo
    assert emx_demo.__version__ == envmatrix_combination["emx_demo"]

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
def test_answer(envmatrix_combination):
    import emx_demo
    assert emx_demo.answer() == int(envmatrix_combination["emx_demo"][0])
"""


def started_early(result: pytest.RunResult) -> int:
    """How many children the summary says started during collection (0 when it says nothing)."""
    for line in result.outlines:
        if "envmatrix: environments:" in line:
            if "started during collection" not in line:
                return 0
            return int(line.split("(")[2].split()[0])
    raise AssertionError("no envmatrix summary line:\n" + result.stdout.str())


def planned_groups(runner) -> list[dict]:
    (plan,) = (runner.cache / "plans").glob("*.json")
    return json.loads(plan.read_text())["groups"]


def test_a_repeated_run_starts_its_children_during_collection(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_TESTS)
    first = fresh_matrix.run("-v")
    first.assert_outcomes(passed=4)
    assert started_early(first) == 0  # no plan yet

    second = fresh_matrix.run("-v")
    second.assert_outcomes(passed=4)
    assert started_early(second) == 2
    second.stdout.fnmatch_lines(["*0 built*, 2 reused (2 started during collection)*"])
    second.stdout.fnmatch_lines_random(
        [
            "*::test_version[[]emx_demo-1.0[]] PASSED*",
            "*::test_version[[]emx_demo-2.0[]] PASSED*",
            "*::test_answer[[]emx_demo-1.0[]] PASSED*",
            "*::test_answer[[]emx_demo-2.0[]] PASSED*",
        ]
    )


def test_an_edited_test_runs_as_it_is_now(fresh_matrix):
    """Same node ids, new body: the early child reads the files as they are when the run starts."""
    fresh_matrix.pytester.makepyfile(TWO_TESTS)
    fresh_matrix.run().assert_outcomes(passed=4)
    fresh_matrix.pytester.makepyfile(TWO_TESTS.replace("answer() == int(", "answer() != int("))
    result = fresh_matrix.run()
    assert started_early(result) == 2
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*_ test_answer[[]emx_demo-1.0[]] _*", "E * assert 1 != 1", "*_ test_answer[[]emx_demo-2.0[]] _*", "E * assert 2 != 2"])


def test_a_test_added_since_runs_once_in_each_environment(fresh_matrix, tmp_path):
    fresh_matrix.pytester.makepyfile(TWO_TESTS)
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    counter = tmp_path / "runs.txt"
    fresh_matrix.pytester.makepyfile(
        TWO_TESTS
        + f"""
@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
def test_new(envmatrix_combination):
    import emx_demo
    with open({str(counter)!r}, "a") as f:
        f.write(emx_demo.__version__ + "\\n")
"""
    )
    result = fresh_matrix.run("-v")
    result.assert_outcomes(passed=6)
    assert started_early(result) == 2  # kept: the new test ran in a second child of each environment
    assert sorted(counter.read_text().split()) == ["1.0", "2.0"]


def test_a_removed_test_is_neither_reported_nor_counted(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_TESTS)
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    assert any("test_version" in item[0] for group in planned_groups(fresh_matrix) for item in group["items"])
    head, version_test, answer_test = TWO_TESTS.split("@pytest.mark.envmatrix")
    fresh_matrix.pytester.makepyfile(head + "@pytest.mark.envmatrix" + answer_test)
    result = fresh_matrix.run("-v")
    result.assert_outcomes(passed=2)
    assert "test_version" not in result.stdout.str()
    assert started_early(result) == 0  # the children started for the old plan were stopped


def test_a_changed_marker_uses_the_environments_it_names(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_TESTS)
    fresh_matrix.run("-v").assert_outcomes(passed=4)
    fresh_matrix.pytester.makepyfile(TWO_TESTS.replace('["1.0", "2.0"]', '["2.0", "3.0"]'))
    result = fresh_matrix.run("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*1 built*, 1 reused (1 started during collection)*"])
    assert "emx_demo-1.0" not in result.stdout.str()


def test_an_environment_whose_recipe_changed_is_not_used(fresh_matrix):
    """A new project version changes the environment's key, not its label: the early children,
    started in the old environments, are discarded, and the tests run in the new ones."""
    pytester = fresh_matrix.pytester
    pyproject = (
        '[build-system]\nrequires = ["flit_core>=3.4,<4"]\nbuild-backend = "flit_core.buildapi"\n'
        '[project]\nname = "emx-app"\nversion = "{version}"\ndescription = "a project under test"\n'
    )
    pytester.makefile(".toml", pyproject=pyproject.format(version="0.1"))
    pytester.mkpydir("emx_app")
    pytester.makepyfile(
        test_app="""
        import pytest
        from importlib.metadata import version

        EXPECTED = "0.1"

        @pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
        def test_installed_project_version():
            assert version("emx-app") == EXPECTED
        """
    )
    fresh_matrix.run().assert_outcomes(passed=2)
    assert len(planned_groups(fresh_matrix)) == 2
    pytester.makefile(".toml", pyproject=pyproject.format(version="0.2"))
    (pytester.path / "test_app.py").write_text((pytester.path / "test_app.py").read_text().replace('"0.1"', '"0.2"'))
    result = fresh_matrix.run()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 built*, 0 reused*"])
    assert started_early(result) == 0


def test_each_command_line_keeps_its_own_plan(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_TESTS)
    fresh_matrix.run().assert_outcomes(passed=4)
    narrowed = fresh_matrix.run("-k", "emx_demo-2.0")
    narrowed.assert_outcomes(passed=2)
    assert started_early(narrowed) == 0  # first run of this command line
    again = fresh_matrix.run("-k", "emx_demo-2.0")
    again.assert_outcomes(passed=2)
    assert started_early(again) == 1
    full = fresh_matrix.run()
    full.assert_outcomes(passed=4)
    assert started_early(full) == 2


def test_a_crash_in_an_early_child_is_reported_and_the_rest_still_run(fresh_matrix, monkeypatch):
    fresh_matrix.pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_dies():
            import emx_demo
            if os.environ.get("EMX_DIE"):
                os._exit(7)

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_after():
            import emx_demo
        """
    )
    fresh_matrix.run().assert_outcomes(passed=2)
    monkeypatch.setenv("EMX_DIE", "1")
    result = fresh_matrix.run()
    assert started_early(result) == 1
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*crashed while running this test: exit code 7*"])


def test_an_unreadable_plan_only_loses_the_head_start(fresh_matrix):
    fresh_matrix.pytester.makepyfile(TWO_TESTS)
    fresh_matrix.run().assert_outcomes(passed=4)
    (plan,) = (fresh_matrix.cache / "plans").glob("*.json")
    plan.write_text("{not json")
    result = fresh_matrix.run()
    result.assert_outcomes(passed=4)
    assert started_early(result) == 0
    assert len(planned_groups(fresh_matrix)) == 2  # written again for the next run
