"""What goes into an environment: the project under test, the interpreter."""

import json
import os
import sys
from pathlib import Path

import pytest

PYPROJECT = """
[build-system]
requires = ["flit_core>=3.4,<4"]
build-backend = "flit_core.buildapi"

[project]
name = "emx-app"
version = "0.1"
description = "a project under test"
dependencies = ["emx-demo{spec}"]
"""


@pytest.fixture
def project(pytester):
    pytester.makefile(".toml", pyproject=PYPROJECT.format(spec=""))
    pytester.mkpydir("emx_app")
    (pytester.path / "emx_app" / "__init__.py").write_text(
        "from emx_demo import answer\n\ndef doubled():\n    return answer() * 2\n"
    )
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_app.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.envmatrix(emx_demo=['1.0', '2.0'])\n"
        "def test_doubled(envmatrix_combination):\n"
        "    import emx_app, emx_demo\n"
        "    print('emx_app from', emx_app.__file__)\n"
        "    assert emx_demo.__version__ == envmatrix_combination['emx_demo']\n"
        "    assert emx_app.doubled() == 2 * emx_demo.answer()\n"
    )
    return pytester


def test_project_is_installed_editable_with_the_pins(fresh_matrix, project):
    result = fresh_matrix.run("-v", "-rP")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"emx_app from {project.path / 'emx_app' / '__init__.py'}"])
    assert all(m["project"] == str(project.path) for m in fresh_matrix.envs().values())

    # a source edit shows up in the next run, without a rebuild
    (project.path / "emx_app" / "__init__.py").write_text(
        "from emx_demo import answer\n\ndef doubled():\n    return answer() * 3\n"
    )
    result = fresh_matrix.run()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*0 built*, 2 reused*"])

    # a change to the build metadata is a new environment
    (project.path / "pyproject.toml").write_text(PYPROJECT.format(spec="<3"))
    result = fresh_matrix.run()
    result.stdout.fnmatch_lines(["*2 built*, 0 reused*"])


def test_a_pin_that_conflicts_with_the_project_is_reported(fresh_matrix, project):
    (project.path / "pyproject.toml").write_text(PYPROJECT.format(spec="<2"))
    result = fresh_matrix.run("-v")
    result.stdout.fnmatch_lines_random(
        ["*::test_doubled[[]emx_demo-1.0[]] PASSED*", "*::test_doubled[[]emx_demo-2.0[]] ERROR*"]
    )
    result.stdout.fnmatch_lines(["*could not build emx-demo==2.0*"])


COUNTING_BACKEND = """
import os
from flit_core import buildapi
from flit_core.buildapi import *

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.environ["EMX_BUILD_COUNT"], "a") as count:
        count.write("built\\n")
    return buildapi.build_editable(wheel_directory, config_settings, metadata_directory)
"""


def test_uv_builds_the_project_once_until_its_metadata_changes(fresh_matrix, project, monkeypatch, tmp_path):
    """uv takes the project's editable build from its cache, as it does for ``uv sync``;
    --envmatrix-rebuild builds it afresh for every environment."""
    count = tmp_path / "builds"
    monkeypatch.setenv("EMX_BUILD_COUNT", str(count))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('build-backend = "flit_core.buildapi"', 'build-backend = "counting"\nbackend-path = ["build_backend"]')
    )
    project.mkdir("build_backend")
    (project.path / "build_backend" / "counting.py").write_text(COUNTING_BACKEND)

    def builds():
        return len(count.read_text().splitlines()) if count.exists() else 0

    options = ["--envmatrix-jobs=1", "--envmatrix-installer=uv"]
    fresh_matrix.run(*options).assert_outcomes(passed=2)
    assert builds() == 1

    fresh_matrix.run(*options, "--envmatrix-rebuild").assert_outcomes(passed=2)
    assert builds() == 3

    # new build metadata: new environments, and one new build for them, with the new metadata
    pyproject.write_text(pyproject.read_text().replace('version = "0.1"', 'version = "0.2"'))
    (project.path / "tests" / "test_version.py").write_text(
        "import importlib.metadata, pytest\n\n"
        "@pytest.mark.envmatrix(emx_demo=['1.0', '2.0'])\n"
        "def test_installed_version():\n"
        "    assert importlib.metadata.version('emx-app') == '0.2'\n"
    )
    fresh_matrix.run(*options).assert_outcomes(passed=4)
    assert builds() == 4
    assert [m["project"] for m in fresh_matrix.envs().values()] == [str(project.path)] * 4


def test_project_none_installs_nothing(fresh_matrix, project):
    project.makeini("[pytest]\nenvmatrix_project = none\n")
    (project.path / "tests" / "test_app.py").write_text(
        "import importlib.metadata, pytest\n\n"
        "@pytest.mark.envmatrix(emx_demo=['1.0'])\n"
        "def test_not_installed():\n"
        "    with pytest.raises(importlib.metadata.PackageNotFoundError):\n"
        "        importlib.metadata.distribution('emx-app')\n"
    )
    fresh_matrix.run().assert_outcomes(passed=1)
    assert [m["project"] for m in fresh_matrix.envs().values()] == [None]


def test_python_axis_runs_each_interpreter_and_skips_a_missing_one(matrix):
    matrix.pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.envmatrix(python=["3.10", "3.12", "3.99"], emx_demo=["1.0"])
        def test_interpreter(envmatrix_combination):
            assert "%d.%d" % sys.version_info[:2] == envmatrix_combination["python"]
        """
    )
    result = matrix.run("-v", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_interpreter[[]py3.10-emx_demo-1.0[]] PASSED*",
            "*::test_interpreter[[]py3.12-emx_demo-1.0[]] PASSED*",
            "*::test_interpreter[[]py3.99-emx_demo-1.0[]] SKIPPED*",
            "SKIPPED [[]1[]] *: envmatrix: python 3.99 was not found on this machine",
        ]
    )


def test_the_environments_bytecode_is_cached_in_the_environment_cache_not_in_the_users_tree(fresh_matrix, monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    # the run is in this process: it must behave as one started with the variable set, whatever ours was
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    fresh_matrix.pytester.makepyfile(
        helper="VALUE = 1\n",
        test_bytecode="""
        import sys
        import pytest

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_compiled():
            import emx_demo, helper
        """,
    )
    fresh_matrix.run().assert_outcomes(passed=1)
    prefix = fresh_matrix.cache / "pycache"
    (env_dir,) = (fresh_matrix.cache / "envs").iterdir()
    compiled = [str(p) for p in prefix.rglob("*.pyc")]
    assert any(p.startswith(str(prefix / env_dir.relative_to(env_dir.anchor))) and "/emx_demo/__init__." in p for p in compiled)
    # the user's own module: compiled in every run, as with the variable set it is by the user's pytest
    # (see test_damaged_bytecode.py), and written nowhere
    assert not any("/helper." in p for p in compiled)
    assert not list(fresh_matrix.pytester.path.rglob("__pycache__"))

    # the standard library's bytecode is linked, not compiled again
    json_source = Path(json.__file__)
    linked = prefix / json_source.parent.relative_to(json_source.anchor) / f"__init__.{sys.implementation.cache_tag}.pyc"
    assert linked.is_symlink()
    assert Path(os.readlink(linked)) == json_source.parent / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc"
