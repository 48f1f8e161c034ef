"""Exact nearest neighbours of a probe set's latent vectors, cheap when a good guess is at hand.

Every frame needs each point's nearest latent neighbours (the t-SNE affinities, how much the
latents changed, the quality figures). A k-d tree is slow in 20 dimensions and sorting every
row of the distance matrix is O(N^2 log N). Instead: a radius per point that is known to hold
at least k other points (from a guess of its neighbours, e.g. the previous frame's, or else from a
random sample of points), then one pass over the float32 distances keeps only the points inside
it, and the k nearest of those are the exact answer (that pass, the distances it looks at, tile by
tile, and the ranking are in the C accelerator, reporter/embedding/_kernels.c). Between two EVAL
steps neighbourhoods change little, so with the previous frame's lists the radius is tight and few
points pass.

Without the accelerator (:mod:`reporter.embedding.accelerator`) the search is NumPy's, block by
block of rows: the expanded distances |x|^2 + |y|^2 - 2 x.y by a matrix product, every point
within the k-th of them plus their rounding bound kept, and those ranked the same way.

The answer does not depend on the guess nor on the engine: candidates are ranked by their
distance computed directly (sum of squared differences), ties by index, whichever radius let them
through (the two engines sum the squares in different orders: their distances can differ in the
last bit, tests/test_engine.py).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from reporter.embedding import accelerator

# Rows of the distance matrix to a random sample computed at once (a search without a guess).
CHUNK = 512
# Without a guess, the radius comes from this many randomly chosen points (fixed seed); more
# points make a tighter radius (at 10,000 points: 2.0 s with 1,024, 1.1 s with 4,096).
SAMPLE = 4096
# A radius holding more than LOOSE x k points (or fewer than k) is replaced by the row's own k-th distance.
LOOSE = 8
# The filter compares float32 squared distances (4x cheaper than float64 here), whose rounding
# differs from the float64 distance the ranking uses: by at most ~(d + 4) float32 epsilons times
# the sum of the two squared norms (coordinates rounded to float32, then d squared differences
# summed; the sample's radius uses the expanded |x|^2 + |y|^2 - 2 x.y, d + 2 terms of at most
# that size). A slack of that size keeps every point the float64 distance would keep; a larger one
# only lets a few more points through to the ranking.
SLACK = 4e-6


def nearest_neighbours(X, k, guess=None):
    """The k nearest other points of every point, exactly, nearest first.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Finite points.
    k : int
        Neighbours per point, 1 <= k < N.
    guess : np.ndarray of int, shape (N, >= k), optional
        Some k other points per point, e.g. last frame's neighbours: the closer to the true
        neighbours, the faster. Does not change the result.

    Returns
    -------
    neighbours : np.ndarray of int64, shape (N, k)
        Nearest first; equal distances in index order. A point is never its own neighbour.
    sq_dists : np.ndarray of float64, shape (N, k)
        Their squared Euclidean distances (computed directly).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and N-1 = {n - 1}, got {k}")
    centred = X - X.mean(axis=0)  # same distances, smaller norms: a tighter slack
    sq_norms = np.einsum("ij,ij->i", centred, centred)
    kernels = accelerator.KERNELS
    if kernels is None:
        return _by_sorting(X, centred, sq_norms, k)
    slack = SLACK * (sq_norms + sq_norms.max())
    limit = given = None
    if guess is not None and guess.shape[0] == n and guess.shape[1] >= k:
        given = np.ascontiguousarray(np.asarray(guess)[:, :k], dtype=np.int64)  # the radius comes from these
    else:
        limit = _float32_at_least(_radius_from_sample(centred, sq_norms, k, slack) + slack)
    neighbours = np.empty((n, k), dtype=np.int64)
    sq_dists = np.empty((n, k), dtype=np.float64)
    # Keeps the points inside each row's limit (a row holding more than LOOSE x k of them, or fewer
    # than k: a poor guess, or one naming a point twice, gets its own k-th distance instead) and
    # ranks them by their direct distance; the float32 distances are computed tile by tile in C
    # (reporter/embedding/_kernels.c), never as a whole N x N matrix, and the radius from a guess with them.
    kernels.select_nearest(centred.astype(np.float32), limit, slack.astype(np.float32), X, k, LOOSE,
                            neighbours, sq_dists, given)
    return neighbours, sq_dists


def _by_sorting(X, centred, sq_norms, k):
    """:func:`nearest_neighbours` in NumPy: per block of rows, the candidates within each row's
    k-th expanded distance plus its rounding bound, ranked by their direct distance, then index."""
    n, d = X.shape
    # The expanded float64 distance is within ~(d + 4) epsilons of |x|^2 + |y|^2 of the direct one;
    # four times that keeps every true neighbour (more only lets a few more candidates through).
    slack = 4 * (d + 4) * np.finfo(np.float64).eps * (sq_norms + sq_norms.max())
    neighbours = np.empty((n, k), dtype=np.int64)
    sq_dists = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, CHUNK):
        rows = np.arange(start, min(start + CHUNK, n))
        expanded = sq_norms[rows, None] + sq_norms[None, :] - 2.0 * (centred[rows] @ centred.T)
        expanded[np.arange(len(rows)), rows] = np.inf  # the point itself
        kth = np.partition(expanded, k - 1, axis=1)[:, k - 1]
        inside = expanded <= (kth + 2 * slack[rows])[:, None]
        width = int(inside.sum(axis=1).max())
        candidates = np.argpartition(np.where(inside, expanded, np.inf), width - 1, axis=1)[:, :width]
        direct = ((X[candidates] - X[rows, None, :]) ** 2).sum(axis=2)
        direct[~np.take_along_axis(inside, candidates, axis=1)] = np.inf
        order = np.lexsort((candidates, direct), axis=1)[:, :k]
        neighbours[rows] = np.take_along_axis(candidates, order, axis=1)
        sq_dists[rows] = np.take_along_axis(direct, order, axis=1)
    return neighbours, sq_dists


def _float32_at_least(values):
    """``values`` in float32, each rounded up (never below the float64 value)."""
    rounded = values.astype(np.float32)
    return np.where(rounded < values, np.nextafter(rounded, np.float32(np.inf)), rounded)


def _radius_from_sample(centred, sq_norms, k, slack):
    """Per point, the k-th smallest squared distance to a fixed random sample of other points."""
    n = centred.shape[0]
    m = min(n, max(SAMPLE, k + 1))
    sample = np.sort(np.random.RandomState(0).choice(n, m, replace=False))
    # Squared distances in one matrix product: [x, |x|^2, 1] . [-2y, 1, |y|^2] = |x - y|^2.
    left = np.hstack([centred, sq_norms[:, None], np.ones((n, 1))]).astype(np.float32)
    right = np.hstack([-2.0 * centred[sample], np.ones((m, 1)), sq_norms[sample, None]]).astype(np.float32)
    radius = np.empty(n)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        block = (left[start:stop] @ right.T).astype(np.float64)
        own = np.searchsorted(sample, np.arange(start, stop))
        hit = (own < m) & (sample[np.minimum(own, m - 1)] == np.arange(start, stop))
        block[np.flatnonzero(hit), own[hit]] = np.inf  # the point itself, when sampled
        # float32 like the filter; the filter's slack also covers this bound's rounding.
        radius[start:stop] = np.partition(block, k - 1, axis=1)[:, k - 1] + slack[start:stop]
    return radius


# -- in the plane: a k-d tree, exact and fast in 2-D ---------------------------------------------

def plane_neighbours(Y, k=10):
    """Every point's k nearest other points in a 2-D embedding, nearest first (a k-d tree).

    One search a frame serves its 10-NN accuracy, trustworthiness and neighbourhood preservation.
    """
    Y = np.asarray(Y, dtype=np.float64)
    return plane_neighbours_of(Y, min(k, len(Y) - 1), np.arange(len(Y)))


def plane_neighbours_of(Y, k, points):
    """The k nearest other points of ``points`` in the embedding (itself left out even among duplicates)."""
    _, near = cKDTree(Y).query(Y[points], k + 1)
    itself = near == points[:, None]
    # Drop the point itself where it was found, else the (k+1)-th neighbour.
    itself[~itself.any(axis=1), k] = True
    return near[~itself].reshape(len(points), k)
