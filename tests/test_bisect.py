"""``--envmatrix-bisect``: the first release in which a selected test fails, in about log2(n) probes.

emx-step has twelve releases, 1.0 to 1.11; from 1.7 on, ``step()`` answers
"new" instead of "old". Each probe is a child pytest that builds (or reuses)
one environment.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from conftest import build_wheel
from pytest_envmatrix.bisect import Probe, Search, probe_args
from packaging.version import Version

VERSIONS = [f"1.{minor}" for minor in range(12)]
FIRST_NEW = 7  # 1.7


def step_module(version: str) -> dict[str, str]:
    minor = int(version.split(".")[1])
    answer = "new" if minor >= FIRST_NEW else "old"
    return {"emx_step/__init__.py": f"__version__ = {version!r}\n\ndef step():\n    return {answer!r}\n"}


@pytest.fixture(scope="module")
def steps(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("steps")
    for version in VERSIONS:
        build_wheel(dest, "emx-step", version, step_module(version))
    return dest


@pytest.fixture(scope="module")
def steps_with_a_hole(tmp_path_factory) -> Path:
    """The same, but 1.5 needs a package no index has: it is listed, and cannot be installed."""
    dest = tmp_path_factory.mktemp("steps-hole")
    for version in VERSIONS:
        requires = ["emx-nowhere>=1"] if version == "1.5" else []
        build_wheel(dest, "emx-step", version, step_module(version), requires=requires)
    return dest


TESTS = """
    import emx_step
    import pytest

    def test_step_is_old():
        assert emx_step.step() == "old"

    @pytest.mark.envmatrix(emx_step=["1.0"])
    def test_marked_step_is_old():
        assert emx_step.step() == "old"

    def test_unrelated():
        pass
    """


def bisect(matrix, wheels: Path, *args: str):
    matrix.pytester.makepyfile(test_step=TESTS)
    options = [o for o in matrix.options() if o != "--envmatrix"]
    return matrix.pytester.runpytest_subprocess(
        *options, f"--envmatrix-find-links={wheels}", "--envmatrix-bisect", "emx-step", "--envmatrix-good=1.0", *args, timeout=600
    )


def probes(result) -> list[str]:
    """The versions probed, in order, with their verdicts."""
    return re.findall(r"envmatrix bisect: probe \d+: emx-step (\S+)(?: \(the \w+ end\))?: (\w+)", result.stdout.str())


def test_bisect_finds_the_first_bad_version_in_about_log2_probes(fresh_matrix, steps):
    result = bisect(fresh_matrix, steps, "test_step.py::test_step_is_old")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "envmatrix bisect: emx-step 1.0 (good) to 1.11 (bad): 10 release(s) between them, about 4 probe(s) besides the two ends",
            "envmatrix bisect: probe 1: emx-step 1.0 (the good end): good (1 passed; environment built)",
            "envmatrix bisect: probe 2: emx-step 1.11 (the bad end): bad (0 passed, 1 failed; environment built)",
            "envmatrix bisect: last good: emx-step 1.6",
            "envmatrix bisect: first bad: emx-step 1.7",
            "envmatrix bisect: 6 probes, one environment each: the two ends, then 4 for the 10 release(s) between them "
            "(log2(11) = 3.5, about 4), not 12",
            "envmatrix bisect: the failure in emx-step 1.7:",
            "test_step.py::test_step_is_old*",
            "*AssertionError: assert 'new' == 'old'*",
        ]
    )
    assert probes(result) == [("1.0", "good"), ("1.11", "bad"), ("1.5", "good"), ("1.8", "bad"), ("1.6", "good"), ("1.7", "bad")]
    assert len(probes(result)) <= 2 + math.ceil(math.log2(len(VERSIONS) - 1))


def test_a_marked_test_runs_at_each_probes_version_and_k_selects(fresh_matrix, steps):
    result = bisect(fresh_matrix, steps, "-k", "marked")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["envmatrix bisect: first bad: emx-step 1.7", "test_step.py::test_marked_step_is_old*"])


def test_a_version_that_cannot_be_installed_is_skipped_as_git_bisect_skip_does(fresh_matrix, steps_with_a_hole):
    result = bisect(fresh_matrix, steps_with_a_hole, "test_step.py::test_step_is_old")
    assert result.ret == 0, result.stdout.str()
    assert probes(result) == [("1.0", "good"), ("1.11", "bad"), ("1.5", "skip"), ("1.4", "good"), ("1.7", "bad"), ("1.6", "good")]
    result.stdout.fnmatch_lines(["*probe 3: emx-step 1.5: skip (could not be installed)", "envmatrix bisect: first bad: emx-step 1.7"])


def test_an_end_that_does_not_confirm_stops_the_search(fresh_matrix, steps):
    result = bisect(fresh_matrix, steps, "test_step.py::test_step_is_old", "--envmatrix-bad=1.3")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["envmatrix bisect: the bad end, emx-step 1.3, is not bad: nothing to search (set --envmatrix-good / --envmatrix-bad)"]
    )
    assert len(probes(result)) == 2


def test_bad_ends_are_usage_errors(fresh_matrix, steps):
    result = bisect(fresh_matrix, steps, "--envmatrix-bad=1.0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --envmatrix-bisect emx-step: the good version (1.0) must be older than the bad one (1.0)"])
    result = bisect(fresh_matrix, steps, "--envmatrix-bad=newest")
    result.stderr.fnmatch_lines(["ERROR: --envmatrix-bad: 'newest' is not a version (e.g. '1.26.4') nor current, latest or oldest"])


# ----------------------------------------------------------------------------- the search alone


def search(first_bad: int, count: int, skipped=()):
    """Run the search over ``count`` made-up versions with a fake probe; the versions probed and the exit status."""
    candidates = [Version(f"1.{i}") for i in range(count)]
    seen = []

    def probe(version):
        index = candidates.index(version)
        seen.append(index)
        if index in skipped:
            return Probe(version, "skip")
        return Probe(version, "bad", failures=[{"nodeid": "t", "when": "call", "text": "x"}]) if index >= first_bad else Probe(version, "good", passed=1)

    status = Search("p", candidates, probe).run()
    return seen, status


@pytest.mark.parametrize("count", [3, 8, 16, 100])
def test_the_search_finds_every_first_bad_in_at_most_two_plus_log2_probes(count, capsys):
    for first_bad in range(1, count):
        seen, status = search(first_bad, count)
        assert status == 0
        assert len(seen) <= 2 + math.ceil(math.log2(count - 1))
        assert f"first bad: p 1.{first_bad}" in capsys.readouterr().out


def test_skipped_versions_that_hide_the_answer_give_a_range_and_status_1(capsys):
    seen, status = search(first_bad=5, count=8, skipped={4})
    assert status == 1
    assert "first bad: one of 1.4 (could not be installed, skipped) or 1.5" in capsys.readouterr().out


def test_the_probes_get_the_users_arguments_without_the_drivers():
    args = ["--envmatrix-bisect", "numpy", "-k", "x", "--envmatrix-good=1.0", "--envmatrix-bad", "2.0", "tests/t.py", "--envmatrix-list"]
    assert probe_args(args) == ["-k", "x", "tests/t.py"]
