"""Children share the CPUs: BLAS and OpenMP thread pools sized so that children x threads fits the machine."""

from __future__ import annotations

import os

import pytest

THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
    "BLIS_NUM_THREADS",
)

SEES = """
import os
import pytest

EXPECTED = {expected!r}

@pytest.mark.envmatrix(emx_demo=["1.0", "2.0"])
def test_sees_its_share():
    assert {{name: os.environ.get(name) for name in EXPECTED}} == EXPECTED
"""


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.fixture
def no_thread_variables(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("jobs", [1, 2])
def test_each_child_gets_its_share_of_the_cpus(matrix, no_thread_variables, jobs):
    share = str(max(1, _cpus() // jobs))
    matrix.pytester.makepyfile(test_sees=SEES.format(expected={name: share for name in THREAD_VARIABLES}))
    result = matrix.run(f"--envmatrix-jobs={jobs}")
    result.assert_outcomes(passed=2)


def test_a_variable_the_user_set_is_passed_unchanged(matrix, no_thread_variables):
    no_thread_variables.setenv("OPENBLAS_NUM_THREADS", "7")
    expected = {name: str(max(1, _cpus() // 2)) for name in THREAD_VARIABLES}
    expected["OPENBLAS_NUM_THREADS"] = "7"
    matrix.pytester.makepyfile(test_sees=SEES.format(expected=expected))
    result = matrix.run("--envmatrix-jobs=2")
    result.assert_outcomes(passed=2)


def test_one_environment_alone_gets_every_cpu(matrix, no_thread_variables):
    matrix.pytester.makepyfile(
        test_sees=SEES.format(expected={name: str(_cpus()) for name in THREAD_VARIABLES}).replace('"1.0", "2.0"', '"1.0"')
    )
    result = matrix.run("--envmatrix-jobs=2")
    result.assert_outcomes(passed=1)


def test_under_xdist_each_worker_s_child_gets_its_share(matrix, no_thread_variables):
    # an xdist worker runs one child at a time, beside the other workers' children
    matrix.pytester.makepyfile(test_sees=SEES.format(expected={name: str(max(1, _cpus() // 2)) for name in THREAD_VARIABLES}))
    result = matrix.run("-n", "2", "--envmatrix-jobs=1")
    result.assert_outcomes(passed=2)
