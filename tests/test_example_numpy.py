"""End to end against the real package index: the example project, real numpy 1.26.4 and 2.1.3.

Not hermetic on purpose: it proves the path a user takes, with this machine's
own installer settings.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "numpy-project"
EXPECTED = (
    "tests/test_stats.py::test_mean[numpy-1.26.4] PASSED",
    "tests/test_stats.py::test_mean[numpy-2.1.3] PASSED",
    "tests/test_stats.py::test_fee_keeps_double_precision[numpy-1.26.4] PASSED",
    "tests/test_stats.py::test_fee_keeps_double_precision[numpy-2.1.3] FAILED",
)


@pytest.mark.network
@pytest.mark.skipif(sys.version_info < (3, 10), reason="the example's numpy 2.1.3 needs Python 3.10 or later")
def test_example_project_shows_the_numpy_2_difference_and_reuses_its_environments(tmp_path):
    project = tmp_path / "numpy project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    cache = tmp_path / "envcache"
    command = [sys.executable, "-m", "pytest", "--envmatrix", f"--envmatrix-cache-dir={cache}", "-v", "-p", "no:randomly"]

    start = time.monotonic()
    first = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900)
    cold = time.monotonic() - start
    out = first.stdout
    assert first.returncode == 1, out + first.stderr
    for line in EXPECTED:
        assert line in out, out
    # the real difference, shown in the child's traceback
    assert "dtype('float32') == <class 'numpy.float64'>" in out
    assert "2 built" in out

    start = time.monotonic()
    second = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300)
    warm = time.monotonic() - start
    assert second.returncode == 1
    assert "0 built" in second.stdout and "2 reused" in second.stdout, second.stdout
    print(f"example project: cold {cold:.1f}s, warm {warm:.1f}s ({cold / warm:.1f}x)")


@pytest.mark.network
def test_example_project_as_a_suite_wide_matrix_from_a_parent_without_numpy(tmp_path):
    from pytest_envmatrix.installer import find_uv

    uv = find_uv()
    if uv is None:
        pytest.skip("uv is needed to make the parent's environment quickly (the test extra installs it)")
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    parent = tmp_path / "parent"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(parent)], check=True)
    python = parent / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), "-e", str(EXAMPLE.parent.parent)], check=True)
    assert subprocess.run([str(python), "-c", "import numpy"], capture_output=True).returncode != 0, "the parent has numpy"

    command = [
        str(python), "-m", "pytest", "--envmatrix", "--envmatrix-axis=numpy=1.26.4,2.1.3",
        f"--envmatrix-cache-dir={tmp_path / 'envcache'}", "-v", "-p", "no:randomly",
    ]
    run = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900)
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    for line in EXPECTED:
        assert line in out, out
    assert "dtype('float32') == <class 'numpy.float64'>" in out


def test_the_example_under_plain_pytest_without_numpy_skips_saying_how_to_run_the_matrix(tmp_path):
    """A newcomer's first try is often plain ``pytest``, where numpy is not installed: no bare ImportError."""
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    hidden = tmp_path / "no-numpy" / "numpy"  # whatever this machine has, numpy is absent for this run
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'numpy'\", name='numpy')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(hidden.parent)
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, timeout=120, env=env,
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "2 skipped" in plain.stdout, plain.stdout
    assert "numpy is not installed here: run the matrix with pytest --envmatrix" in plain.stdout, plain.stdout


@pytest.mark.network
@pytest.mark.skipif(sys.version_info < (3, 10), reason="numpy 2.1.3 needs Python 3.10 or later")
def test_the_upgrade_check_finds_the_numpy_2_regression_from_1_26_4(tmp_path):
    """From an environment with numpy 1.26.4 and the example installed editable, as a user has it."""
    from pytest_envmatrix.installer import find_uv

    uv = find_uv()
    if uv is None:
        pytest.skip("uv is needed to make the parent's environment quickly (the test extra installs it)")
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    parent = tmp_path / "parent"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(parent)], check=True, timeout=300)
    python = parent / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "-e", str(EXAMPLE.parent.parent), "-e", str(project),
         "numpy==1.26.4", f"pytest=={pytest.__version__}"],
        check=True,
        timeout=900,
    )
    command = [
        str(python), "-m", "pytest", "--envmatrix-upgrade=numpy==2.1.3", f"--envmatrix-cache-dir={tmp_path / 'envcache'}",
        "-p", "no:randomly",
    ]
    run = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900)
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    assert "upgraded: numpy 1.26.4 -> 2.1.3" in out, out
    assert (
        "regression  tests/test_stats.py::test_fee_keeps_double_precision  "
        "fails after: AssertionError: assert dtype('float32') == <class 'numpy.float64'>"
    ) in out, out
    assert "0 regression(s)" not in out and "1 regression(s), 0 fixed, 1 unchanged" in out, out


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the example's numpy 2.1.3 needs Python 3.10 or later")
def test_bisect_finds_numpy_2_0_0_as_the_first_release_with_nep_50(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    command = [
        sys.executable, "-m", "pytest", "--envmatrix-bisect", "numpy", "--envmatrix-good=1.26.4", "--envmatrix-bad=2.1.3",
        "-k", "fee", f"--envmatrix-cache-dir={tmp_path / 'envcache'}", "-p", "no:randomly",
    ]
    run = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=1200)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "envmatrix bisect: last good: numpy 1.26.4\nenvmatrix bisect: first bad: numpy 2.0.0\n" in out, out
    assert "dtype('float32') == <class 'numpy.float64'>" in out
    # six releases between 1.26.4 and 2.1.3 (2.0.0 to 2.1.2): the two ends and at most three more
    assert "envmatrix bisect: probe 6:" not in out, out
