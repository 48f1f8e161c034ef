"""Warm-started openTSNE embeddings of the probe set, one frame per EVAL step.

Frame 0 is a full t-SNE from a PCA initialisation. Every later frame starts from the previous
frame, is then turned onto it by orthogonal Procrustes and given its overall size (the size of
a t-SNE layout only reflects how long it was optimised). Two ways to start, chosen per frame:

- *follow* (the usual case): the previous layout, shrunk, re-expands for a short optimisation
  without early exaggeration while a weak spring holds every point near its previous position
  (scaled with the embedding as it grows). Shrinking lets points cross between clusters; the
  spring (a movement penalty as in dynamic t-SNE) stops the clusters drifting around for no
  reason in the latents. This is where the steadiness comes from. Given the previous frame's
  latents, the spring stiffens as their neighbourhoods stop changing.
- *reorganise*: when the previous layout no longer describes the latents (fewer than
  ``reorganize_below`` of each point's nearest latent neighbours are among its nearest neighbours
  in the previous layout, typical of the first steps of training), the previous layout is
  shrunk to openTSNE's recommended initial spread and optimised without a spring.

Affinities are computed here rather than by :class:`openTSNE.affinity.PerplexityBasedNN`: exact
neighbours (:mod:`reporter.embedding.neighbours`, started from the previous frame's lists) are cheaper than
building a neighbour index for every frame, and the Gaussian bandwidths of all points are found
at once by a safeguarded Newton search. Up to ``FFT_FROM`` points the gradient is exact (every
pair, in C: reporter/embedding/_kernels.c), which is cheaper there than openTSNE's Barnes-Hut and has no
approximation error; from there the repulsion is FIt-SNE's FFT interpolation on openTSNE's grid
(:func:`fft_repulsion`), with a shorter schedule (both measured: see docs/benchmarks.md, "Scale").

What one frame needs from the frames before it (the previous layout, the previous latents and
their nearest neighbours) is held by one :class:`Embedder` per report, restored on resume from
the saved frames. Non-finite latents are not an error of the user: :meth:`Embedder.embed`
returns ``None`` for them and the caller marks the frame (see :func:`finite_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.sparse as sp
from openTSNE import initialization

from reporter.embedding import _kernels
from reporter.embedding.align import procrustes
from reporter.embedding.neighbours import nearest_neighbours
from reporter.embedding.quality import plane_neighbours

PERPLEXITY = 30.0
# openTSNE's own schedule for a t-SNE from scratch.
EARLY_EXAGGERATION = 12.0
EARLY_EXAGGERATION_ITER = 250
FIRST_FRAME_ITER = 500
# From FFT_FROM points on, frame 0 gets a shorter schedule: 750 FFT iterations at 10,000 points
# take ~15 s on one thread, and frame 0 (the untrained network) is reorganised by the next ones.
# Measured on a real 10,000-point run (frames 0-2, one thread, CPU): frame 0 with 100 + 150
# iterations 12.9 s, 50 + 75 6.7 s, 40 + 60 5.9 s (the rest of frame 0: cold neighbours 1.5 s and
# the warm step), for the same quality (10-NN in 2-D 0.846 / 0.843 / 0.846, trustworthiness
# 0.9635 / 0.9638 / 0.9632) and the same frames 1-2 after it (docs/benchmarks.md, "Scale").
LARGE_EARLY_EXAGGERATION_ITER = 40
LARGE_FIRST_FRAME_ITER = 60
# A warm frame only follows the latents' change between two EVAL steps.
WARM_ITER = 60
# Follow: start from the previous layout scaled by SHRINK, spring of strength ANCHOR. Measured with
# the exact gradient on three real runs, two embedder seeds each (docs/benchmarks.md, "Scale"):
# 0.005 held layouts so close to the last frame that trustworthiness fell below the seed's on most
# runs; 0.0035 is above it on most, for jitter 0.2-0.4 of the seed's. Stronger springs move less
# and lose quality on both MNIST runs; quality was chosen over jitter.
SHRINK = 1 / 3
ANCHOR = 0.0035
# The spring stiffens as the latents settle: ANCHOR x SETTLED_CHANGE / (share of the 10 nearest
# latent neighbours that changed since the previous frame), between 1x and MAX_STIFFENING x.
# Measured: late in training 1-4% of neighbourhoods change per frame and the layout should then
# barely move; early on 10-80% change and the spring stays at ANCHOR.
SETTLED_CHANGE = 0.1
MAX_STIFFENING = 10.0
# Above SETTLED_CHANGE the frame gets more iterations instead, in proportion, up to this factor:
# the layout has further to go when more neighbourhoods changed.
MAX_ITER_GAIN = 1.5
# Reorganise when fewer than this share of the 10 nearest latent neighbours are 2-D neighbours.
REORGANIZE_BELOW = 0.4
NEIGHBOURHOOD = 10
# openTSNE's advice for a given initialisation: standard deviation 1e-4.
SMALL_SPREAD = 1e-4
# openTSNE's gradient descent (reporter/embedding/_kernels.c repeats its step): momentum, the smallest gain,
# the longest step of a point per iteration, and its grid for the FFT repulsion (its defaults).
MOMENTUM = 0.8
MIN_GAIN = 0.01
MAX_STEP = 5.0
FFT_GRID = {"n_interpolation_points": 3, "min_num_intervals": 50, "ints_in_interval": 1}
# Bandwidth search: |entropy - log(perplexity)| below this, in nats.
ENTROPY_TOL = 1e-5
MAX_SEARCH_STEPS = 100
# From this many points on, the FFT-interpolated repulsion (fft_repulsion) is cheaper per
# iteration than the exact one (measured on real latents, one thread: docs/benchmarks.md, "Scale").
FFT_FROM = 5000
# A warm frame's iterations from FFT_FROM points on. At 10,000 points (real latents, one thread,
# openTSNE's FFT then) 60 iterations cost 1.3-1.4 s CPU, 30 cost 0.7 s, for 10-NN accuracy in 2-D
# 0.907 instead of 0.910, trustworthiness 0.991 instead of 0.993 (docs/benchmarks.md, "Scale").
LARGE_WARM_ITER = 30


def finite_rows(latents):
    """Which probe points have only finite latent values.

    Parameters
    ----------
    latents : array_like, shape (N, d)

    Returns
    -------
    np.ndarray of bool, shape (N,)
        True where the row holds no NaN or Inf. :meth:`Embedder.embed` returns ``None`` unless all
        rows are finite; callers can use this to say how many points were bad.
    """
    return np.isfinite(np.asarray(latents, dtype=np.float64)).all(axis=1)


def _conditional_probabilities(sq_dists, perplexity, beta=None):
    """Gaussian p(j|i) over each row's neighbours, with the bandwidth matching the perplexity.

    Solves entropy(beta) = log(perplexity) for the precision ``beta`` (1 / 2 sigma^2) of every
    row, in C (reporter/embedding/_kernels.c): Newton steps in log(beta), falling back to bisection whenever a
    step would leave the bracket known to hold the root. Distances are shifted by each row's
    smallest, which changes neither p(j|i) nor the entropy and keeps exp() from underflowing for
    far-out points; with p normalised, entropy = log Z + beta <d>. Returns the probabilities
    and the precisions.
    """
    sq_dists = np.ascontiguousarray(sq_dists, dtype=np.float64)
    if beta is None:
        beta = 1.0 / np.maximum((sq_dists - sq_dists[:, :1]).mean(axis=1), 1e-12)
    else:
        beta = np.array(beta, dtype=np.float64)
    p = np.empty_like(sq_dists)
    _kernels.bandwidths(sq_dists, beta, p, float(perplexity), ENTROPY_TOL, MAX_SEARCH_STEPS)
    return p, beta


def affinities(latents, perplexity=PERPLEXITY, beta=None, guess=None):
    """Symmetric t-SNE affinities P of a probe set, from exact neighbours.

    Parameters
    ----------
    latents : np.ndarray, shape (N, d), finite
    perplexity : float
        Effective number of neighbours; lowered to (N - 1) / 3 for very small sets.
    beta : np.ndarray, shape (N,), optional
        Gaussian precisions to start the bandwidth search from (e.g. the previous frame's).
    guess : np.ndarray of int, shape (N, k), optional
        A guess of the neighbours (e.g. the previous frame's) that makes the exact search
        cheaper; the result does not depend on it.

    Returns
    -------
    P : scipy.sparse.csr_matrix, shape (N, N)
        Symmetric, sums to 1.
    beta : np.ndarray, shape (N,)
        The precisions found.
    neighbours : np.ndarray of int, shape (N, k)
        Each point's k = 3 x perplexity nearest other points, nearest first.
    """
    n = latents.shape[0]
    perplexity = _usable_perplexity(n, perplexity)
    k = _neighbour_count(n, perplexity)
    neighbours, sq_dists = nearest_neighbours(latents, k, guess)
    conditional, beta = _conditional_probabilities(sq_dists, perplexity, beta)
    # P + P.T in CSR, each row's columns in order, made in C from the neighbour lists: the same
    # matrix, to the bit, as sorting the rows and SciPy's P + P.T (~85 ms at 10,000 points; ~45 ms).
    indptr, indices, data = _kernels.symmetrize(neighbours, conditional)
    P = sp.csr_matrix((np.frombuffer(data, dtype=np.float64), np.frombuffer(indices, dtype=np.int32),
                       np.frombuffer(indptr, dtype=np.int32)), shape=(n, n))
    P.has_sorted_indices = True
    P /= P.sum()
    return P, beta, neighbours


def _usable_perplexity(n, perplexity):
    return min(perplexity, (n - 1) / 3.0)


def _neighbour_count(n, perplexity):
    """How many neighbours :func:`affinities` keeps per point: 3 x perplexity, as openTSNE."""
    return min(n - 1, int(3 * _usable_perplexity(n, perplexity)))


def _usable_start(previous):
    """A previous frame can seed a warm start only if it is finite and has some spread."""
    return bool(np.isfinite(previous).all() and np.std(previous[:, 0]) > 0 and np.std(previous[:, 1]) > 0)


def neighbourhood_kept(layout, neighbours, k=NEIGHBOURHOOD, layout_neighbours=None):
    """Share of each point's k nearest latent neighbours that are among its k nearest in ``layout``.

    Parameters
    ----------
    layout : np.ndarray, shape (N, 2)
    neighbours : np.ndarray of int, shape (N, >= k)
        Nearest latent neighbours of each point, nearest first (from :func:`affinities`).
    layout_neighbours : np.ndarray of int, shape (N, >= k), optional
        The layout's own (:func:`reporter.embedding.quality.plane_neighbours`), if known.

    Returns
    -------
    float
        Mean over points, in [0, 1]; about k / N for an unrelated layout.
    """
    if layout_neighbours is None or layout_neighbours.shape[1] < k:
        layout_neighbours = plane_neighbours(layout, k)
    near = layout_neighbours[:, :k]
    return float((near[:, :, None] == neighbours[:, None, :k]).any(axis=2).mean())


def latent_change(before, neighbours, k=NEIGHBOURHOOD):
    """Share of each point's k nearest latent neighbours that are new since the previous frame.

    Parameters
    ----------
    before : np.ndarray of int, shape (N, >= k)
        The previous frame's nearest latent neighbours of the same points, nearest first.
    neighbours : np.ndarray of int, shape (N, >= k)
        This frame's, the same way (from :func:`affinities`).

    Returns
    -------
    float
        Mean over points, in [0, 1]: 0 when no neighbourhood changed.
    """
    return 1.0 - float((before[:, :k, None] == neighbours[:, None, :k]).any(axis=2).mean())


def _csr_arrays(P):
    """P's CSR arrays as :mod:`reporter.embedding._kernels` takes them (int32 structure, float64 values)."""
    if P.dtype != np.float64:
        raise ValueError(f"affinities must be float64, got {P.dtype}")
    return (np.asarray(P.indptr, dtype=np.int32), np.asarray(P.indices, dtype=np.int32), P.data)


def _check_dof(dof):
    if dof != 1:
        raise ValueError(f"only the Cauchy kernel (dof=1) is implemented, got dof={dof}")


def exact_kl(embedding, P, dof=1, should_eval_error=False, **_):
    """An openTSNE objective: the exact t-SNE gradient of a 2-D embedding (every pair).

    Equals openTSNE's ``kl_divergence_bh`` with ``theta=0`` (its signs and normalisation), in
    O(N^2) vectorised C. Returns (KL divergence, or 0 unless ``should_eval_error``, gradient).
    """
    _check_dof(dof)
    embedding = np.ascontiguousarray(embedding, dtype=np.float64)
    gradient = np.empty_like(embedding)
    _, error = _kernels.exact_gradient(embedding, *_csr_arrays(P), gradient, with_error=should_eval_error)
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
    _kernels.fft_spread(embedding, lo, width, boxes, cells, weights, coefficients)
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
    return _kernels.fft_gather(embedding, boxes, cells, weights, potentials, gradient)


def fft_kl(embedding, P, fft_params, dof=1, should_eval_error=False, **_):
    """An openTSNE objective: the FFT-interpolated repulsion (:func:`fft_repulsion`) plus the exact
    attraction in C: the gradient of openTSNE's ``kl_divergence_fft``, the same grid (``fft_params``,
    FFT_GRID). Returns (KL divergence or 0, gradient).
    """
    _check_dof(dof)
    embedding = np.ascontiguousarray(embedding, dtype=np.float64)
    gradient = np.zeros_like(embedding)
    sum_q = fft_repulsion(embedding, gradient, **fft_params)
    error = _kernels.add_attraction(embedding, *_csr_arrays(P), gradient, with_error=should_eval_error)
    if should_eval_error:
        error += P.data.sum() * np.log(sum_q)
    return error, gradient


def _anchored_gradient(anchor, strength, kl=exact_kl):
    """The KL gradient ``kl`` (exact or FFT) plus a spring pulling each point to its ``anchor``.

    The anchor is scaled to the embedding's current spread, so the spring resists movement
    relative to the other points, not the growth of the embedding as it re-expands.
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


@dataclass(frozen=True)
class EmbedSettings:
    """How a frame is optimised; the defaults are the module's measured constants.

    Attributes
    ----------
    perplexity : float
        t-SNE perplexity (lowered automatically for tiny probe sets).
    warm_iter : int
        Iterations of a warm-started frame.
    shrink : float
        Factor applied to the previous layout before a *follow* optimisation.
    anchor : float
        Strength of the spring to the previous positions when following; 0 for none.
    reorganize_below : float
        Reorganise instead of following when the previous layout keeps less than this share
        of the latent neighbourhoods; 0 never reorganises.
    settled_change : float
        Share of changed latent neighbourhoods below which the spring stiffens, in inverse
        proportion to the share (needs the previous frame's latents).
    max_stiffening : float
        Largest factor applied to ``anchor``.
    max_iter_gain : float
        Largest factor applied to ``warm_iter`` when more than ``settled_change`` of the latent
        neighbourhoods changed (in proportion to the share).
    fft_from : int
        From this many points on: the FFT-interpolated repulsion and the shorter schedules
        (``LARGE_*``), instead of the exact gradient.
    """

    perplexity: float = PERPLEXITY
    warm_iter: int = WARM_ITER
    shrink: float = SHRINK
    anchor: float = ANCHOR
    reorganize_below: float = REORGANIZE_BELOW
    settled_change: float = SETTLED_CHANGE
    max_stiffening: float = MAX_STIFFENING
    max_iter_gain: float = MAX_ITER_GAIN
    fft_from: int = FFT_FROM

    def but(self, **changes) -> EmbedSettings:
        """A copy with some settings changed."""
        return replace(self, **changes)


class Embedder:
    """The embedding of one probe set, frame after frame, and its memory of the last frame.

    Parameters
    ----------
    seed : int
        Seeds every random choice: equal inputs give bit-identical outputs on one machine (a
        CPU with AVX2 and one without round some sums differently: reporter/embedding/_kernels.c).
    settings : EmbedSettings
    layout : array_like, shape (N, 2), optional
        The embedding to start the next frame from (the last frame's). A degenerate one
        (NaN/Inf, or no spread along an axis) is ignored: the next frame starts from scratch.
    latents : array_like, shape (N, d), optional
        Latents of the last frame embedded from finite values; the spring stiffens as the
        latents' neighbourhoods stop changing from these.

    Attributes
    ----------
    layout, latents : np.ndarray or None
        As above, updated by every :meth:`embed`.
    neighbours : np.ndarray of int or None
        Nearest latent neighbours of ``latents``, nearest first, as :func:`affinities` found
        them: the next frame measures how they changed without searching them again.
        Searched again (the same way, so the same lists) after a resume.
    """

    _plane = _plane_of = None  # layout_neighbours() and the layout they are of

    def __init__(self, seed=0, settings=EmbedSettings(), *, layout=None, latents=None):
        self.seed = seed
        self.settings = settings
        self.layout = None if layout is None else np.asarray(layout, dtype=np.float64)
        self.latents = None if latents is None else np.ascontiguousarray(latents, dtype=np.float64)
        self.neighbours = None

    @classmethod
    def resume(cls, frame_files, seed=0, settings=EmbedSettings()) -> Embedder:
        """An embedder that continues after saved frames exactly as it would have without a restart.

        Parameters
        ----------
        frame_files : sequence of path-like
            The saved frames' ``.npz`` files, oldest first (``embedding`` and, since they have
            been kept, ``latents``). The last one's embedding is the layout to start from; the
            latest whose latents are all finite gives the latents. Reports written before the
            files kept latents resume without them.
        """
        frame_files = [Path(f) for f in frame_files]
        layout = latents = None
        if frame_files:
            with np.load(frame_files[-1]) as saved:
                layout = saved["embedding"]
        for path in reversed(frame_files):
            with np.load(path) as saved:
                if "latents" not in saved.files:
                    break
                if finite_rows(saved["latents"]).all():
                    latents = saved["latents"]
                    break
        return cls(seed, settings, layout=layout, latents=latents)

    def embed(self, latents):
        """Embed one frame of latent vectors in 2-D, warm-started from the last frame.

        Without a usable layout to start from the frame is a t-SNE from scratch (PCA
        initialisation, openTSNE's early exaggeration schedule, then one warm step onto itself
        so that frame 0 has the size of the frames that follow). Otherwise a short optimisation
        from the last layout (see the module docstring), aligned onto it. The embedder then
        remembers this frame.

        Parameters
        ----------
        latents : array_like, shape (N, d)
            Bottleneck vectors of the probe set at one EVAL step.

        Returns
        -------
        np.ndarray, shape (N, 2), float64, or None
            The embedding; ``None`` when any latent value is NaN or Inf. That is a property of
            the training run (it diverged), not a mistake of the user, so it is not an
            exception: the caller marks the frame as non-finite, and the embedder keeps its
            memory of the last good frame.

        Raises
        ------
        ValueError
            If ``latents`` is not 2-D with at least 4 points or does not match the remembered
            layout (a bug in the caller: the pipeline checks the probe size first).
        """
        latents = np.asarray(latents, dtype=np.float64)
        if latents.ndim != 2 or latents.shape[0] < 4:
            raise ValueError(f"latents must be (N, d) with N >= 4, got shape {latents.shape}")
        if self.layout is not None and self.layout.shape != (latents.shape[0], 2):
            raise ValueError(
                f"previous frame has shape {self.layout.shape}, expected ({latents.shape[0]}, 2)"
            )
        if not finite_rows(latents).all():
            return None
        latents = np.ascontiguousarray(latents)
        previous = self.layout if self.layout is not None and _usable_start(self.layout) else None
        before = None
        if self.latents is not None and previous is not None and self.settings.anchor > 0:
            before = self._previous_neighbours()
        guess = self.neighbours if self.neighbours is not None and len(self.neighbours) == len(latents) else None
        kept = self.layout_neighbours() if previous is not None else None
        embedding, neighbours = _embed(latents, previous, before, guess, self.settings, self.seed, kept)
        self.layout, self.latents, self.neighbours = embedding, latents, neighbours
        return embedding

    def layout_neighbours(self):
        """The NEIGHBOURHOOD nearest other points of every point of ``layout`` in the plane
        (:func:`reporter.embedding.quality.plane_neighbours`), or None without a finite layout. Kept until
        the layout changes: the next frame and this frame's quality figures need the same lists."""
        if self.layout is None or not np.isfinite(self.layout).all():
            return None
        if self._plane_of is not self.layout:
            self._plane, self._plane_of = plane_neighbours(self.layout, NEIGHBOURHOOD), self.layout
        return self._plane

    def _previous_neighbours(self):
        k = _neighbour_count(len(self.latents), self.settings.perplexity)
        if self.neighbours is None or self.neighbours.shape[1] != k:
            # Searched exactly as affinities() searches, so both ways give the same lists.
            self.neighbours, _ = nearest_neighbours(self.latents, k)
        return self.neighbours


def _embed(latents, previous, before, guess, settings, seed, previous_plane=None):
    """One frame: (embedding, nearest latent neighbours).

    ``before``: the previous frame's neighbours, to measure the change; ``guess``: neighbours
    to start the exact search from; ``previous_plane``: ``previous``'s own neighbours in the plane.
    """
    P, _, neighbours = affinities(latents, settings.perplexity, guess=guess)
    fft = len(latents) >= settings.fft_from
    kl = fft_kl if fft else exact_kl

    if previous is None:
        init = initialization.pca(latents, random_state=seed)
        exaggerated, plain = ((LARGE_EARLY_EXAGGERATION_ITER, LARGE_FIRST_FRAME_ITER) if fft
                              else (EARLY_EXAGGERATION_ITER, FIRST_FRAME_ITER))
        descent = _Descent(init)
        descent.run(P, kl, exaggerated, exaggeration=EARLY_EXAGGERATION)
        previous = descent.run(P, kl, plain).copy()
        before = previous_plane = None  # the frame it is warm-started from is itself
        # Then one warm step onto itself, as every later frame gets: frame 0 looks like the rest.

    k = min(NEIGHBOURHOOD, neighbours.shape[1])
    anchor = settings.anchor
    warm_iter = min(settings.warm_iter, LARGE_WARM_ITER) if fft else settings.warm_iter
    if settings.reorganize_below > 0 and neighbourhood_kept(previous, neighbours, k, previous_plane) \
            < settings.reorganize_below:
        init = initialization.rescale(previous, target_std=SMALL_SPREAD)
        gradient = kl
    else:
        init = previous * settings.shrink
        if before is not None and anchor > 0:
            change = latent_change(before, neighbours, k)
            anchor *= float(np.clip(settings.settled_change / max(change, 1e-9), 1.0, settings.max_stiffening))
            warm_iter = int(round(warm_iter * np.clip(change / settings.settled_change, 1.0,
                                                      settings.max_iter_gain)))
        gradient = _anchored_gradient(previous, anchor, kl) if anchor > 0 else kl
    init -= init.mean(axis=0)
    embedding = _Descent(init).run(P, gradient, warm_iter)
    return _same_spread(procrustes(embedding, previous), previous), neighbours


class _Descent:
    """openTSNE's batch gradient descent with momentum and per-coordinate gains, from ``init``.

    The same steps as ``openTSNE.TSNEEmbedding.optimize`` with its defaults (learning rate N /
    exaggeration, MOMENTUM, MIN_GAIN, steps of at most MAX_STEP, the layout kept centred), each in
    one C call (reporter/embedding/_kernels.c) instead of a dozen NumPy ones: at 1,000 points the step cost
    more than the exact gradient. Gains and momentum carry over from one :meth:`run` to the next.
    """

    def __init__(self, init):
        self.embedding = np.array(init, dtype=np.float64, order="C")
        self.update = np.zeros_like(self.embedding)
        self.gains = np.ones_like(self.embedding)

    def run(self, P, objective, n_iter, exaggeration=1.0):
        """``n_iter`` steps down ``objective`` (an openTSNE-style KL gradient) under affinities P."""
        learning_rate = len(self.embedding) / exaggeration
        P *= exaggeration  # and back afterwards, in place, as openTSNE does: the same P to the last bit
        try:
            for _ in range(n_iter):
                _, gradient = objective(self.embedding, P, fft_params=FFT_GRID)
                _kernels.descend(self.embedding, gradient, self.update, self.gains, learning_rate, MOMENTUM,
                                 MIN_GAIN, MAX_STEP)
        finally:
            P /= exaggeration
        return self.embedding


def _same_spread(layout, reference):
    """``layout`` scaled about its centroid to the root-mean-square radius of ``reference``.

    The overall size of a t-SNE layout says nothing about the data (it grows with every
    iteration); keeping one size makes saved coordinates comparable from frame to frame. Sizes
    of clusters relative to each other are untouched.
    """
    centre = layout.mean(axis=0)
    radius = np.sqrt(((layout - centre) ** 2).sum(axis=1).mean())
    target = np.sqrt(((reference - reference.mean(axis=0)) ** 2).sum(axis=1).mean())
    return centre + (layout - centre) * (target / radius) if radius > 0 else layout
