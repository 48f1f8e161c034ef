"""t-SNE affinities of a probe set: openTSNE's, from exact nearest neighbours.

The same matrix as :class:`openTSNE.affinity.PerplexityBasedNN` with ``method="exact"``: each
point's 3 x perplexity nearest other points, Gaussian conditional probabilities p(j|i) whose
bandwidth matches the perplexity, then P = (P + P^T), normalised to sum 1. What differs is the
neighbour search: :mod:`reporter.embedding.neighbours`, started from the previous frame's lists,
is cheaper than building a neighbour index for every frame.

On openTSNE's path the bandwidths and P + P^T are openTSNE's own
(:func:`openTSNE.affinity.joint_probabilities_nn`). With the C accelerator
(:mod:`reporter.embedding.accelerator`) the bandwidths of all points are found at once by a
safeguarded Newton search and P + P^T is built from the neighbour lists; both agree with
openTSNE's to ~1e-6 of the largest affinity (tests/test_engine.py).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from openTSNE.affinity import joint_probabilities_nn

from reporter.embedding import accelerator
from reporter.embedding.neighbours import nearest_neighbours

PERPLEXITY = 30.0
# The accelerator's bandwidth search: |entropy - log(perplexity)| below this, in nats.
ENTROPY_TOL = 1e-5
MAX_SEARCH_STEPS = 100


def usable_perplexity(n, perplexity):
    """The perplexity a set of ``n`` points can have: lowered to (n - 1) / 3 for very small sets."""
    return min(perplexity, (n - 1) / 3.0)


def neighbour_count(n, perplexity):
    """How many neighbours :func:`affinities` keeps per point: 3 x perplexity, as openTSNE."""
    return min(n - 1, int(3 * usable_perplexity(n, perplexity)))


def affinities(latents, perplexity=PERPLEXITY, guess=None):
    """Symmetric t-SNE affinities P of a probe set, from exact neighbours.

    Parameters
    ----------
    latents : np.ndarray, shape (N, d), finite
    perplexity : float
        Effective number of neighbours; lowered to (N - 1) / 3 for very small sets.
    guess : np.ndarray of int, shape (N, k), optional
        A guess of the neighbours (e.g. the previous frame's) that makes the exact search
        cheaper; the result does not depend on it.

    Returns
    -------
    P : scipy.sparse.csr_matrix, shape (N, N), float64
        Symmetric, sums to 1, each row's columns in order.
    neighbours : np.ndarray of int, shape (N, k)
        Each point's k = 3 x perplexity nearest other points, nearest first.
    """
    n = latents.shape[0]
    perplexity = usable_perplexity(n, perplexity)
    neighbours, sq_dists = nearest_neighbours(latents, neighbour_count(n, perplexity), guess)
    kernels = accelerator.KERNELS
    if kernels is None:  # openTSNE's (P + P^T) / 2, normalised
        P = joint_probabilities_nn(neighbours, np.sqrt(sq_dists), [perplexity], symmetrize=True, n_jobs=1)
        P.sort_indices()
    else:
        P = _accelerated(kernels, neighbours, sq_dists, perplexity)
    return P, neighbours


def _accelerated(kernels, neighbours, sq_dists, perplexity):
    """P + P^T by the C accelerator: the bandwidths, then the sum built from the neighbour lists
    (the same matrix, to the bit, as SciPy's P + P.T of the row-sorted conditionals)."""
    sq_dists = np.ascontiguousarray(sq_dists, dtype=np.float64)
    # Start from 1 / (mean distance beyond the nearest): the search converges in a few steps.
    beta = 1.0 / np.maximum((sq_dists - sq_dists[:, :1]).mean(axis=1), 1e-12)
    conditional = np.empty_like(sq_dists)
    kernels.bandwidths(sq_dists, beta, conditional, float(perplexity), ENTROPY_TOL, MAX_SEARCH_STEPS)
    n = len(neighbours)
    indptr, indices, data = kernels.symmetrize(neighbours, conditional)
    P = sp.csr_matrix((np.frombuffer(data, dtype=np.float64), np.frombuffer(indices, dtype=np.int32),
                       np.frombuffer(indptr, dtype=np.int32)), shape=(n, n))
    P.has_sorted_indices = True
    P /= P.sum()
    return P
