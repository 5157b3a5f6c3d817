"""A tiny statistics library whose results depend on numpy's rules."""

import numpy as np

__all__ = ["mean", "with_fee"]


def mean(values):
    """Arithmetic mean of a sequence, as a Python float."""
    return float(np.mean(np.asarray(values, dtype=np.float64)))


def with_fee(price, fee):
    """Add a plain Python float fee to a numpy price scalar.

    The result's dtype follows numpy's promotion rules, which changed in
    numpy 2 (NEP 50): ``float32 + float`` gave float64 in numpy 1.x and gives
    float32 in numpy 2.x.
    """
    return price + fee
