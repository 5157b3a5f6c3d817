"""What a matrix run reports beside pytest's own lines: the grid, JUnit properties, the JSON report,
the GitHub Actions step summary, and the merge of several JSON reports."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

#: One test whose outcome differs by combination (fails on 1.0, passes on 2.0, skipped on 3.0),
#: a parametrized one that runs in two combinations only, and an unmarked one.
OUTCOMES = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0", "3.0"])
def test_version():
    import emx_demo
    if emx_demo.answer() == 3:
        pytest.skip("not on 3")
    assert emx_demo.answer() == 2

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    pass

def test_plain():
    pass
"""

COLUMNS = ("emx_demo-1.0", "emx_demo-2.0", "emx_demo-3.0")


def grid_section(output: str) -> list[str]:
    """The lines of the grid section of a run's terminal summary."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "envmatrix: " in line and "combination(s)" in line)
    end = next(i for i, line in enumerate(lines[start + 1 :], start + 1) if line.startswith(("---", "===")))
    return lines[start + 1 : end]


def cells(section: list[str], headings: tuple[str, ...]) -> dict[str, list[str]]:
    """Test → the mark under the middle of each heading."""
    header = next(line for line in section if all(h in line for h in headings))
    body = section[section.index(header) + 1 :]
    out = {}
    for line in body:
        if not line.strip():
            break
        name = line.split()[0]
        out[name] = [line[header.index(h) + (len(h) - 1) // 2] for h in headings]
    return out


@pytest.fixture
def outcomes(matrix):
    matrix.pytester.makepyfile(test_x=OUTCOMES)
    return matrix


def test_the_grid_shows_each_tests_outcome_in_each_combination(outcomes):
    result = outcomes.run()
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    section = grid_section(result.stdout.str())
    assert cells(section, COLUMNS) == {
        "test_x.py::test_version": ["F", ".", "s"],
        "test_x.py::test_param": [".", ".", "-"],  # no 3.0 combination: nothing ran there
    }
    assert ". passed   F failed   s skipped   - not in this combination" in section
    assert not any("test_plain" in line for line in section)  # no combination, no row


def test_the_grid_takes_colours_from_pytests_terminal_settings(outcomes):
    coloured = grid_section(outcomes.run("--color=yes").stdout.str())
    row = next(line for line in coloured if "test_version" in line)
    assert "\x1b[31m" in row and "\x1b[32m" in row  # red F, green .
    plain = grid_section(outcomes.run("--color=no").stdout.str())
    assert not any("\x1b[" in line for line in plain)


def test_quiet_keeps_only_the_counts_per_combination(outcomes):
    result = outcomes.run("-q")
    result.stdout.fnmatch_lines(
        [
            "*envmatrix: 2 test(s) in 3 combination(s), counts per combination*",
            "emx_demo-1.0  1 failed, 2 passed",
            "emx_demo-2.0  3 passed",
            "emx_demo-3.0  1 skipped",
        ]
    )
    assert "test_x.py::test_version  " not in result.stdout.str()


def test_a_narrow_terminal_numbers_the_columns_and_a_narrower_one_folds_them(outcomes, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # pytest's narrowest: it takes anything below 40 for 80
    section = grid_section(outcomes.run().stdout.str())
    assert cells(section, ("1", "2", "3")) == {"test_x.py::test_version": ["F", ".", "s"], "test_x.py::test_param": [".", ".", "-"]}
    assert "1: emx_demo-1.0   2: emx_demo-2.0" in section and "3: emx_demo-3.0" in section

    outcomes.pytester.makepyfile(test_x=OUTCOMES.replace("test_version", "test_a_version_whose_name_is_too_long"))
    result = outcomes.run()
    result.stdout.fnmatch_lines(
        [
            "*envmatrix: 2 test(s) in 3 combination(s), counts per combination*",
            "emx_demo-1.0  1 failed, 2 passed",
            "emx_demo-2.0  3 passed",
            "emx_demo-3.0  1 skipped",
            "(the grid is wider than the terminal's 40 columns)",
        ]
    )


def test_the_grid_of_a_suite_wide_matrix(matrix):
    matrix.pytester.makepyfile(
        test_s="""
        import emx_demo

        def test_answer_is_two():
            assert emx_demo.answer() == 2
        """
    )
    result = matrix.run("--envmatrix-axis=emx_demo=1.0,2.0")
    result.assert_outcomes(passed=1, failed=1)
    assert cells(grid_section(result.stdout.str()), COLUMNS[:2]) == {"test_s.py::test_answer_is_two": ["F", "."]}


def test_the_grid_is_made_on_the_xdist_controller_from_the_workers_reports(outcomes, tmp_path):
    report = tmp_path / "report.json"
    result = outcomes.run("-n", "2", f"--envmatrix-report={report}", subprocess=True)
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    assert cells(grid_section(result.stdout.str()), COLUMNS) == {
        "test_x.py::test_version": ["F", ".", "s"],
        "test_x.py::test_param": [".", ".", "-"],
    }
    data = json.loads(report.read_text())
    # the workers' environments reach the controller's report, and node ids lose xdist's group suffix
    assert sorted(env["installed"]["emx-demo"] for env in data["environments"]) == ["1.0", "2.0", "3.0"]
    assert all("@" not in item["nodeid"] for item in data["items"])


RANGE = """
import pytest

@pytest.mark.envmatrix(emx_demo=[">=2,<3", "1.0"])
def test_range():
    pass
"""


def test_junit_properties_name_the_version_installed_and_the_environments_key(matrix):
    matrix.pytester.makepyfile(test_range=RANGE)
    matrix.run("--junitxml=out.xml").assert_outcomes(passed=2)
    cases = {c.get("name"): c for c in ET.parse(matrix.pytester.path / "out.xml").iter("testcase")}
    props = {name: {p.get("name"): p.get("value") for p in case.iter("property")} for name, case in cases.items()}
    ranged = props["test_range[emx_demo->=2,<3]"]
    # asked for a range, got 2.0: the property says what the tests ran against
    assert ranged["envmatrix"] == "emx_demo->=2,<3"
    assert ranged["envmatrix.emx_demo"] == "2.0"
    assert props["test_range[emx_demo-1.0]"]["envmatrix.emx_demo"] == "1.0"
    marks = matrix.envs()
    for case in props.values():
        key = case["envmatrix.key"]
        assert marks[key[:16]]["key"] == key
    assert ranged["envmatrix.key"] != props["test_range[emx_demo-1.0]"]["envmatrix.key"]


def test_junit_properties_under_xdist(matrix):
    matrix.pytester.makepyfile(test_range=RANGE)
    matrix.run("-n", "2", "--junitxml=out.xml", subprocess=True).assert_outcomes(passed=2)
    cases = ET.parse(matrix.pytester.path / "out.xml").iter("testcase")
    versions = sorted({p.get("name"): p.get("value") for p in case.iter("property")}["envmatrix.emx_demo"] for case in cases)
    assert versions == ["1.0", "2.0"]


def test_the_json_report_has_every_item_and_each_environment_built_then_reused(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        test_j="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=[">=2,<3"])
        def test_marked():
            pass

        @pytest.mark.envmatrix(emx_demo=[">=2,<3"])
        def test_fails():
            assert False, "broken on purpose"

        def test_unmarked():
            pass
        """
    )
    report = fresh_matrix.pytester.path / "reports" / "envmatrix.json"
    fresh_matrix.run("--envmatrix-report=reports/envmatrix.json").assert_outcomes(passed=2, failed=1)
    first = json.loads(report.read_text())
    assert (first["format"], first["version"], first["exitstatus"]) == ("pytest-envmatrix-report", 1, 1)
    assert first["summary"] == {"passed": 2, "failed": 1}
    items = {item["nodeid"]: item for item in first["items"]}
    assert set(items) == {"test_j.py::test_marked[emx_demo->=2,<3]", "test_j.py::test_fails[emx_demo->=2,<3]", "test_j.py::test_unmarked"}
    assert items["test_j.py::test_unmarked"]["combination"] is None and items["test_j.py::test_unmarked"]["environment"] is None
    failed = items["test_j.py::test_fails[emx_demo->=2,<3]"]
    assert failed["outcome"] == "failed" and "broken on purpose" in failed["message"]
    assert failed["test"] == "test_j.py::test_fails" and failed["path"] == "test_j.py" and failed["line"] == 7
    assert all(isinstance(item["duration"], float) and item["duration"] >= 0 for item in items.values())
    (env,) = first["environments"]
    assert env["key"] == items["test_j.py::test_marked[emx_demo->=2,<3]"]["environment"]
    assert "emx-demo<3,>=2" in env["requested"] and env["installed"]["emx-demo"] == "2.0"
    assert env["installed"]["pytest"] == pytest.__version__
    assert (env["built"], env["reused"], env["failed"]) == (True, False, None)
    assert env["build_seconds"] > 0 and env["run_seconds"] > 0
    assert env["combinations"] == ["emx_demo->=2,<3"]
    assert first["combinations"] == {"emx_demo->=2,<3": {"passed": 1, "failed": 1}}

    fresh_matrix.run("--envmatrix-report=reports/envmatrix.json").assert_outcomes(passed=2, failed=1)
    (again,) = json.loads(report.read_text())["environments"]
    assert (again["key"], again["built"], again["reused"], again["build_seconds"]) == (env["key"], False, True, 0.0)
    assert again["installed"] == env["installed"]  # read back from the record kept beside the environment


def test_a_damaged_record_of_installed_versions_is_read_again_from_the_environment(fresh_matrix):
    fresh_matrix.pytester.makepyfile(test_range=RANGE)
    fresh_matrix.run().assert_outcomes(passed=2)
    records = sorted((fresh_matrix.cache / "envs").glob("*/envmatrix-installed.json"))
    assert len(records) == 2
    for record in records:
        record.write_text('{"emx-demo": ["not", "a", "version"]}')
    fresh_matrix.run("--junitxml=out.xml").assert_outcomes(passed=2)
    cases = ET.parse(fresh_matrix.pytester.path / "out.xml").iter("testcase")
    versions = sorted({p.get("name"): p.get("value") for p in case.iter("property")}["envmatrix.emx_demo"] for case in cases)
    assert versions == ["1.0", "2.0"]


def test_a_failed_build_is_in_the_json_report_with_its_reason(fresh_matrix):
    fresh_matrix.pytester.makepyfile(
        test_f="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["9.9"])
        def test_missing():
            pass
        """
    )
    fresh_matrix.run("--envmatrix-report=r.json").assert_outcomes(errors=1)
    data = json.loads((fresh_matrix.pytester.path / "r.json").read_text())
    (env,) = data["environments"]
    assert (env["built"], env["reused"], env["installed"]) == (False, False, {})
    assert "emx-demo==9.9" in env["failed"]
    (item,) = data["items"]
    assert item["outcome"] == "error" and item["message"].startswith("envmatrix: could not build emx-demo==9.9")


def test_the_grid_is_appended_to_the_github_step_summary(outcomes, monkeypatch, tmp_path):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/project")
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(outcomes.pytester.path))
    outcomes.run().assert_outcomes(passed=6, failed=1, skipped=1)
    text = summary.read_text()
    assert text.startswith("earlier step\n### pytest-envmatrix: 1 failed, 6 passed, 1 skipped\n")
    assert "| test | emx_demo-1.0 | emx_demo-2.0 | emx_demo-3.0 |" in text
    assert "| `test_x.py::test_version` | ❌ | ✅ | ⏭️ |" in text
    assert "| `test_x.py::test_param` | ✅ | ✅ | – |" in text
    # linked to the test at the commit under test (pytest locates a test at its first decorator)
    assert (
        "- ❌ [`test_x.py::test_version[emx_demo-1.0]`](https://github.com/someone/project/blob/0123abc/test_x.py#L3)"
        " (failed): AssertionError: assert 1 == 2"
    ) in text
    assert "test_plain" not in text.split("**Failures")[0]
    outcomes.run("-k", "test_plain").assert_outcomes(passed=1, deselected=7)
    assert summary.read_text() == text  # no matrix item, no grid


def report_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_envmatrix.report", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_reports_of_two_shards_merge_into_one(outcomes):
    path = outcomes.pytester.path
    outcomes.run("-k", "1.0", "--envmatrix-report=a.json").assert_outcomes(passed=2, failed=1, deselected=5)
    outcomes.run("-k", "not 1.0", "--envmatrix-report=b.json").assert_outcomes(passed=4, skipped=1, deselected=3)
    done = report_command("merge", "a.json", "b.json", "-o", "merged/all.json", cwd=path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "envmatrix: merged 2 reports into merged/all.json: 1 failed, 6 passed, 1 skipped"
    merged = json.loads((path / "merged" / "all.json").read_text())
    assert merged["merged_from"] == ["a.json", "b.json"]
    assert merged["summary"] == {"failed": 1, "passed": 6, "skipped": 1}
    assert merged["exitstatus"] == 1
    assert len(merged["items"]) == 8
    assert merged["combinations"] == {"emx_demo-1.0": {"failed": 1, "passed": 2}, "emx_demo-2.0": {"passed": 3}, "emx_demo-3.0": {"skipped": 1}}
    assert sorted(env["installed"]["emx-demo"] for env in merged["environments"]) == ["1.0", "2.0", "3.0"]

    shown = report_command("markdown", "merged/all.json", cwd=path)
    assert shown.returncode == 0, shown.stderr
    assert "| `test_x.py::test_version` | ❌ | ✅ | ⏭️ |" in shown.stdout


def test_merge_names_a_file_that_is_not_a_report(tmp_path):
    (tmp_path / "junit.xml").write_text("<testsuites/>")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    done = report_command("merge", "junit.xml", "-o", "out.json", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("envmatrix report: junit.xml: cannot be read as JSON")
    done = report_command("merge", "other.json", "-o", "out.json", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == 'envmatrix report: other.json: not a pytest-envmatrix report (no "format": "pytest-envmatrix-report")'
    assert not (tmp_path / "out.json").exists()


def test_a_report_that_cannot_be_written_is_said_and_the_run_goes_on(outcomes):
    (outcomes.pytester.path / "taken").mkdir()
    result = outcomes.run("--envmatrix-report=taken")
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["envmatrix: could not write the report */taken: *Is a directory*"])
    assert [p.name for p in outcomes.pytester.path.iterdir() if p.name.startswith(".taken")] == []


# ----------------------------------------------------------------------------- the grid and merge, without processes


def item(nodeid: str, combination: str | None, outcome: str) -> dict:
    from pytest_envmatrix import report

    return {"nodeid": nodeid, "test": report.function_of(nodeid), "combination": combination, "outcome": outcome, "path": "t.py", "line": 1}


def text_of(lines) -> list[str]:
    return ["".join(text for text, _ in line) for line in lines]


def test_a_cell_shows_the_most_severe_outcome_of_its_items_and_the_counts_every_item():
    from pytest_envmatrix import report

    grid = report.Grid.of(
        [
            item("t.py::test_f[a-1.0-1]", "a-1.0", "passed"),
            item("t.py::test_f[a-1.0-2]", "a-1.0", "failed"),
            item("t.py::test_f[a-2.0-1]", "a-2.0", "skipped"),
            item("t.py::test_f[a-2.0-2]", "a-2.0", "xfailed"),
            item("t.py::test_f[a-10.0-1]", "a-10.0", "xpassed"),
            item("t.py::test_g[a-10.0]", "a-10.0", "error"),
            item("t.py::test_plain", None, "passed"),
        ]
    )
    assert grid.columns == ["a-1.0", "a-2.0", "a-10.0"]  # by version, not as text
    assert grid.rows == ["t.py::test_f", "t.py::test_g"]
    assert [[grid.cells.get((row, column), "-") for column in grid.columns] for row in grid.rows] == [
        ["failed", "xfailed", "xpassed"],
        ["-", "-", "error"],
    ]
    assert text_of(report.count_lines(grid)) == ["a-1.0   1 failed, 1 passed", "a-2.0   1 skipped, 1 xfailed", "a-10.0  1 xpassed, 1 error"]
    assert text_of(report.grid_lines(grid, 80)) == [
        "              a-1.0  a-2.0  a-10.0",
        "t.py::test_f    F      x      X",
        "t.py::test_g    -      -      E",
    ]


def test_many_combinations_wrap_into_blocks_of_numbered_columns_or_fold():
    from pytest_envmatrix import report

    columns = [f"numpy-1.{n}.0" for n in range(12)]
    grid = report.Grid.of([item(f"t.py::test_f[{c}]", c, "passed") for c in columns])
    lines = text_of(report.grid_lines(grid, 40))
    # "t.py::test_f" is 12 wide: 7 numbered columns of 4 fit beside it in 40, so two blocks
    assert lines[:5] == [
        "              1   2   3   4   5   6   7",
        "t.py::test_f  .   .   .   .   .   .   .",
        "",
        "              8   9   10  11  12",
        "t.py::test_f  .   .   .   .   .",
    ]
    assert " 1: numpy-1.0.0" in lines[6] and "12: numpy-1.11.0" in lines[-1]
    assert report.grid_lines(grid, 20) is None  # more than four blocks: counts instead


def test_merge_counts_an_environment_built_by_any_job_as_built():
    from pytest_envmatrix import report

    def one(items, built, reused, seconds):
        env = {"key": "k1", "label": "a==1.0", "built": built, "reused": reused, "failed": None,
               "build_seconds": seconds, "run_seconds": 1.0, "installed": {"a": "1.0"}, "combinations": ["a-1.0"]}
        return {"format": report.FORMAT, "version": 1, "exitstatus": 0, "items": items, "environments": [env], "notes": []}

    first = one([item("t.py::test_f[a-1.0]", "a-1.0", "failed")], True, False, 2.5)
    second = one([item("t.py::test_g[a-1.0]", "a-1.0", "passed")], False, True, 0.0)
    merged = report.merge([first, second], ["1.json", "2.json"])
    (env,) = merged["environments"]
    assert (env["built"], env["reused"], env["build_seconds"], env["run_seconds"]) == (True, False, 2.5, 2.0)
    assert merged["summary"] == {"failed": 1, "passed": 1}
    assert merged["combinations"] == {"a-1.0": {"failed": 1, "passed": 1}}
