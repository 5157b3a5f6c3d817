"""One package from an index of its own, every other package from where it came before.

The made-up ``emx-demo`` is published twice: in the ordinary wheel folder
(``answer()`` is 1) and in a second folder, as ``1.0+own`` (``answer()`` is
100), beside an ``emx-extra`` 9.0 that must never be taken, however high
its version: the second folder serves emx-demo alone. uv reads no index
option of the machine here (see ``hermetic_installer``); an empty folder
stands for the default index, since ``--envmatrix-no-index`` would switch
the package's own index off too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import build_wheel
from pytest_envmatrix.installer import find_uv

pytestmark = pytest.mark.skipif(find_uv() is None, reason="a package index of its own is uv's; uv is not installed")

TESTS = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0"], deps=["emx-extra"])
def test_own_index():
    import emx_demo, emx_extra
    assert emx_demo.__version__ == "1.0+own"
    assert emx_demo.answer() == 100
    assert emx_extra.VALUE == "extra"

@pytest.mark.envmatrix(emx_extra=["1.0"])
def test_without_the_package():
    import emx_extra
    assert emx_extra.VALUE == "extra"
"""


@pytest.fixture(scope="module")
def own_index(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("own-index")
    build_wheel(folder, "emx-demo", "1.0+own", {"emx_demo/__init__.py": "__version__ = '1.0+own'\n\ndef answer():\n    return 100\n"})
    build_wheel(folder, "emx-extra", "9.0", {"emx_extra/__init__.py": "VALUE = 'from the wrong index'\n"})
    return folder


@pytest.fixture
def run(pytester, tmp_path, demo_wheels, base_wheels, hermetic_installer, uv_cache):
    empty = tmp_path / "empty-index"
    empty.mkdir()
    pytester.makepyfile(TESTS)

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest(
            "--envmatrix", f"--envmatrix-cache-dir={tmp_path / 'cache'}", f"--envmatrix-index-url={empty.as_uri()}",
            f"--envmatrix-find-links={demo_wheels}", f"--envmatrix-find-links={base_wheels}", *args,
        )

    run.cache = tmp_path / "cache"
    return run


@pytest.fixture
def uv_cache(tmp_path, monkeypatch) -> Path:
    """A uv cache of this test's own: two folders offer the same file name, and uv caches by it."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return tmp_path / "uv-cache"


def marks(cache: Path) -> list[dict]:
    import json

    return [json.loads(p.read_text()) for p in sorted((cache / "envs").glob("*/envmatrix.json"))]


def test_the_package_comes_from_its_own_index_and_the_others_do_not(run, own_index):
    result = run(f"--envmatrix-package-index=emx-demo={own_index}", "-k", "test_own_index")
    result.assert_outcomes(passed=1)
    (mark,) = marks(run.cache)
    assert mark["package_index"] == [["emx-demo", str(own_index)]]


def test_the_ini_table_gives_the_same_and_a_relative_folder_is_relative_to_the_ini_file(run, own_index, pytester):
    pytester.makeini(f"[pytest]\nenvmatrix_package_index =\n    # torch = https://download.pytorch.org/whl/cpu\n    Emx_Demo = {own_index.name}\n")
    (pytester.path / own_index.name).symlink_to(own_index)
    run("-k", "test_own_index").assert_outcomes(passed=1)


def test_its_own_index_is_the_only_place_the_package_comes_from(run, own_index, pytester):
    """emx-demo 2.0 is in the ordinary wheel folder, not in its own index: no environment, never the other file."""
    pytester.makepyfile(test_two="""
        import pytest

        @pytest.mark.envmatrix(emx_demo=["2.0"])
        def test_two():
            pass
    """)
    result = run(f"--envmatrix-package-index=emx-demo={own_index}", "test_two.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not build emx-demo==2.0*"])


def test_the_package_index_is_part_of_the_key_of_the_environments_that_name_the_package(run, own_index, tmp_path):
    run(f"--envmatrix-package-index=emx-demo={own_index}").assert_outcomes(passed=2)
    moved = tmp_path / "moved-index"
    shutil.copytree(own_index, moved)  # the same wheels elsewhere: another index, as far as anyone can tell
    result = run(f"--envmatrix-package-index=emx-demo={moved}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 built*, 1 reused*"])  # only the environment holding emx-demo
    assert sorted(str(m.get("package_index")) for m in marks(run.cache)) == sorted(
        [str([["emx-demo", str(own_index)]]), str([["emx-demo", str(moved)]]), "None"]
    )


def test_a_torch_backend_is_passed_to_uv_and_is_part_of_the_key(run):
    run("-k", "test_without_the_package").assert_outcomes(passed=1)
    result = run("-k", "test_without_the_package", "--envmatrix-torch-backend=cpu")
    result.assert_outcomes(passed=1)  # uv's torch backend leaves packages outside PyTorch's alone
    result.stdout.fnmatch_lines(["*1 built*, 0 reused*"])
    assert sorted(str(m.get("torch_backend")) for m in marks(run.cache)) == ["None", "cpu"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--envmatrix-installer=pip", "--envmatrix-package-index=torch=https://download.pytorch.org/whl/cpu"],
            "ERROR: envmatrix: a package index of its own (torch) needs the uv installer: pip has no per-package index, and its "
            "--extra-index-url would let any package come from either index (dependency confusion)*",
        ),
        (
            ["--envmatrix-installer=pip", "--envmatrix-torch-backend=cpu"],
            "ERROR: envmatrix: a torch backend needs the uv installer (pip has no --torch-backend)*",
        ),
        (
            ["--envmatrix-no-index", "--envmatrix-package-index=emx-demo=wheels"],
            "ERROR: envmatrix: --envmatrix-no-index (envmatrix_no_index) switches off every index, the package index of emx-demo too*",
        ),
        (["--envmatrix-package-index=torch"], "ERROR: --envmatrix-package-index: 'torch' is not a package index: write name = URL or folder*"),
        (["--envmatrix-torch-backend=cuda"], "ERROR: --envmatrix-torch-backend: 'cuda' is not a PyTorch backend uv knows*"),
    ],
    ids=["pip", "pip-torch-backend", "no-index", "no-equals", "bad-backend"],
)
def test_what_cannot_be_honoured_stops_the_run(run, args, message):
    result = run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
