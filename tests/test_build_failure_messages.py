"""An environment that cannot be had is told once, in full; every item still names it and why."""

from __future__ import annotations

import pytest

MISSING_VERSION = """
import pytest

pytestmark = pytest.mark.envmatrix(emx_demo=["9.9"])

@pytest.mark.parametrize("n", range(5))
def test_x(n):
    pass

def test_y():
    pass
"""

REASON = "*Because there is no version of emx-demo==9.9*"


@pytest.fixture
def on_ci(monkeypatch):
    """pytest trims short summary lines to the terminal's width, but not on CI: the whole line is checked."""
    monkeypatch.setenv("CI", "1")


def test_a_failed_build_is_told_once_and_every_item_names_its_environment_and_reason(fresh_matrix, on_ci):
    fresh_matrix.pytester.makepyfile(test_missing_version=MISSING_VERSION)
    result = fresh_matrix.run("-rE", "--envmatrix-installer=uv")
    result.assert_outcomes(errors=6)
    out = result.stdout.str()
    # the installer's output is shown once, on the first item
    assert out.count("output (last lines):") == 1
    assert out.count("command: ") == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_x[[]emx_demo-9.9-0[]]*",
            "envmatrix: could not build emx-demo==9.9: No solution found when resolving dependencies: " + REASON,
            "uv could not install emx-demo==9.9 (exit code 1)",
            "command: *",
            "output (last lines):",
        ]
    )
    # every other item: one line that names the environment and the reason
    for n in range(1, 5):
        section = out.split(f"ERROR at setup of test_x[emx_demo-9.9-{n}]")[1].split("\n")[1:3]
        assert section[0].startswith("envmatrix: could not build emx-demo==9.9: No solution found"), section
        assert section[0].endswith("(told in full on test_missing_version.py::test_x[emx_demo-9.9-0])"), section
        assert section[1].startswith("_"), section  # the next item's header: nothing more was printed
    # the short summary says why, one line per item
    summary = out.split("short test summary info")[1].splitlines()[1:]
    errors = [line for line in summary if line.startswith("ERROR ")]
    assert len(errors) == 6, summary
    for line in errors:
        assert " - envmatrix: could not build emx-demo==9.9: No solution found" in line, line
        assert line.endswith("we can conclude that your requirements are unsatisfiable."), line
    # 6 items, told in (well) under 60 lines with the envmatrix grid; it was 6 times the whole block, twice (90 lines)
    assert len(out.splitlines()) < 52, out


def test_pip_gives_its_own_reason(fresh_matrix, on_ci):
    fresh_matrix.pytester.makepyfile(test_missing_version=MISSING_VERSION)
    result = fresh_matrix.run("-rE", "--envmatrix-installer=pip")
    result.assert_outcomes(errors=6)
    result.stdout.fnmatch_lines(
        ["ERROR *test_y[[]emx_demo-9.9[]] - envmatrix: could not build emx-demo==9.9: "
         "Could not find a version that satisfies the requirement emx-demo==9.9 (from versions: *)"]
    )
    assert result.stdout.str().count("output (last lines):") == 1


def test_the_reason_reaches_junitxml_and_crosses_xdist(fresh_matrix, on_ci):
    fresh_matrix.pytester.makepyfile(test_missing_version=MISSING_VERSION)
    xml = fresh_matrix.pytester.path / "out.xml"
    result = fresh_matrix.run("-rE", "-n", "2", "--envmatrix-installer=uv", f"--junitxml={xml}")
    result.assert_outcomes(errors=6)
    out = result.stdout.str()
    # each worker that meets the environment tells it once (items of one environment may go to both)
    assert 1 <= out.count("output (last lines):") <= 2
    summary = [line for line in out.split("short test summary info")[1].splitlines() if line.startswith("ERROR ")]
    assert len(summary) == 6 and all(line.endswith("your requirements are unsatisfiable.") for line in summary), summary
    text = xml.read_text()
    assert text.count('message="failed on setup with &quot;envmatrix: could not build emx-demo==9.9: No solution found') == 6


MISSING_PYTHON = """
import pytest

pytestmark = pytest.mark.envmatrix(python=["3.99"], emx_demo=["1.0"])

@pytest.mark.parametrize("n", range(4))
def test_unreleased(n):
    pass
"""


def test_a_required_missing_interpreter_is_told_once_and_named_on_every_item(fresh_matrix, on_ci):
    fresh_matrix.pytester.makepyfile(test_missing=MISSING_PYTHON)
    result = fresh_matrix.run("-rE", "--envmatrix-require-python")
    result.assert_outcomes(errors=4)
    out = result.stdout.str()
    headline = (
        "envmatrix: could not build py3.99 emx-demo==1.0: python 3.99 was not found on this machine, "
        "and --envmatrix-require-python (envmatrix_require_python) requires it"
    )
    assert out.count("Install that interpreter") == 1
    result.stdout.fnmatch_lines(["*ERROR at setup of test_unreleased[[]py3.99-emx_demo-1.0-0[]]*", headline, "Install that interpreter*"])
    errors = [line for line in out.split("short test summary info")[1].splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 4 and all(line.endswith(" - " + headline) for line in errors), errors
