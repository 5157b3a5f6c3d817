"""benchtop's array functions, with numpy and the module under test imported at the top:
the parent pytest imports numpy while it collects this module."""

import numpy as np
import pytest

from benchtop import clip_outliers, moving_average, normalize

NUMPY_VERSIONS = ["1.26.4", "2.0.2", "2.1.3", "2.2.6"]

pytestmark = pytest.mark.envmatrix(numpy=NUMPY_VERSIONS)


def test_numpy_is_one_of_the_matrix_versions():
    assert np.__version__ in NUMPY_VERSIONS


def test_moving_average_of_a_ramp():
    assert np.allclose(moving_average([1, 2, 3, 4, 5], 3), [2.0, 3.0, 4.0])


def test_moving_average_window_of_one_is_the_input():
    assert moving_average([4, 8, 15], 1).tolist() == [4.0, 8.0, 15.0]


def test_moving_average_rejects_a_window_longer_than_the_data():
    with pytest.raises(ValueError):
        moving_average([1, 2], 3)


def test_normalize_has_zero_mean_and_unit_spread():
    out = normalize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert np.isclose(out.mean(), 0.0)
    assert np.isclose(out.std(), 1.0)


def test_normalize_of_a_constant_is_zeros():
    assert normalize([3, 3, 3]).tolist() == [0.0, 0.0, 0.0]


def test_clip_outliers_pulls_in_the_extreme_value():
    out = clip_outliers([1.0] * 20 + [100.0], 2)
    assert out.max() < 100.0
    assert out.min() == 1.0


def test_clip_outliers_leaves_tight_data_alone():
    assert clip_outliers([1.0, 2.0, 3.0], 10).tolist() == [1.0, 2.0, 3.0]


def test_float32_arithmetic_keeps_float32():
    assert (np.float32(1.5) * np.float32(2)).dtype == np.float32


def test_sorting_is_stable_for_equal_keys():
    keys = np.array([2, 1, 2, 1])
    assert np.argsort(keys, kind="stable").tolist() == [1, 3, 0, 2]
