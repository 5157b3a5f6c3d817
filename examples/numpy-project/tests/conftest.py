import pytest


@pytest.fixture
def np(envmatrix_combination):
    """numpy: the combination's in a matrix run; in a plain run, this environment's, or a skip saying what to do."""
    if envmatrix_combination is None:
        return pytest.importorskip("numpy", reason="numpy is not installed here: run the matrix with pytest --envmatrix")
    import numpy

    return numpy
