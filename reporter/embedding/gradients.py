"""The t-SNE objective's gradients and openTSNE's gradient descent, on either engine.

On openTSNE's path (:mod:`reporter.embedding.accelerator`) the gradient is openTSNE's:
Barnes-Hut (``kl_divergence_bh``, openTSNE's ``theta``) below ``fft_from`` points, FIt-SNE's FFT
interpolation (``kl_divergence_fft``, openTSNE's grid) from there; the descent is
``openTSNE.TSNEEmbedding.optimize`` with openTSNE's defaults. With the C accelerator
(reporter/embedding/_kernels.c) the same steps are computed in C: below ``fft_from`` points the
exact gradient (every pair, cheaper there than Barnes-Hut and without its approximation), from
there the FFT repulsion on openTSNE's grid (:func:`fft_repulsion`), and openTSNE's descent step
in one C call (at 1,000 points its dozen NumPy operations cost more than the exact gradient).

Objectives have openTSNE's signature ``objective(embedding, P, **params) -> (error, gradient)``,
so :func:`anchored` (the spring to the previous frame) wraps either engine's, and
:class:`Descent` runs any of them.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from openTSNE import TSNEEmbedding
from openTSNE.affinity import PrecomputedAffinities
from openTSNE.tsne import kl_divergence_bh, kl_divergence_fft

from reporter.embedding import accelerator

# openTSNE's gradient descent, with its defaults: momentum, the smallest gain, the longest step of
# a point per iteration, Barnes-Hut's accuracy, and the grid of the FFT repulsion.
MOMENTUM = 0.8
MIN_GAIN = 0.01
MAX_STEP = 5.0
BH_THETA = 0.5
FFT_GRID = {"n_interpolation_points": 3, "min_num_intervals": 50, "ints_in_interval": 1}


def kl_objective(n_points, fft_from):
    """The KL gradient for ``n_points`` on the engine in use (see the module docstring)."""
    fft = n_points >= fft_from
    if accelerator.KERNELS is None:
        return kl_divergence_fft if fft else kl_divergence_bh
    return fft_kl if fft else exact_kl


def _kernels():
    kernels = accelerator.KERNELS
    if kernels is None:
        raise RuntimeError("this gradient is the C accelerator's, which is not in use: "
                           f"{accelerator.engine()}")
    return kernels


def _csr_arrays(P):
    """P's CSR arrays as the C accelerator takes them (int32 structure, float64 values)."""
    if P.dtype != np.float64:
        raise ValueError(f"affinities must be float64, got {P.dtype}")
    return (np.asarray(P.indptr, dtype=np.int32), np.asarray(P.indices, dtype=np.int32), P.data)


def _check_dof(dof):
    if dof != 1:
        raise ValueError(f"only the Cauchy kernel (dof=1) is implemented, got dof={dof}")


def exact_kl(embedding, P, dof=1, should_eval_error=False, **_):
    """An openTSNE objective: the exact t-SNE gradient of a 2-D embedding (every pair), in C.

    Equals openTSNE's ``kl_divergence_bh`` with ``theta=0`` (its signs and normalisation), in
    O(N^2) vectorised C. Returns (KL divergence, or 0 unless ``should_eval_error``, gradient).
    """
    _check_dof(dof)
    embedding = np.ascontiguousarray(embedding, dtype=np.float64)
    gradient = np.empty_like(embedding)
    _, error = _kernels().exact_gradient(embedding, *_csr_arrays(P), gradient, with_error=should_eval_error)
    return error, gradient


def _box_counts(largest=1000):
    """openTSNE's sizes of the FFT grid, in boxes per side: the numbers from 20 to 1,000 made of the
    factors 2, 3, 5 and 7 and at most one 11 or 13, for which FFTs are fast."""
    def smooth(n):
        for f in (2, 3, 5, 7):
            while n % f == 0:
                n //= f
        return n in (1, 11, 13)

    return np.array([n for n in range(20, largest + 1) if smooth(n)])


BOX_COUNTS = _box_counts()


def fft_repulsion(embedding, gradient, n_interpolation_points=3, min_num_intervals=50, ints_in_interval=1):
    """Subtracts the normalised t-SNE repulsion of a 2-D embedding from ``gradient``; returns Z.

    FIt-SNE's interpolation on a grid (Linderman et al. 2019), as openTSNE's
    ``estimate_negative_gradient_fft_2d`` (degrees of freedom 1) does it, with the same grid: boxes
    of width at least 1 / ``ints_in_interval``, at least ``min_num_intervals`` per side, rounded up
    to a size in BOX_COUNTS. Spreading the points onto the grid's nodes and reading the potentials
    back are in C (reporter/embedding/_kernels.c); the convolution of the nodes with the squared Cauchy
    kernel is SciPy's FFT in single precision, whose rounding (~1e-7 of the largest potential) is
    far below the interpolation's own error (measured: docs/benchmarks.md, "Scale").
    """
    kernels = _kernels()
    if n_interpolation_points != 3:
        raise ValueError(f"only 3 interpolation points per box are implemented, got {n_interpolation_points}")
    lo, hi = float(embedding.min()), float(embedding.max())
    wanted = int(max(min_num_intervals, (hi - lo) / ints_in_interval))
    boxes = int(BOX_COUNTS[np.searchsorted(BOX_COUNTS, wanted)]) if wanted < BOX_COUNTS[-1] else int(BOX_COUNTS[-1])
    width = (hi - lo) / boxes
    nodes = 3 * boxes
    cells = np.empty(len(embedding), dtype=np.int32)
    weights = np.empty((len(embedding), 6))
    coefficients = np.empty((nodes, nodes, 4))  # the four terms of a node side by side
    kernels.fft_spread(embedding, lo, width, boxes, cells, weights, coefficients)
    # The kernel between nodes (i, j) apart, embedded in a circulant matrix of twice the size: the
    # convolution's result for the nodes is then the bottom right quadrant.
    offsets = (np.abs(np.arange(2 * nodes) - nodes) * (width / 3)).astype(np.float32) ** 2
    kernel = np.add.outer(offsets, offsets)
    kernel += 1.0
    np.reciprocal(kernel, out=kernel)
    kernel *= kernel
    kernel[0, :] = kernel[:, 0] = 0.0
    kernel_hat = scipy.fft.rfft2(kernel)
    padded = np.zeros((2 * nodes, 2 * nodes), dtype=np.float32)
    potentials = np.empty_like(coefficients)
    for term in range(4):
        padded[:nodes, :nodes] = coefficients[:, :, term]
        spectrum = scipy.fft.rfft2(padded)
        spectrum *= kernel_hat
        potentials[:, :, term] = scipy.fft.irfft2(spectrum, s=padded.shape, overwrite_x=True)[nodes:, nodes:]
    return kernels.fft_gather(embedding, boxes, cells, weights, potentials, gradient)


def fft_kl(embedding, P, fft_params=None, dof=1, should_eval_error=False, **_):
    """An openTSNE objective: the FFT-interpolated repulsion (:func:`fft_repulsion`) plus the exact
    attraction in C: the gradient of openTSNE's ``kl_divergence_fft``, the same grid (``fft_params``,
    FFT_GRID). Returns (KL divergence or 0, gradient).
    """
    _check_dof(dof)
    embedding = np.ascontiguousarray(embedding, dtype=np.float64)
    gradient = np.zeros_like(embedding)
    sum_q = fft_repulsion(embedding, gradient, **(fft_params or FFT_GRID))
    error = _kernels().add_attraction(embedding, *_csr_arrays(P), gradient, with_error=should_eval_error)
    if should_eval_error:
        error += P.data.sum() * np.log(sum_q)
    return error, gradient


def anchored(kl, anchor, strength):
    """The objective ``kl`` plus a spring pulling each point to its ``anchor`` (dynamic t-SNE's
    movement penalty, towards the previous frame).

    The anchor is scaled to the embedding's current spread, so the spring resists movement
    relative to the other points, not the growth of the embedding as it re-expands. The error
    returned is ``kl``'s alone.
    """
    anchor = anchor - anchor.mean(axis=0)
    anchor_spread = np.std(anchor)
    per_point = strength / len(anchor)

    def objective(embedding, P, **params):
        error, gradient = kl(embedding, P, **params)
        positions = np.asarray(embedding)
        gradient += per_point * (positions - anchor * (np.std(positions) / anchor_spread))
        return error, gradient

    return objective


class Descent:
    """openTSNE's batch gradient descent with momentum and per-coordinate gains, from ``init``.

    On openTSNE's path it is ``TSNEEmbedding.optimize`` (learning rate N / exaggeration, MOMENTUM,
    MIN_GAIN, steps of at most MAX_STEP, the layout kept centred), its optimizer kept from one
    :meth:`run` to the next; with the accelerator each step is one C call with the same arithmetic.
    Gains and momentum carry over from one :meth:`run` to the next on both (openTSNE's optimizer
    holds them on its path, ``update`` and ``gains`` here with the accelerator). The engine is the
    one in use when the descent is made.
    """

    def __init__(self, init):
        self.embedding = np.array(init, dtype=np.float64, order="C")
        self._kernels = accelerator.KERNELS
        self._optimizer = None
        if self._kernels is not None:
            self.update = np.zeros_like(self.embedding)
            self.gains = np.ones_like(self.embedding)

    def run(self, P, objective, n_iter, exaggeration=1.0):
        """``n_iter`` steps down ``objective`` (an openTSNE-style KL gradient) under affinities P."""
        learning_rate = len(self.embedding) / exaggeration
        if self._kernels is None:
            embedding = TSNEEmbedding(self.embedding, PrecomputedAffinities(P, normalize=False),
                                      negative_gradient_method=objective, optimizer=self._optimizer,
                                      theta=BH_THETA, n_jobs=1, **FFT_GRID)
            embedding.optimize(n_iter, inplace=True, exaggeration=exaggeration, learning_rate=learning_rate,
                               momentum=MOMENTUM, min_gain=MIN_GAIN, max_step_norm=MAX_STEP, max_grad_norm=None)
            self._optimizer = embedding.optimizer
            self.embedding = np.asarray(embedding)
            return self.embedding
        P *= exaggeration  # and back afterwards, in place, as openTSNE does: the same P to the last bit
        try:
            for _ in range(n_iter):
                _, gradient = objective(self.embedding, P, fft_params=FFT_GRID)
                self._kernels.descend(self.embedding, gradient, self.update, self.gains, learning_rate,
                                      MOMENTUM, MIN_GAIN, MAX_STEP)
        finally:
            P /= exaggeration
        return self.embedding
