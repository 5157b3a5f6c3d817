"""benchmod's array functions. The parent pytest collects this module without
numpy, so numpy and benchmod are imported inside each test."""

import pytest

NUMPY_VERSIONS = ["1.26.4", "2.0.2", "2.1.3", "2.2.6"]

pytestmark = pytest.mark.envmatrix(numpy=NUMPY_VERSIONS)


def test_numpy_is_one_of_the_matrix_versions():
    import numpy as np

    assert np.__version__ in NUMPY_VERSIONS


def test_moving_average_of_a_ramp():
    import numpy as np

    from benchmod import moving_average

    assert np.allclose(moving_average([1, 2, 3, 4, 5], 3), [2.0, 3.0, 4.0])


def test_moving_average_window_of_one_is_the_input():
    from benchmod import moving_average

    assert moving_average([4, 8, 15], 1).tolist() == [4.0, 8.0, 15.0]


def test_moving_average_rejects_a_window_longer_than_the_data():
    from benchmod import moving_average

    with pytest.raises(ValueError):
        moving_average([1, 2], 3)


def test_normalize_has_zero_mean_and_unit_spread():
    import numpy as np

    from benchmod import normalize

    out = normalize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert np.isclose(out.mean(), 0.0)
    assert np.isclose(out.std(), 1.0)


def test_normalize_of_a_constant_is_zeros():
    from benchmod import normalize

    assert normalize([3, 3, 3]).tolist() == [0.0, 0.0, 0.0]


def test_clip_outliers_pulls_in_the_extreme_value():
    from benchmod import clip_outliers

    out = clip_outliers([1.0] * 20 + [100.0], 2)
    assert out.max() < 100.0
    assert out.min() == 1.0


def test_clip_outliers_leaves_tight_data_alone():
    from benchmod import clip_outliers

    assert clip_outliers([1.0, 2.0, 3.0], 10).tolist() == [1.0, 2.0, 3.0]


def test_float32_arithmetic_keeps_float32():
    import numpy as np

    assert (np.float32(1.5) * np.float32(2)).dtype == np.float32


def test_sorting_is_stable_for_equal_keys():
    import numpy as np

    keys = np.array([2, 1, 2, 1])
    assert np.argsort(keys, kind="stable").tolist() == [1, 3, 0, 2]
