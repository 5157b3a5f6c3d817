"""benchmod's functions, for the benchmark's second shape: numpy imported at the top, as real modules do."""

import numpy as np

__all__ = ["moving_average", "normalize", "histogram_counts", "weighted_mean", "cumulative_returns", "clip_outliers"]


def moving_average(values, window):
    """Mean of each run of ``window`` consecutive values."""
    data = np.asarray(values, dtype=np.float64)
    if window < 1 or window > data.size:
        raise ValueError(f"window must be between 1 and {data.size}, not {window}")
    kernel = np.ones(window) / window
    return np.convolve(data, kernel, mode="valid")


def normalize(values):
    """Scale to zero mean and unit standard deviation (a constant input becomes zeros)."""
    data = np.asarray(values, dtype=np.float64)
    spread = data.std()
    if spread == 0:
        return np.zeros_like(data)
    return (data - data.mean()) / spread


def histogram_counts(values, bins):
    """Counts per bin over the data's range, as plain ints."""
    counts, _edges = np.histogram(np.asarray(values), bins=bins)
    return [int(c) for c in counts]


def weighted_mean(values, weights):
    """Weighted arithmetic mean, as a Python float."""
    return float(np.average(np.asarray(values, dtype=np.float64), weights=np.asarray(weights, dtype=np.float64)))


def cumulative_returns(prices):
    """Growth of one unit invested at the first price, at each later price."""
    data = np.asarray(prices, dtype=np.float64)
    return data[1:] / data[0] - 1.0


def clip_outliers(values, limit):
    """Clip values further than ``limit`` standard deviations from the mean."""
    data = np.asarray(values, dtype=np.float64)
    low, high = data.mean() - limit * data.std(), data.mean() + limit * data.std()
    return np.clip(data, low, high)
