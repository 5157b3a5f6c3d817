"""The bytecode the children write into the cache: never half-written, and a damaged file is recompiled."""

import marshal
import os
import subprocess

import pytest

TEST_FILE = """
import pytest

@pytest.mark.envmatrix(emx_demo=["1.0"])
def test_ok():
    import emx_demo
    assert emx_demo.answer() == 1
"""


def damaged(pycache):
    """The bytecode files under ``pycache`` that do not load, as importlib would find them."""
    bad = []
    for pyc in pycache.rglob("*.pyc"):
        if pyc.is_symlink():
            continue  # links to the standard library's own bytecode
        try:
            marshal.loads(pyc.read_bytes()[16:])
        except (EOFError, ValueError, TypeError):
            bad.append(pyc)
    return bad


@pytest.fixture
def bytecode_matrix(fresh_matrix, monkeypatch):
    """A run whose children write their bytecode into the cache's ``pycache`` folder."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    fresh_matrix.pytester.makepyfile(TEST_FILE)
    fresh_matrix.run().assert_outcomes(passed=1)
    return fresh_matrix


def test_a_truncated_bytecode_file_in_the_cache_is_recompiled(bytecode_matrix):
    pycache = bytecode_matrix.cache / "pycache"
    (compiled,) = [p for p in pycache.rglob("_pytest/python.*.pyc") if not p.is_symlink()]
    with open(compiled, "r+b") as f:
        f.truncate(8192)  # what a full disk left: the first pages, under the final name
    assert damaged(pycache) == [compiled]

    result = bytecode_matrix.run()
    result.assert_outcomes(passed=1)
    assert damaged(pycache) == []


def test_a_full_disk_leaves_no_half_written_bytecode_and_the_next_run_passes(bytecode_matrix):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the bytecode folder needs root")
    pycache = bytecode_matrix.cache / "pycache"
    needed = sum(p.stat().st_size for p in pycache.rglob("*") if p.is_file() and not p.is_symlink())
    subprocess.run(["rm", "-rf", str(pycache)], check=True, timeout=60)
    pycache.mkdir()
    size = needed + 2 * 1024 * 1024
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(pycache)], capture_output=True, text=True, timeout=60)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        filler = pycache / "filler"
        with open(filler, "wb") as f:
            # leave room for about half of what the child writes: its later bytecode writes hit ENOSPC,
            # one of them part way through the file
            f.write(b"\0" * (size - needed // 2))
        bytecode_matrix.run().assert_outcomes(passed=1)
        assert [p.name for p in pycache.rglob("*.tmp")] == []

        filler.unlink()  # space freed
        bytecode_matrix.run().assert_outcomes(passed=1)
        bytecode_matrix.run().assert_outcomes(passed=1)
        assert damaged(pycache) == []
    finally:
        subprocess.run(["umount", "-l", str(pycache)], check=False, timeout=60)



def rewrite_keeping_size_and_time(path, old: str, new: str) -> None:
    """An edit within the same second that keeps the file's size: what a timestamp-checked .pyc cannot see."""
    assert len(old) == len(new)
    before = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def test_with_bytecode_off_an_edit_of_the_same_size_in_the_same_second_runs_as_edited(bytecode_matrix):
    """The children keep bytecode for their environment's files only: the project's and the tests' are
    compiled in every run, as the user's own pytest with PYTHONDONTWRITEBYTECODE compiles them."""
    pytester = bytecode_matrix.pytester
    helper = pytester.makepyfile(emx_helper="FACTOR = 2\n")
    tests = pytester.makepyfile(
        test_edited="""
        import pytest
        from emx_helper import FACTOR

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_helper():
            assert FACTOR == 2

        @pytest.mark.envmatrix(emx_demo=["1.0"])
        def test_body():
            assert 1 + 1 == 2
        """
    )
    bytecode_matrix.run("test_edited.py").assert_outcomes(passed=2)
    bytecode_matrix.run("test_edited.py").assert_outcomes(passed=2)  # the bytecode, were it written, is there now
    rewrite_keeping_size_and_time(helper, "FACTOR = 2", "FACTOR = 7")
    rewrite_keeping_size_and_time(tests, "1 + 1 == 2", "1 + 1 == 3")
    result = bytecode_matrix.run("test_edited.py")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random(["*assert 7 == 2*", "*assert (1 + 1) == 3*"])
    # an imported module's bytecode is not even written (pytest's own for the test module is, and never read)
    assert not list((bytecode_matrix.cache / "pycache").rglob("emx_helper.*.pyc"))
