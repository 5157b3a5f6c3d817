"""The upgrade check (--envmatrix-upgrade): the suite before and after moving a package, and only what changed.

The environment to reproduce is a virtualenv made here (pytest, this plugin
and its dependencies, emx-up 1.0 with its dependency emx-up-base 1.0, and
emx-up-other 1.0, all from local folders), from which pytest runs as a
subprocess: the environment running these tests could not be reproduced from
local wheels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from pytest_envmatrix.installer import find_uv
from pytest_envmatrix.matrix import MarkerError, UpgradeTarget, parse_upgrade_targets
from pytest_envmatrix.recipe import Project
from pytest_envmatrix.upgrade import (
    Installed,
    Move,
    Result,
    compare,
    moves,
    parse_compiled,
    parse_installed,
    read_installed,
    reproduce,
    side_of,
    summary_lines,
    table,
)

from conftest import _wheelhouse_dir, build_wheel

REPO = Path(__file__).resolve().parent.parent

SUITE = """
    import emx_up
    import pytest

    def test_answer_is_one():
        assert emx_up.answer() == 1

    def test_new_api():
        assert emx_up.new_api() == "new"

    def test_name():
        assert emx_up.NAME == "up"

    def test_broken_everywhere():
        assert emx_up.NAME == "down"

    @pytest.mark.envmatrix(emx_up=["1.0"])
    def test_marked(envmatrix_combination):
        # a test written for a marker reads the version of the asked-for package it runs with
        assert envmatrix_combination["emx_up"] == emx_up.VERSION
        assert envmatrix_combination["upgrade"] in ("before", "after")

    @pytest.mark.parametrize("n", [1, 2])
    def test_base_version(n):
        import emx_up_base
        assert emx_up_base.MAJOR >= 1
    """


# ----------------------------------------------------------------------------- the pure parts


def test_targets_are_names_or_exact_versions():
    targets = parse_upgrade_targets(["NumPy", "scipy == 1.15.0"])
    assert targets == (UpgradeTarget("NumPy", "numpy", None), UpgradeTarget("scipy", "scipy", "1.15.0"))
    assert [t.requirement for t in targets] == ["numpy", "scipy==1.15.0"]
    with pytest.raises(MarkerError, match=r"--envmatrix-upgrade: 'numpy>=2' is neither a package name nor name==version"):
        parse_upgrade_targets(["numpy>=2"])
    with pytest.raises(MarkerError, match=r"--envmatrix-upgrade: 'numpy' is given twice"):
        parse_upgrade_targets(["numpy==2.0", "numpy"])


def test_the_reproduction_pins_versions_keeps_urls_and_leaves_out_tooling_and_the_project(tmp_path):
    project = tmp_path / "myproj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "My_Proj"\nversion = "0.1"\n')
    installed = parse_installed(
        [
            ["numpy", "1.26.4", None],
            ["my-proj", "0.1", None],  # the project installed by name, not from its folder
            ["legacy", "2004d", None],
            ["numpy", "2.0.0", None],  # further down sys.path: never imported
            ["pip", "24.0", None],
            ["setuptools", "69.0", None],
            ["pytest-envmatrix", "0.1.0", json.dumps({"url": REPO.as_uri(), "dir_info": {"editable": True}})],
            ["myproj", "0.1", json.dumps({"url": project.as_uri(), "dir_info": {"editable": True}})],
            ["toolz", "0.12.1", json.dumps({"url": "https://github.com/pytoolz/toolz", "vcs_info": {"vcs": "git", "commit_id": "abc123"}})],
            ["broken", "1.0", "{not json"],
            [None, "1.0", None],
            "garbage",
        ]
    )
    reproduction = reproduce(installed, Project(str(project), "digest"), [UpgradeTarget("setuptools", "setuptools")])
    assert reproduction.requirements == (
        "broken==1.0",
        "numpy==1.26.4",
        "setuptools==69.0",  # asked to move: kept
        "toolz @ git+https://github.com/pytoolz/toolz@abc123",
    )
    assert dict(reproduction.left_out) == {
        "pip": "installer",
        "pytest-envmatrix": "this plugin",
        "myproj": "the project under test, installed editable",
        "my-proj": "the project under test, installed editable",
        "legacy": "version '2004d' is not a version an installer can pin",
    }


def test_a_compiled_file_gives_canonical_requirements_without_options():
    text = "-e file:///src/myproj\n--find-links /wheels\nNumPy==2.2.6\n    # via scipy\nscipy==1.15.0  # comment\n\n"
    assert parse_compiled(text) == ("numpy==2.2.6", "scipy==1.15.0")


def test_moves_name_what_changed_the_asked_for_package_first():
    before = [Installed("emx-up", "1.0"), Installed("emx-up-base", "1.0"), Installed("same", "1.0"), Installed("gone", "1.0")]
    after = [Installed("emx-up-base", "2.0"), Installed("emx_up", "2.1"), Installed("same", "1.0"), Installed("new", "0.3")]
    moved = moves(before, after, [UpgradeTarget("emx_up", "emx-up")])
    assert [m.describe() for m in moved] == [
        "emx_up 1.0 -> 2.1",
        "emx-up-base 1.0 -> 2.0",
        "gone 1.0 -> (removed)",
        "new (absent) -> 0.3",
    ]
    assert [m.asked for m in moved] == [True, False, False, False]


def test_item_ids_map_to_their_test_and_side():
    assert side_of("t.py::test_x[upgrade-before]") == ("t.py::test_x", "before")
    assert side_of("t.py::test_x[upgrade-after-1]") == ("t.py::test_x[1]", "after")
    assert side_of("t.py::TestX::test_y[upgrade-after]") == ("t.py::TestX::test_y", "after")
    assert side_of("t.py[upgrade-after]") == ("t.py", "after")
    assert side_of("envmatrix[upgrade-before]") == ("envmatrix", "before")
    assert side_of("t.py::test_x[numpy-2.0]") is None


def results(**tests):
    """test → "before/after" outcomes, e.g. ``t=("passed", "failed")``."""
    out = {}
    for name, (before, after) in tests.items():
        test = name.replace("__", "::")
        sides = {}
        if before:
            sides["before"] = Result(before, f"{test} broke before" if before == "failed" else "")
        if after:
            sides["after"] = Result(after, f"{test} broke after" if after == "failed" else "")
        out[test] = sides
    return out


def test_the_comparison_lists_regressions_and_fixes_and_counts_the_rest():
    comparison = compare(
        results(
            t__a=("passed", "failed"),
            t__b=("failed", "passed"),
            t__c=("passed", "passed"),
            t__d=("failed", "failed"),
            t__e=("skipped", "failed"),
            t__new=(None, "passed"),
        )
    )
    assert comparison.regressions == [("t::a", "t::a broke after")]
    assert comparison.fixes == [("t::b", "t::b broke before")]
    assert comparison.unchanged == 3
    assert comparison.only_after == ["t::new"]
    assert comparison.exit_code == 1
    assert compare(results(t__d=("failed", "failed"), t__b=("failed", "passed"))).exit_code == 0


def test_a_module_that_no_longer_imports_is_a_regression_and_a_broken_environment_fails_the_check():
    comparison = compare({**results(m__a=("passed", None), m__b=("failed", None)), "m": {"after": Result("failed", "ImportError: x")}})
    assert comparison.regressions == [("m", "ImportError: x")]
    assert comparison.only_before == [] and comparison.unchanged == 0
    broken = compare({**results(t__a=("passed", None)), "envmatrix": {"after": Result("failed", "could not build")}})
    assert broken.broken == [("after", "could not build")] and broken.regressions == []
    assert broken.exit_code == 1


def test_the_table_and_summary_show_only_what_changed():
    comparison = compare(results(t__a=("passed", "failed"), t__long_name=("failed", "passed"), t__c=("passed", "passed")))
    assert table(comparison) == [
        "change      test          detail",
        "regression  t::a          fails after: t::a broke after",
        "fixed       t::long_name  failed before: t::long_name broke before",
    ]
    lines = summary_lines(comparison, [Move("numpy", "1.26.4", "2.2.6", True), Move("scipy", "1.11", "1.15", False)], [("pip", "installer")])
    assert lines[:3] == [
        "upgraded: numpy 1.26.4 -> 2.2.6",
        "moved with it: scipy 1.11 -> 1.15",
        "not reproduced from this environment: pip (installer)",
    ]
    assert lines[-1] == "1 regression(s), 1 fixed, 1 unchanged"
    assert table(compare(results(t__c=("passed", "passed")))) == []


def test_the_reader_reads_a_real_environment():
    installed = {d.canonical: d for d in read_installed(sys.executable)}
    assert installed["pytest"].version == pytest.__version__
    assert "pytest-envmatrix" in installed


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="session")
def upgrade_wheels(tmp_path_factory) -> Path:
    """emx-up 1.0 (needs emx-up-base<2), 2.0 and 2.1 (need emx-up-base>=2, add new_api), emx-up-other 1.0 and 2.0."""
    dest = tmp_path_factory.mktemp("upgrade-wheels")
    for version in ("1.0", "2.0", "2.1"):
        major = int(version[0])
        source = f"NAME = 'up'\nVERSION = {version!r}\n\ndef answer():\n    return {major}\n"
        if major >= 2:
            source += "\ndef new_api():\n    return 'new'\n"
        base = "emx-up-base<2" if major == 1 else "emx-up-base>=2"
        build_wheel(dest, "emx-up", version, {"emx_up/__init__.py": source}, requires=[base])
    for version in ("1.0", "2.0"):
        build_wheel(dest, "emx-up-base", version, {"emx_up_base/__init__.py": f"MAJOR = {version[0]}\n"})
        build_wheel(dest, "emx-up-other", version, {"emx_up_other/__init__.py": ""})
    return dest


@pytest.fixture(scope="session")
def plugin_dependency_wheels(request) -> Path:
    """This plugin's own dependencies as local wheels: the parent environment holds them, so its reproduction does."""
    dest = _wheelhouse_dir(request.config).parent / "envmatrix-plugin-dependency-wheels"
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dest / f"complete-{sys.version_info[0]}.{sys.version_info[1]}-v1.json"
    with FileLock(str(dest) + ".lock"):
        if not stamp.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
                 "--dest", str(dest), "packaging>=24", "virtualenv>=20.26", "filelock>=3.12", "platformdirs>=3", "tomli>=1.1"],
                check=True,
                timeout=600,
            )
            stamp.write_text(json.dumps(sorted(p.name for p in dest.glob("*.whl"))))
    return dest


def _hermetic_environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith(("PIP_", "UV_")) and k != "UV_CACHE_DIR")}
    env.update(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1")
    return env


@pytest.fixture(scope="session")
def parent_env(tmp_path_factory, upgrade_wheels, plugin_dependency_wheels, base_wheels) -> Path:
    """A virtualenv to run pytest from: pytest, this plugin (editable), emx-up 1.0 with emx-up-base 1.0, emx-up-other 1.0."""
    uv = find_uv()
    path = tmp_path_factory.mktemp("parent") / "venv"
    env = _hermetic_environ()
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(path)], check=True, env=env, timeout=300)
    links = [arg for d in (upgrade_wheels, plugin_dependency_wheels, base_wheels) for arg in ("--find-links", str(d))]
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(path / "bin" / "python"), "--no-index", *links,
         "-e", str(REPO), f"pytest=={pytest.__version__}", "emx-up==1.0", "emx-up-other==1.0"],
        check=True,
        env=env,
        timeout=600,
    )
    return path / "bin" / "python"


@pytest.fixture
def upgrade_run(pytester, parent_env, upgrade_wheels, plugin_dependency_wheels, base_wheels, shared_cache, hermetic_installer, monkeypatch):
    """Runs pytest from ``parent_env`` with the upgrade check's options and the local folders as the only index."""
    monkeypatch.setenv("PATH", os.path.dirname(find_uv()) + os.pathsep + os.environ["PATH"])
    pytester.makepyfile(test_app=SUITE)
    links = [f"--envmatrix-find-links={d}" for d in (upgrade_wheels, plugin_dependency_wheels, base_wheels)]

    def run(*args: str) -> pytest.RunResult:
        return pytester.run(
            str(parent_env), "-m", "pytest", "-p", "no:cacheprovider", f"--envmatrix-cache-dir={shared_cache}",
            "--envmatrix-no-index", *links, *args, timeout=600,
        )

    return run


def upgrade_section(result: pytest.RunResult) -> str:
    """The upgrade check's part of the summary: from its header to the next one."""
    text = result.stdout.str().split("envmatrix upgrade check", 1)[1]
    return text.split("\n=", 1)[0]


def test_the_upgrade_check_lists_regressions_fixes_and_what_moved_and_exits_1(upgrade_run, tmp_path):
    junit = tmp_path / "junit.xml"
    result = upgrade_run("-v", "--envmatrix-upgrade=emx_up", f"--junitxml={junit}")
    result.stdout.fnmatch_lines_random(
        [
            "*test_app.py::test_answer_is_one[[]upgrade-before[]] PASSED*",
            "*test_app.py::test_answer_is_one[[]upgrade-after[]] FAILED*",
            "*test_app.py::test_new_api[[]upgrade-before[]] FAILED*",
            "*test_app.py::test_new_api[[]upgrade-after[]] PASSED*",
            "*test_app.py::test_marked[[]upgrade-before[]] PASSED*",
            "*test_app.py::test_marked[[]upgrade-after[]] PASSED*",
            "*test_app.py::test_base_version[[]upgrade-after-2[]] PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= envmatrix upgrade check: emx_up =*",
            # the newest release, its dependency moved with it, and the unrelated emx-up-other left where it was
            "upgraded: emx-up 1.0 -> 2.1",
            "moved with it: emx-up-base 1.0 -> 2.0",
            "not reproduced from this environment: pytest-envmatrix (this plugin)",
            "",
            "change      test                             detail",
            "regression  test_app.py::test_answer_is_one  fails after: assert 2 == 1",
            "fixed       test_app.py::test_new_api        failed before: AttributeError: module 'emx_up' has no attribute 'new_api'",
            "",
            "1 regression(s), 1 fixed, 5 unchanged",
        ]
    )
    assert "emx-up-other" not in upgrade_section(result)
    assert result.ret == 1
    xml = junit.read_text()
    assert 'name="test_answer_is_one[upgrade-before]"' in xml and 'name="test_answer_is_one[upgrade-after]"' in xml


def test_no_regression_exits_0_even_with_tests_failing_in_both(upgrade_run):
    result = upgrade_run("--envmatrix-upgrade=emx_up", "-k", "not answer_is_one")
    result.stdout.fnmatch_lines(["*test_broken_everywhere*", "0 regression(s), 1 fixed, 5 unchanged"])
    assert "test_broken_everywhere" not in upgrade_section(result)
    assert result.ret == 0


def test_an_exact_target_and_a_target_that_cannot_be_resolved(upgrade_run):
    pinned = upgrade_run("--envmatrix-upgrade=emx-up==2.0", "-k", "answer_is_one")
    pinned.stdout.fnmatch_lines(["upgraded: emx-up 1.0 -> 2.0", "regression  test_app.py::test_answer_is_one  fails after: assert 2 == 1"])
    assert pinned.ret == 1
    missing = upgrade_run("--envmatrix-upgrade=emx-up==9.9", "-k", "answer_is_one")
    # the after environment's error item is deselected by -k, and still the check fails
    missing.stdout.fnmatch_lines(
        [
            "the environment after the upgrade did not run: envmatrix: could not resolve the environment after upgrading emx-up==9.9: *emx-up*9.9*",
        ]
    )
    assert missing.ret == 1
