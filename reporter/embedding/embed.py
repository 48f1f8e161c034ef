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

The affinities (:mod:`reporter.embedding.affinity`) are openTSNE's, from exact neighbours found
faster than its neighbour index for every frame; the gradients and the descent
(:mod:`reporter.embedding.gradients`) are openTSNE's, or the same steps in the optional C
accelerator (:mod:`reporter.embedding.accelerator`). Up to ``fft_from`` points the repulsion is
Barnes-Hut's on openTSNE's path and exact (every pair) with the accelerator; from there it is
FIt-SNE's FFT interpolation on openTSNE's grid on both, with a shorter schedule (measured: see
docs/benchmarks.md, "Scale").

What one frame needs from the frames before it (the previous layout, the previous latents and
their nearest neighbours) is held by one :class:`Embedder` per report, restored on resume from
the saved frames. Non-finite latents are not an error of the user: :meth:`Embedder.embed`
returns ``None`` for them and the caller marks the frame (see :func:`finite_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from openTSNE import initialization

from reporter.embedding.affinity import PERPLEXITY, affinities, neighbour_count
from reporter.embedding.align import procrustes
from reporter.embedding.gradients import Descent, anchored, kl_objective
from reporter.embedding.neighbours import nearest_neighbours, plane_neighbours

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
# From this many points on, the FFT-interpolated repulsion is cheaper per iteration than the exact
# one (measured on real latents, one thread, with the accelerator: docs/benchmarks.md, "Scale").
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
        The layout's own (:func:`reporter.embedding.neighbours.plane_neighbours`), if known.

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
        Seeds every random choice: equal inputs give bit-identical outputs on one machine and
        engine (:mod:`reporter.embedding.accelerator`; a CPU with AVX2 and one without round some
        of the accelerator's sums differently: reporter/embedding/_kernels.c).
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
        Nearest latent neighbours of ``latents``, nearest first, as ``affinities()`` found
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
        (:func:`reporter.embedding.neighbours.plane_neighbours`), or None without a finite layout. Kept until
        the layout changes: the next frame and this frame's quality figures need the same lists."""
        if self.layout is None or not np.isfinite(self.layout).all():
            return None
        if self._plane_of is not self.layout:
            self._plane, self._plane_of = plane_neighbours(self.layout, NEIGHBOURHOOD), self.layout
        return self._plane

    def _previous_neighbours(self):
        k = neighbour_count(len(self.latents), self.settings.perplexity)
        if self.neighbours is None or self.neighbours.shape[1] != k:
            # Searched exactly as affinities() searches, so both ways give the same lists.
            self.neighbours, _ = nearest_neighbours(self.latents, k)
        return self.neighbours


def _embed(latents, previous, before, guess, settings, seed, previous_plane=None):
    """One frame: (embedding, nearest latent neighbours).

    ``before``: the previous frame's neighbours, to measure the change; ``guess``: neighbours
    to start the exact search from; ``previous_plane``: ``previous``'s own neighbours in the plane.
    """
    P, neighbours = affinities(latents, settings.perplexity, guess=guess)
    fft = len(latents) >= settings.fft_from
    kl = kl_objective(len(latents), settings.fft_from)

    if previous is None:
        init = initialization.pca(latents, random_state=seed)
        exaggerated, plain = ((LARGE_EARLY_EXAGGERATION_ITER, LARGE_FIRST_FRAME_ITER) if fft
                              else (EARLY_EXAGGERATION_ITER, FIRST_FRAME_ITER))
        descent = Descent(init)
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
        gradient = anchored(kl, previous, anchor) if anchor > 0 else kl
    init -= init.mean(axis=0)
    embedding = Descent(init).run(P, gradient, warm_iter)
    return same_spread(procrustes(embedding, previous), previous), neighbours


def same_spread(layout, reference):
    """``layout`` scaled about its centroid to the root-mean-square radius of ``reference``.

    The overall size of a t-SNE layout says nothing about the data (it grows with every
    iteration); keeping one size makes saved coordinates comparable from frame to frame. Sizes
    of clusters relative to each other are untouched.
    """
    centre = layout.mean(axis=0)
    radius = np.sqrt(((layout - centre) ** 2).sum(axis=1).mean())
    target = np.sqrt(((reference - reference.mean(axis=0)) ** 2).sum(axis=1).mean())
    return centre + (layout - centre) * (target / radius) if radius > 0 else layout
