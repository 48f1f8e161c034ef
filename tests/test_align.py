"""Orthogonal Procrustes turns a moved copy of an embedding back onto the original."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from reporter.embedding.align import procrustes


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


@pytest.fixture(scope="module")
def points():
    # A real 2-D point cloud: the first two principal components of sklearn's digits.
    return PCA(n_components=2, random_state=0).fit_transform(load_digits().data[:500])


@pytest.mark.parametrize("angle", [0.3, 2.0, -2.9])
def test_rotated_reflected_translated_copy_aligns_back(points, angle):
    reflect = np.array([[1.0, 0.0], [0.0, -1.0]])
    moved = points @ reflect @ _rotation(angle) + np.array([123.4, -56.7])
    aligned = procrustes(moved, points)
    assert np.abs(aligned - points).max() < 1e-9


def test_no_scaling_distances_are_kept(points):
    shrunk = 0.5 * points @ _rotation(1.0)
    aligned = procrustes(shrunk, points)
    before = np.linalg.norm(shrunk[:, None] - shrunk[None], axis=-1)
    after = np.linalg.norm(aligned[:, None] - aligned[None], axis=-1)
    assert np.abs(before - after).max() < 1e-9
    # The best shape-preserving fit of a half-size copy is centred on the reference, half size.
    assert np.allclose(aligned.mean(axis=0), points.mean(axis=0))
    assert np.allclose(aligned - aligned.mean(0), 0.5 * (points - points.mean(0)), atol=1e-9)


def test_shape_mismatch_and_nonfinite_are_refused(points):
    with pytest.raises(ValueError, match="same shape"):
        procrustes(points[:-1], points)
    bad = points.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        procrustes(bad, points)
