"""Quality figures of a frame: how well an embedding keeps classes and neighbours, and how much it moved.

These figures are shown on the site for every frame and are what the embedding benchmark
compares. All are pure functions of arrays.
"""

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from reporter.embedding import accelerator
from reporter.embedding.align import procrustes
from reporter.embedding.neighbours import nearest_neighbours, plane_neighbours_of

# A frame's trustworthiness is exact up to this many probe points and estimated from this many
# points' neighbourhoods beyond (error measured in docs/benchmarks.md, "Scale").
FRAME_SAMPLE = 2000


def knn_accuracy(X, labels, k=10, neighbours=None):
    """Leave-one-out k-nearest-neighbour label accuracy: the mean of :func:`knn_hits`.

    Each point is classified by a majority vote of its ``k`` nearest other points (Euclidean);
    a tie goes to the tied class whose members rank nearer. The point itself never votes, even
    when it has exact duplicates.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Points, e.g. latent vectors or a 2-D embedding.
    labels : array_like, shape (N,)
        Class of each point (any hashable values numpy can sort).
    k : int
        Number of neighbours that vote; must be smaller than N.
    neighbours : np.ndarray of int, shape (N, >= k), optional
        Each point's nearest other points, nearest first, if already known (the embedder keeps
        the latents' own): saves the search, which in 20 dimensions is most of the cost.

    Returns
    -------
    float
        Fraction of points whose vote matches their own label, in [0, 1].
    """
    return float(np.mean(knn_hits(X, labels, k, neighbours)))


def knn_hits(X, labels, k=10, neighbours=None):
    """Whether each point's leave-one-out k-NN vote (as :func:`knn_accuracy` counts it) is its own label.

    Returns
    -------
    np.ndarray of bool, shape (N,)
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    n = X.shape[0]
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and N-1 = {n - 1}, got {k}")
    classes, codes = np.unique(labels, return_inverse=True)
    if neighbours is not None and neighbours.shape[0] == n and neighbours.shape[1] >= k:
        neighbours = np.asarray(neighbours)[:, :k]
    elif X.shape[1] <= 3:
        # A k-d tree is exact and fast in the plane (4x cheaper than sklearn's search at 10,000 points).
        neighbours = plane_neighbours_of(X, k, np.arange(n))
    else:
        neighbours, _ = nearest_neighbours(X, k)
    neighbour_codes = codes[neighbours]
    # One vote per neighbour, plus a bonus below one full vote that favours nearer ranks:
    # it can only break ties, never overturn a majority.
    rank_bonus = (k - np.arange(k)) / (k * (k + 1))
    votes = np.zeros((n, classes.size))
    rows = np.repeat(np.arange(n), k)
    np.add.at(votes, (rows, neighbour_codes.ravel()), 1.0 + np.tile(rank_bonus, n))
    return votes.argmax(axis=1) == codes


def trustworthiness(X, Y, k=10, latent_neighbours=None, sample=None, embedded_neighbours=None):
    """How far the embedding's neighbourhoods are made of true neighbours (sklearn's definition).

    ``1 - 2 / (N k (2N - 3k - 1)) * sum(max(0, r(i, j) - k))`` over each point i and each of its
    k nearest points j in the embedding, where r(i, j) is the rank of j among i's nearest points
    in the original space. Computed exactly without sorting every row of the N x N distance
    matrix (sklearn's way, O(N^2 log N)): ranks within i's known nearest latent neighbours are
    read off the list; only the few embedded neighbours beyond it are ranked, by counting the
    points nearer to i.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Points in the original (latent) space.
    Y : array_like, shape (N, 2)
        Their embedding.
    k : int
        Neighbourhood size; must be below N / 2, as sklearn requires.
    latent_neighbours : np.ndarray of int, shape (N, K >= k), optional
        Each point's K nearest other points in X, nearest first (the embedder keeps them);
        searched (K = 3k) when not given. The larger K, the fewer points to count.
    sample : int, optional
        When N is larger, the sum over points is estimated from this many of them (a fixed,
        seeded choice; the ranks are still among all N points): the cost falls to about
        sample / N of the exact figure's.
    embedded_neighbours : np.ndarray of int, shape (N, >= k), optional
        Every point's nearest other points in Y, as :func:`reporter.embedding.neighbours.plane_neighbours` finds them, if known.

    Returns
    -------
    float
        1.0 when every embedded neighbourhood holds only original neighbours.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n = X.shape[0]
    if not 0 < k < n / 2:
        raise ValueError(f"k must be between 1 and N/2 = {n / 2}, got {k}")
    if latent_neighbours is None or latent_neighbours.shape[0] != n or latent_neighbours.shape[1] < k:
        latent_neighbours, _ = nearest_neighbours(X, min(n - 1, 3 * k))
    points = np.arange(n)
    if sample is not None and sample < n:
        points = np.sort(np.random.RandomState(0).choice(n, sample, replace=False))
    if embedded_neighbours is not None and embedded_neighbours.shape[0] == n and embedded_neighbours.shape[1] >= k:
        embedded = np.asarray(embedded_neighbours)[points, :k]
    else:
        embedded = plane_neighbours_of(Y, k, points)
    # Rank (from 1) of each embedded neighbour in the latent list; 0 where it is beyond the list.
    match = latent_neighbours[points][:, None, :] == embedded[:, :, None]
    ranks = np.where(match.any(axis=2), match.argmax(axis=2) + 1, 0)
    far_rows, far_cols = np.nonzero(ranks == 0)
    if len(far_rows):
        ranks[far_rows, far_cols] = _ranks_by_counting(X, points[far_rows], embedded[far_rows, far_cols])
    penalty = np.maximum(ranks - k, 0).sum() * (n / len(points))
    return float(1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))))


def _ranks_by_counting(X, rows, cols, chunk=256):
    """Rank of ``cols[m]`` among the nearest points of ``rows[m]`` in X: 1 + how many others are nearer.

    ``rows`` in ascending order (as np.nonzero gives them); each row's distances are computed once,
    as sklearn's euclidean_distances computes them (expanded, float64), and counted in C where the
    accelerator is in use (:mod:`reporter.embedding.accelerator`), else in NumPy the same way.
    """
    kernels = accelerator.KERNELS
    sq_norms = np.einsum("ij,ij->i", X, X)
    unique, first = np.unique(rows, return_index=True)
    bounds = np.append(first, len(rows))
    ranks = np.empty(len(rows), dtype=np.int64)
    for start in range(0, len(unique), chunk):
        u = unique[start:start + chunk]
        lo, hi = bounds[start], bounds[min(start + chunk, len(unique))]
        local = np.searchsorted(u, rows[lo:hi])
        dots = X[u] @ X.T
        if kernels is not None:
            kernels.count_nearer(dots, sq_norms, u.astype(np.int64), local.astype(np.int64),
                                 np.ascontiguousarray(cols[lo:hi], dtype=np.int64), ranks[lo:hi])
            continue
        # The same sums in the same order as the C count: (|x|^2 - 2 x.y) + |y|^2.
        distances = (sq_norms[u, None] - 2.0 * dots) + sq_norms[None, :]
        distances[np.arange(len(u)), u] = np.inf  # the point itself is never nearer
        reference = distances[local, cols[lo:hi]]
        ranks[lo:hi] = (distances[local] < reference[:, None]).sum(axis=1) + 1
    return ranks


def diameter(Y):
    """Largest distance between two points of a 2-D embedding (its true diameter).

    Computed on the convex hull's vertices, so it stays cheap for thousands of points.

    Parameters
    ----------
    Y : array_like, shape (N, 2)

    Returns
    -------
    float
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.shape[0] < 2:
        return 0.0
    try:
        Y = Y[ConvexHull(Y).vertices]
    except (QhullError, ValueError):
        pass  # collinear or too few points: all pairs are few enough or the hull is degenerate
    return float(pdist(Y).max())


def jitter(previous, current):
    """How much a frame moved: median point displacement divided by the frame's diameter.

    ``current`` is first aligned onto ``previous`` by orthogonal Procrustes, so rotation,
    reflection and translation do not count as movement. The displacement of each point is
    the Euclidean distance between its aligned and its previous position; the median over
    points is divided by :func:`diameter` of ``current`` (the largest distance between two of
    its points), which makes the figure independent of the embedding's scale.

    Parameters
    ----------
    previous : array_like, shape (N, 2)
        Embedding of the previous frame.
    current : array_like, shape (N, 2)
        Embedding of this frame, same points in the same order.

    Returns
    -------
    float
        0 for a frame that did not move; t-SNE from scratch typically gives several percent.
    """
    previous = np.asarray(previous, dtype=np.float64)
    aligned = procrustes(current, previous)
    displacement = np.linalg.norm(aligned - previous, axis=1)
    return float(np.median(displacement) / diameter(current))


def neighbourhood_preservation(previous, current, k=10, current_neighbours=None, previous_neighbours=None):
    """How much of each point's 2-D neighbourhood the next frame kept: a label-free stability figure.

    For every point, the share of its ``k`` nearest neighbours in ``previous`` that are still
    among its ``k`` nearest in ``current``, averaged over points. 1.0: every neighbourhood kept;
    about k / N for an unrelated layout.

    Parameters
    ----------
    previous, current : array_like, shape (N, 2)
        Consecutive frames' embeddings of the same points in the same order.
    k : int
        Neighbourhood size (clipped to N - 1).
    current_neighbours, previous_neighbours : np.ndarray of int, shape (N, >= k), optional
        ``current``'s and ``previous``'s :func:`reporter.embedding.neighbours.plane_neighbours`, if known.

    Returns
    -------
    float
    """
    previous = np.asarray(previous, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    if previous.shape != current.shape:
        raise ValueError(f"frames of different shapes: {previous.shape} and {current.shape}")
    k = min(k, len(current) - 1)
    if k < 1:
        return 1.0
    everyone = np.arange(len(current))
    def known(neighbours, layout):
        if neighbours is not None and np.shape(neighbours)[0] == len(layout) and np.shape(neighbours)[1] >= k:
            return np.asarray(neighbours)[:, :k]
        return plane_neighbours_of(layout, k, everyone)

    before, after = known(previous_neighbours, previous), known(current_neighbours, current)
    # Neither list repeats a point, so a point in both shows up as two equal neighbours once sorted.
    both = np.sort(np.concatenate([before, after], axis=1), axis=1)
    return float((np.diff(both, axis=1) == 0).sum(axis=1).mean() / k)
