"""The parent pytest collects this module without numpy installed, so numpy (the
``np`` fixture, see conftest.py) and statskit (which imports numpy) are imported
inside the tests, where each combination provides its own numpy. Under plain
``pytest``, without numpy, the tests skip and say how to run the matrix."""

import pytest

NUMPY_VERSIONS = ["1.26.4", "2.1.3"]


@pytest.mark.envmatrix(numpy=NUMPY_VERSIONS)
def test_mean(np, envmatrix_combination):
    import statskit

    if envmatrix_combination:  # inside a matrix run: the pinned numpy is the one imported
        assert np.__version__ == envmatrix_combination["numpy"]
    assert statskit.mean([1, 2, 3, 4]) == 2.5


@pytest.mark.envmatrix(numpy=NUMPY_VERSIONS)
def test_fee_keeps_double_precision(np):
    """Passes on numpy 1.26.4, fails on 2.x: NEP 50 keeps float32 + float in float32."""
    import statskit

    total = statskit.with_fee(np.float32(19.99), 0.01)
    assert total.dtype == np.float64
