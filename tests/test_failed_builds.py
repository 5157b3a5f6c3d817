"""A build that failed is remembered for a short time, keyed like its environment, so a red matrix reruns fast."""

from __future__ import annotations

import json
import shutil
import time

TEST = """
import pytest

@pytest.mark.envmatrix(emx_late=["1.0"])
def test_late():
    import emx_late
"""


def late_wheel(build_wheel, tmp_path):
    """emx-late 1.0: in no folder the run knows of, until a test puts it in one."""
    folder = tmp_path / "late-source"
    folder.mkdir()
    return build_wheel(folder, "emx-late", "1.0", {"emx_late/__init__.py": ""})


def failure_files(cache):
    return list((cache / "failed").glob("*.json"))


def test_a_failed_build_is_not_tried_again_until_rebuild(fresh_matrix, tmp_path):
    from conftest import build_wheel

    wheel = late_wheel(build_wheel, tmp_path)
    folder = tmp_path / "late-wheels"  # a find-links folder of this test's own, empty for now
    folder.mkdir()
    fresh_matrix.wheel_dirs.append(folder)
    fresh_matrix.pytester.makepyfile(test_late=TEST)
    first = fresh_matrix.run()
    first.assert_outcomes(errors=1)
    first.stdout.fnmatch_lines(["*could not build emx-late==1.0*", "*could not install*"])
    assert "ago" not in first.stdout.str()
    # the wheel appears where the run looks: the environment's key is the same, so the failure stands
    shutil.copy(wheel, folder / wheel.name)
    second = fresh_matrix.run()
    second.assert_outcomes(errors=1)
    second.stdout.fnmatch_lines(
        ["*could not build emx-late==1.0*", "failed * s ago: * could not install *; --envmatrix-rebuild to retry"]
    )
    second.stdout.fnmatch_lines(["*0 built*, 0 reused, 1 failed to build*"])
    third = fresh_matrix.run("--envmatrix-rebuild")
    third.assert_outcomes(passed=1)
    assert not failure_files(fresh_matrix.cache)  # a build that worked forgets the failure


def test_a_change_of_the_environments_key_tries_again(fresh_matrix, tmp_path):
    from conftest import build_wheel

    wheel = late_wheel(build_wheel, tmp_path)
    fresh_matrix.pytester.makepyfile(test_late=TEST)
    fresh_matrix.run().assert_outcomes(errors=1)
    assert len(failure_files(fresh_matrix.cache)) == 1
    # another find-links folder is another key: nothing is remembered for it
    result = fresh_matrix.run(f"--envmatrix-find-links={wheel.parent}")
    result.assert_outcomes(passed=1)
    assert "ago" not in result.stdout.str()


def test_an_old_or_unreadable_failure_record_is_ignored(fresh_matrix, tmp_path):
    fresh_matrix.pytester.makepyfile(test_late=TEST)
    fresh_matrix.run().assert_outcomes(errors=1)
    (record,) = failure_files(fresh_matrix.cache)
    data = json.loads(record.read_text())
    for content in (
        json.dumps(dict(data, at=time.time() - 3600)),  # an hour ago: too old to trust
        json.dumps(dict(data, key="0" * 64)),  # another environment's
        json.dumps(dict(data, at="yesterday")),
        "{not json",
        json.dumps(["a list"]),
    ):
        record.write_text(content)
        result = fresh_matrix.run()
        result.assert_outcomes(errors=1)
        assert "ago" not in result.stdout.str(), content  # tried again, and failed again for real
        result.stdout.fnmatch_lines(["*could not install*"])
