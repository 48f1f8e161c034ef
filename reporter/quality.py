"""Quality figures of a frame: how well an embedding keeps classes and neighbours, and how much it moved.

These figures are shown on the site for every frame and are what the embedding benchmark
compares. All are pure functions of arrays.
"""

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist
from sklearn.manifold import trustworthiness as _sklearn_trustworthiness
from sklearn.neighbors import NearestNeighbors

from reporter.align import procrustes


def knn_accuracy(X, labels, k=10):
    """Leave-one-out k-nearest-neighbour label accuracy.

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

    Returns
    -------
    float
        Fraction of points whose vote matches their own label, in [0, 1].
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    n = X.shape[0]
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and N-1 = {n - 1}, got {k}")
    classes, codes = np.unique(labels, return_inverse=True)
    # kneighbors() without a query leaves each point out of its own neighbour list.
    neighbours = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(return_distance=False)
    neighbour_codes = codes[neighbours]
    # One vote per neighbour, plus a bonus below one full vote that favours nearer ranks:
    # it can only break ties, never overturn a majority.
    rank_bonus = (k - np.arange(k)) / (k * (k + 1))
    votes = np.zeros((n, classes.size))
    rows = np.repeat(np.arange(n), k)
    np.add.at(votes, (rows, neighbour_codes.ravel()), 1.0 + np.tile(rank_bonus, n))
    return float(np.mean(votes.argmax(axis=1) == codes))


def trustworthiness(X, Y, k=10):
    """How far the embedding's neighbourhoods are made of true neighbours (sklearn's definition).

    Parameters
    ----------
    X : array_like, shape (N, d)
        Points in the original (latent) space.
    Y : array_like, shape (N, 2)
        Their embedding.
    k : int
        Neighbourhood size; sklearn requires ``k < N / 2``.

    Returns
    -------
    float
        1.0 when every embedded neighbourhood holds only original neighbours.
    """
    return float(_sklearn_trustworthiness(np.asarray(X, dtype=np.float64),
                                          np.asarray(Y, dtype=np.float64), n_neighbors=k))


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


def neighbourhood_preservation(previous, current, k=10):
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
    before = NearestNeighbors(n_neighbors=k).fit(previous).kneighbors(return_distance=False)
    after = NearestNeighbors(n_neighbors=k).fit(current).kneighbors(return_distance=False)
    # Neither list repeats a point, so a point in both shows up as two equal neighbours once sorted.
    both = np.sort(np.concatenate([before, after], axis=1), axis=1)
    return float((np.diff(both, axis=1) == 0).sum(axis=1).mean() / k)
