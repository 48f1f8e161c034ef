"""Exact nearest neighbours of a probe set's latent vectors, cheap when a good guess is at hand.

Every frame needs each point's nearest latent neighbours (the t-SNE affinities, how much the
latents changed, the quality figures). A k-d tree is slow in 20 dimensions and sorting every
row of the distance matrix is O(N^2 log N). Instead: a radius per point that is known to hold
at least k other points (from a guess of its neighbours, e.g. the previous frame's, or else from a
random sample of points), then one pass over the distance matrix keeps only the points inside
it, and the k nearest of those are the exact answer (that pass and the ranking are in C:
reporter/_kernels.c). Between two EVAL steps neighbourhoods change little, so with the previous
frame's lists the radius is tight and few points pass.

The answer does not depend on the guess: candidates are ranked by their distance computed
directly (sum of squared differences), ties by index, whichever radius let them through.
"""

from __future__ import annotations

import numpy as np

from reporter import _kernels

# Rows of the distance matrix computed at once: bounds memory at N x CHUNK floats.
CHUNK = 512
# Without a guess, the radius comes from this many randomly chosen points (fixed seed); more
# points make a tighter radius (at 10,000 points: 2.0 s with 1,024, 1.1 s with 4,096).
SAMPLE = 4096
# A radius holding more than LOOSE x k points (or fewer than k) is replaced by the row's own k-th distance.
LOOSE = 8
# The one-pass filter computes |x|^2 + |y|^2 - 2 x.y in float32 (4x faster than float64 here),
# whose rounding differs from the direct sum of squares: a slack, relative to the squared norms,
# (~16 float32 epsilons) keeps every point the direct distance would keep.
SLACK = 1e-6


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
    # Squared distances in one matrix product: [x, |x|^2, 1] . [-2y, 1, |y|^2] = |x - y|^2.
    left = np.hstack([centred, sq_norms[:, None], np.ones((n, 1))]).astype(np.float32)
    right = np.hstack([-2.0 * centred, np.ones((n, 1)), sq_norms[:, None]]).astype(np.float32)
    slack = SLACK * (sq_norms + sq_norms.max())
    if guess is not None and guess.shape[0] == n and guess.shape[1] >= k:
        radius = _radius_from_guess(X, np.asarray(guess)[:, :k])
    else:
        radius = _radius_from_sample(left, right, k, slack)
    neighbours = np.empty((n, k), dtype=np.int64)
    sq_dists = np.empty((n, k), dtype=np.float64)
    limit = (radius + slack).astype(np.float32)
    slack = slack.astype(np.float32)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        block = left[start:stop] @ right.T
        # Keeps the points inside each row's limit (a row holding more than LOOSE x k of them, or
        # fewer than k: a poor guess, or one naming a point twice, gets its own k-th distance
        # instead) and ranks them by their direct distance (reporter/_kernels.c).
        _kernels.select_nearest(block, limit[start:stop], slack[start:stop], X, start, k, LOOSE,
                                neighbours[start:stop], sq_dists[start:stop])
    return neighbours, sq_dists


def _radius_from_guess(X, guess):
    """Per point, the squared distance to the farthest of its k guessed neighbours."""
    radius = np.empty(X.shape[0])
    _kernels.farthest_guessed(X, np.ascontiguousarray(guess, dtype=np.int64), radius)
    return radius


def _radius_from_sample(left, right, k, slack):
    """Per point, the k-th smallest squared distance to a fixed random sample of other points."""
    n = left.shape[0]
    m = min(n, max(SAMPLE, k + 1))
    sample = np.sort(np.random.RandomState(0).choice(n, m, replace=False))
    radius = np.empty(n)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        block = (left[start:stop] @ right[sample].T).astype(np.float64)
        own = np.searchsorted(sample, np.arange(start, stop))
        hit = (own < m) & (sample[np.minimum(own, m - 1)] == np.arange(start, stop))
        block[np.flatnonzero(hit), own[hit]] = np.inf  # the point itself, when sampled
        # float32 like the filter; the filter's slack also covers this bound's rounding.
        radius[start:stop] = np.partition(block, k - 1, axis=1)[:, k - 1] + slack[start:stop]
    return radius
