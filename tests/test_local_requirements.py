"""Requirements that name a local file or directory: the environment follows their content."""

from __future__ import annotations


from conftest import build_wheel

USES = """
import pytest

@pytest.mark.envmatrix(deps=[{requirement!r}])
def test_content():
    import emx_local
    assert emx_local.CONTENT == {expected!r}
"""


def test_a_wheel_rebuilt_at_the_same_path_gets_a_new_environment(fresh_matrix, tmp_path):
    wheels = tmp_path / "local-wheels"
    wheels.mkdir()
    wheel = build_wheel(wheels, "emx-local", "1.0", {"emx_local/__init__.py": "CONTENT = 'X'\n"})
    requirement = f"emx-local @ {wheel.as_uri()}"
    fresh_matrix.pytester.makepyfile(USES.format(requirement=requirement, expected="X"))
    fresh_matrix.run().assert_outcomes(passed=1)

    wheel.unlink()
    assert build_wheel(wheels, "emx-local", "1.0", {"emx_local/__init__.py": "CONTENT = 'Y'\n"}) == wheel
    fresh_matrix.pytester.makepyfile(USES.format(requirement=requirement, expected="Y"))
    result = fresh_matrix.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])

    fresh_matrix.run().stdout.fnmatch_lines(["*0 built*, 1 reused*"])  # unchanged content: reused


PYPROJECT = """
[build-system]
requires = ["flit_core>=3.4,<4"]
build-backend = "flit_core.buildapi"

[project]
name = "emx-local"
version = "1.0"
description = "a local directory requirement"
"""


def test_a_directory_whose_source_changed_gets_a_new_environment(fresh_matrix, tmp_path):
    source = tmp_path / "emx-local"
    (source / "emx_local").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    module = source / "emx_local" / "__init__.py"
    module.write_text("CONTENT = 'X'\n")
    requirement = f"emx-local @ {source.as_uri()}"
    fresh_matrix.pytester.makepyfile(USES.format(requirement=requirement, expected="X"))
    fresh_matrix.run().assert_outcomes(passed=1)

    module.write_text("CONTENT = 'Y'\n")  # the source only: the build metadata is unchanged
    fresh_matrix.pytester.makepyfile(USES.format(requirement=requirement, expected="Y"))
    result = fresh_matrix.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])

    fresh_matrix.run().stdout.fnmatch_lines(["*0 built*, 1 reused*"])
