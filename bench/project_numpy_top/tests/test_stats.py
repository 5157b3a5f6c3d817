"""benchtop's statistics functions, with numpy and the module under test imported at the top:
the parent pytest imports numpy while it collects this module."""

import numpy as np
import pytest

from benchtop import cumulative_returns, histogram_counts, weighted_mean

pytestmark = pytest.mark.envmatrix(numpy=["1.26.4", "2.0.2", "2.1.3", "2.2.6"])


def test_histogram_counts_every_value_once():
    counts = histogram_counts([1, 2, 2, 3, 3, 3, 4, 4, 4, 4], bins=4)
    assert counts == [1, 2, 3, 4]


def test_histogram_counts_are_plain_ints():
    assert all(type(c) is int for c in histogram_counts([0.5, 1.5], bins=2))


def test_weighted_mean_with_equal_weights_is_the_mean():
    assert weighted_mean([1, 2, 3, 4], [1, 1, 1, 1]) == 2.5


def test_weighted_mean_follows_the_weights():
    assert weighted_mean([0, 10], [3, 1]) == 2.5


def test_weighted_mean_is_a_python_float():
    assert type(weighted_mean([1.0], [2.0])) is float


def test_cumulative_returns_from_the_first_price():
    assert np.allclose(cumulative_returns([100, 110, 99]), [0.10, -0.01])


def test_cumulative_returns_of_a_flat_series_are_zero():
    assert cumulative_returns([5, 5, 5]).tolist() == [0.0, 0.0]


def test_percentile_of_a_ramp():
    assert np.percentile(np.arange(101), 25) == 25.0


def test_median_of_an_even_count():
    assert np.median(np.array([4, 1, 3, 2])) == 2.5


def test_linalg_solve_recovers_the_solution():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    x = np.linalg.solve(a, np.array([9.0, 8.0]))
    assert np.allclose(x, [2.0, 3.0])
