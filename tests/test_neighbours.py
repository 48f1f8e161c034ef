"""Exact nearest neighbours: the same lists as sorting every row, whatever guess they start from."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from reporter.neighbours import nearest_neighbours


def brute_force(X, k):
    """Sort every row of the distance matrix (direct sums of squares, ties by index)."""
    d = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


@pytest.fixture(scope="module")
def digits():
    # Real data with many exact ties (integer pixels) and duplicate images.
    return load_digits().data[:700].astype(np.float64)


@pytest.mark.parametrize("k", [1, 10, 90])
def test_same_lists_as_sorting_every_row(digits, k):
    expected, expected_d = brute_force(digits, k)
    found, found_d = nearest_neighbours(digits, k)
    assert np.array_equal(found, expected)
    assert np.array_equal(found_d, expected_d)


def test_the_guess_changes_the_cost_never_the_answer(digits):
    later = digits + np.random.default_rng(0).normal(scale=0.5, size=digits.shape)
    expected, _ = brute_force(later, 30)
    good, _ = nearest_neighbours(digits, 30)          # last frame's lists: close to the answer
    poor = np.random.default_rng(1).integers(0, len(digits), size=(len(digits), 30))  # anything
    poor[poor == np.arange(len(digits))[:, None]] = 0
    repeated = np.repeat(expected[:, :1], 30, axis=1)  # one point named 30 times: too small a radius
    for guess in (None, good, poor, repeated, expected):
        assert np.array_equal(nearest_neighbours(later, 30, guess)[0], expected)


def test_far_from_the_origin_and_bad_k():
    X = np.random.default_rng(2).normal(size=(300, 20)) + 1e4  # norms huge against the distances
    assert np.array_equal(nearest_neighbours(X, 15)[0], brute_force(X, 15)[0])
    with pytest.raises(ValueError, match="k must be between 1 and N-1"):
        nearest_neighbours(X[:5], 5)
