"""A throwaway environment cannot damage anything outside itself.

uv links installed files from its own cache (hard links, by default): a test
that writes an installed file in place would change that file in every
environment holding the package, and in uv's cache, which other projects on
the machine share. Environments are filled with copies unless the user asks
otherwise, and ``--envmatrix-rebuild`` installs again, without uv's cache,
every distribution whose files differ from their RECORD hashes, so it gives a
correct environment even after such damage.

Every test here gives uv a cache of its own under ``tmp_path``: the machine's
is never touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_envmatrix.installer import find_uv

pytestmark = pytest.mark.skipif(find_uv() is None, reason="link modes are uv's; uv is not installed")

DAMAGE = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0"])
def test_damage():
    import emx_demo
    with open(emx_demo.__file__, "w") as module:
        module.write("def answer():\\n    return 666\\n")

@pytest.mark.envmatrix(emx_demo=["1.0"], deps=["emx-extra"])
def test_intact():
    import emx_demo
    assert emx_demo.answer() == 1
"""


@pytest.fixture
def uv_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))
    return cache


def damaged_files(uv_cache: Path) -> list[Path]:
    """The copies of emx_demo in uv's cache that the damaging test wrote to."""
    return [p for p in uv_cache.rglob("emx_demo/__init__.py") if "return 666" in p.read_text()]


def test_a_test_that_writes_an_installed_file_damages_only_its_own_environment(fresh_matrix, uv_cache):
    fresh_matrix.pytester.makepyfile(DAMAGE)
    fresh_matrix.run("-k", "test_damage").assert_outcomes(passed=1)
    assert list(uv_cache.rglob("emx_demo/__init__.py"))  # the package went through this cache
    assert damaged_files(uv_cache) == []
    result = fresh_matrix.run("-k", "test_intact")  # a new environment with the same package
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])
    assert damaged_files(uv_cache) == []


def test_with_hard_links_the_damage_spreads_and_rebuild_still_gives_a_correct_environment(fresh_matrix, uv_cache):
    fresh_matrix.pytester.makepyfile(DAMAGE)
    fresh_matrix.run("-k", "test_damage", "--envmatrix-link-mode=hardlink").assert_outcomes(passed=1)
    assert damaged_files(uv_cache) != []  # what copies protect against
    fresh_matrix.run("-k", "test_intact", "--envmatrix-link-mode=hardlink").assert_outcomes(failed=1)

    result = fresh_matrix.run("-k", "test_intact", "--envmatrix-link-mode=hardlink", "--envmatrix-rebuild")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])


def test_the_link_mode_is_part_of_the_environment_key(fresh_matrix, uv_cache):
    fresh_matrix.pytester.makepyfile(DAMAGE)
    fresh_matrix.run("-k", "test_intact").assert_outcomes(passed=1)
    result = fresh_matrix.run("-k", "test_intact", "--envmatrix-link-mode=hardlink")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])
    assert sorted(mark["link_mode"] for mark in fresh_matrix.envs().values()) == ["copy", "hardlink"]


def test_a_bad_link_mode_is_a_usage_error(fresh_matrix, uv_cache):
    fresh_matrix.pytester.makepyfile(DAMAGE)
    fresh_matrix.pytester.makeini("[pytest]\nenvmatrix_link_mode = reflink\n")
    result = fresh_matrix.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option envmatrix_link_mode: 'reflink' is not one of copy, hardlink, clone, symlink*"])


def installed(cache: Path, package: str) -> list[Path]:
    return sorted(cache.glob(f"envs/*/lib/python*/site-packages/{package}/__init__.py"))


def test_clone_never_leaves_hard_links_so_a_write_stays_in_its_environment(fresh_matrix, uv_cache):
    """Where the filesystem cannot clone (ext4, tmpfs), uv's clone makes hard links: they are replaced by copies."""
    fresh_matrix.pytester.makepyfile(DAMAGE)
    fresh_matrix.run("-k", "test_damage", "--envmatrix-link-mode=clone").assert_outcomes(passed=1)
    assert damaged_files(uv_cache) == []
    fresh_matrix.run("-k", "test_intact", "--envmatrix-link-mode=clone").assert_outcomes(passed=1)


def test_a_shared_package_stays_linked_to_uvs_cache_and_every_other_package_is_copied(fresh_matrix, uv_cache):
    fresh_matrix.pytester.makepyfile(DAMAGE)
    fresh_matrix.pytester.makeini("[pytest]\nenvmatrix_shared_packages =\n    EMX_Extra\n")
    result = fresh_matrix.run("-k", "test_intact", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["envmatrix: installer uv (link mode copy; emx-extra shared with uv's cache), cache *"])
    (extra,) = installed(fresh_matrix.cache, "emx_extra")
    (demo,) = installed(fresh_matrix.cache, "emx_demo")
    assert extra.stat().st_nlink > 1  # the same file as uv's cache entry: one copy for any number of environments
    assert demo.stat().st_nlink == 1
    listed = fresh_matrix.run("-k", "test_intact", "--envmatrix-list")
    listed.stdout.fnmatch_lines(["*on disk: * MB (hard links counted once), * kB of it shared with uv's cache or other environments"])
    assert "0.0 kB of it shared" not in listed.stdout.str()

    # a package that is not shared is the environment's own: writing it leaves uv's cache alone
    fresh_matrix.run("-k", "test_damage").assert_outcomes(passed=1)
    assert damaged_files(uv_cache) == []


def test_shared_packages_are_part_of_the_environment_key(fresh_matrix, uv_cache):
    fresh_matrix.pytester.makepyfile(DAMAGE)
    fresh_matrix.run("-k", "test_intact").assert_outcomes(passed=1)
    result = fresh_matrix.run("-k", "test_intact", "--envmatrix-shared-package=emx-extra")
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])
    assert sorted(str(mark.get("shared_packages")) for mark in fresh_matrix.envs().values()) == ["None", "['emx-extra']"]


def test_a_bad_shared_package_name_is_a_usage_error(fresh_matrix, uv_cache):
    fresh_matrix.pytester.makepyfile(DAMAGE)
    result = fresh_matrix.run("--envmatrix-shared-package=not a name!")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--envmatrix-shared-package: 'not a name!' is not a valid distribution name*"])
