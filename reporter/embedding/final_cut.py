"""The final cut: every frame of a finished run re-embedded together (dynamic t-SNE).

The live frames are chosen one at a time: each follows the last, so it keeps neighbourhoods the
latents have already left. Once a run has ended all its frames are known. Dynamic t-SNE (Rauber
et al., EuroVis 2016) then optimises every frame's t-SNE cost together with a penalty on each
point's movement between neighbouring frames::

    cost = sum_t KL(P_t || Q_t) + spring / N * sum_t sum_i rho(|y_ti - y_(t+1)i|)

Two choices, both measured (docs/benchmarks.md, "The final cut"), make it as good as a fresh
t-SNE and steadier than the live frames:

- **A t-SNE from scratch per frame, together.** Each window's frames start from their live
  layouts shrunk to a standard deviation of INIT_STD, as openTSNE rescales an initialisation, and
  take openTSNE's whole schedule (early exaggeration 12 for 250 steps, then the plain steps). The
  shrunk live layouts give every frame the same arrangement to grow from; the exaggerated phase
  lets each frame form the clusters its own latents hold, which a descent from the live layout
  (a local correction) did not: it kept the live frames' stale neighbourhoods.
- **A spring that pins what need not move and lets go of what must.** ``rho`` is a pseudo-Huber
  penalty: quadratic up to ``reach`` (in t-SNE's units, the Cauchy kernel's width), then
  linear, so its pull on a point never exceeds ``spring * reach / N``. A point whose latent
  neighbours stayed is held where it was; one whose neighbours changed feels a KL pull
  stronger than the spring and moves as far as it needs. A quadratic spring strong enough to hold
  the first held the second too, at a cost in 10-NN accuracy and trustworthiness (the sweep).
  The spring is off while P is exaggerated (the layouts are then far smaller than their final size).

Each frame's P is :func:`reporter.embedding.affinity.affinities`, its KL gradient the engine's
(:func:`reporter.embedding.gradients.kl_objective`: openTSNE's Barnes-Hut or FFT one, or the C
accelerator's exact or FFT one), the descent openTSNE's rule (momentum, per-coordinate gains,
steps of at most MAX_STEP) over all frames of a window at once.

Long runs: frames are cut in windows of ``window`` frames that overlap by ``overlap``; the frame
before a window (already cut) is held fixed and pulls on the window's first frame, so the chain
of springs runs through the whole run while the cost stays linear in the number of frames. The
affinities are computed window by window and dropped when no later window needs them, so memory
holds one window's (376 frames of 10,000 points would otherwise hold 4 GB of P or more), and the
caller's heartbeat comes after every window, not after every frame's P was found.

Afterwards each cut frame is turned onto its live layout (orthogonal Procrustes) and given its
spread, so a cut frame and its live one can be compared side by side. Frames whose latents hold
NaN or Inf keep their live layout (they have no affinities).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reporter.embedding.affinity import PERPLEXITY, affinities
from reporter.embedding.align import procrustes
from reporter.embedding.embed import EARLY_EXAGGERATION, EARLY_EXAGGERATION_ITER, FFT_FROM, finite_rows, same_spread
from reporter.embedding.gradients import BH_THETA, FFT_GRID, MAX_STEP, MIN_GAIN, MOMENTUM, kl_objective

# Chosen by the sweep in docs/benchmarks.md ("The final cut", seed 0 of the three runs). With the
# pseudo-Huber spring the pull that counts is the most it can be, spring x reach: spring 0.3 and
# reach 0.25 met the quality targets on the MNIST runs but moved 0.39-0.45x the seed on
# Fashion-MNIST; a sharper spring with the same or a lower cap (1.0 and 0.05) holds the bulk of
# the points still and met the jitter target there too. Springs above ~2 make the descent
# oscillate (spring x the learning rate N / N is the step on a point's own displacement).
SPRING = 1.0
REACH = 0.05
WINDOW = 8
OVERLAP = 2
ITERATIONS = 300
# openTSNE's schedule for a t-SNE from scratch, as the live embedder's frame 0 takes it (with
# openTSNE's momentum in both phases: at 0.5 in the exaggerated one, as scikit-learn has it, a
# 100-point probe set, whose P is nearly uniform at perplexity 30, collapsed to a point and did
# not grow back without the spring's help).
EARLY_ITERATIONS = EARLY_EXAGGERATION_ITER
# The start: each frame's live layout shrunk to this standard deviation (openTSNE's rescale).
INIT_STD = 1e-4


@dataclass(frozen=True)
class CutSettings:
    """How the final cut optimises.

    Attributes
    ----------
    spring : float
        Strength of the movement penalty between neighbouring frames, per point.
    reach : float
        Displacement, in the layout's units, up to which the penalty grows quadratically; beyond
        it it grows linearly (its pull stays at ``spring * reach`` per point, over N).
    window : int
        Frames optimised together.
    overlap : int
        Frames a window shares with the next (cut again there, with the frames after them).
    iterations : int
        Gradient steps per window after the exaggerated ones, with the spring.
    perplexity : float
        t-SNE perplexity, as the live frames'.
    early_iterations : int
        Gradient steps per window, first, with P multiplied by ``early_exaggeration``.
    early_exaggeration : float
    """

    spring: float = SPRING
    reach: float = REACH
    window: int = WINDOW
    overlap: int = OVERLAP
    iterations: int = ITERATIONS
    perplexity: float = PERPLEXITY
    early_iterations: int = EARLY_ITERATIONS
    early_exaggeration: float = EARLY_EXAGGERATION

    def __post_init__(self):
        if self.window < 1 or not 0 <= self.overlap < self.window:
            raise ValueError(f"a window of {self.window} frames cannot overlap by {self.overlap}")
        if self.reach <= 0:
            raise ValueError(f"the spring's reach must be positive, got {self.reach}")
        if self.spring < 0 or self.iterations < 0 or self.early_iterations < 0 or self.early_exaggeration <= 0:
            raise ValueError("spring and iterations must not be negative, the exaggeration must be positive")


def windows(n_frames, window=WINDOW, overlap=OVERLAP):
    """The (start, stop) frame ranges the cut optimises, in order; they cover ``range(n_frames)``."""
    spans, start = [], 0
    while start < n_frames:
        stop = min(start + window, n_frames)
        spans.append((start, stop))
        if stop == n_frames:
            break
        start = stop - overlap
    return spans


def final_cut(latents, live, settings=CutSettings(), on_window=None):
    """Re-embed every frame of a run together, starting from the live layouts.

    Parameters
    ----------
    latents : sequence of np.ndarray, shape (N, d) each
        The probe set's latents at every frame, oldest first.
    live : sequence of np.ndarray, shape (N, 2) each
        The live frames' layouts, in the same order (aligned with each other, as the live
        embedder leaves them).
    settings : CutSettings
    on_window : callable, optional
        Called as ``on_window(done, total)`` after each window (the caller's heartbeat).

    Returns
    -------
    list of np.ndarray, shape (N, 2), float64
        The cut layouts, each turned onto its live layout and of its spread. Deterministic: no
        random choice is made (the start is the live layouts).
    """
    if len(latents) != len(live):
        raise ValueError(f"{len(latents)} frames of latents but {len(live)} live layouts")
    live = [np.asarray(y, dtype=np.float64) for y in live]
    finite = [bool(finite_rows(x).all() and np.isfinite(y).all()) for x, y in zip(latents, live)]
    # Every frame of a window, the ones it shares with the last window too, grows from its own
    # live layout shrunk: a frame the last window cut is cut again with the frames after it.
    shrunk = [y * (INIT_STD / np.std(y)) if ok and np.std(y) > 0 else y for y, ok in zip(live, finite)]
    cut = [y.copy() for y in live]
    spans = windows(len(live), settings.window, settings.overlap)
    P = {}  # the affinities of the frames of this window only: memory and each call's time stay those of a window
    for done, (start, stop) in enumerate(spans, 1):
        for t in [t for t in P if t < start]:
            del P[t]
        for t in range(start, stop):
            if t not in P:
                P[t] = affinities(np.ascontiguousarray(latents[t], dtype=np.float64),
                                  settings.perplexity)[0] if finite[t] else None
        before = cut[start - 1] if start > 0 and finite[start - 1] else None
        cut[start:stop] = _descend(shrunk[start:stop], [P[t] for t in range(start, stop)], before, settings)
        if on_window is not None:
            on_window(done, len(spans))
    return [same_spread(procrustes(y, ref), ref) if ok else ref.copy()
            for y, ref, ok in zip(cut, live, finite)]


def _pull(displacement, reach):
    """The pseudo-Huber spring's pull per unit of strength: ``d`` up to ``reach``, at most ``reach`` long."""
    length2 = np.sum(displacement * displacement, axis=-1, keepdims=True)
    return displacement / np.sqrt(1.0 + length2 / (reach * reach))


def _descend(start, P, before, settings):
    """openTSNE's descent on one window's frames together: ``settings.early_iterations`` steps with
    P exaggerated and no spring, then ``settings.iterations`` with the spring and P as it is
    (gains and momentum carry over, as in openTSNE's two phases).

    ``before``: the frame before the window, fixed, on a spring to the first. A frame without P
    (non-finite latents) stays where it is; it is left out of the springs.
    """
    Y = np.stack(start)                      # (W, N, 2)
    moving = np.array([p is not None for p in P])
    n = Y.shape[1]
    per_point = settings.spring / n          # the gradient of spring / N * rho(|y_t - y_t+1|)
    # The engine's gradient: with the C accelerator at 1,000 points the exact one, 8x cheaper than
    # Barnes-Hut there. Every engine's signature takes these keywords and ignores the others.
    kl = kl_objective(n, FFT_FROM)
    params = {"dof": 1, "bh_params": {"theta": BH_THETA}, "fft_params": FFT_GRID, "n_jobs": 1}
    update = np.zeros_like(Y)
    gains = np.ones_like(Y)
    # A spring joins two frames that both move (a kept frame has another scale while the rest grow).
    joined = (moving[1:] & moving[:-1])[:, None, None]
    phases = ((settings.early_iterations, settings.early_exaggeration, False), (settings.iterations, 1.0, True))
    for steps, exaggeration, spring in phases:
        learning_rate = n / exaggeration     # openTSNE's "auto"
        exaggerated = [p * exaggeration if p is not None and exaggeration != 1 else p for p in P]
        for _ in range(steps):
            gradient = np.zeros_like(Y)
            for t in np.flatnonzero(moving):
                gradient[t] = kl(np.ascontiguousarray(Y[t]), exaggerated[t], **params)[1]
            if spring and per_point > 0:
                pull = per_point * _pull(Y[1:] - Y[:-1], settings.reach) * joined
                gradient[:-1] -= pull
                gradient[1:] += pull
                if before is not None:
                    gradient[0] += per_point * _pull(Y[0] - before, settings.reach)
            gradient[~moving] = 0.0
            # openTSNE's rule: gains grow where the gradient changes sign against the update.
            flipped = np.sign(gradient) != np.sign(update)
            gains = np.where(flipped, gains + 0.2, gains * 0.8 + MIN_GAIN)
            update = MOMENTUM * update - learning_rate * gains * gradient
            norms = np.linalg.norm(update, axis=2, keepdims=True)
            update = np.where(norms > MAX_STEP, update * (MAX_STEP / np.maximum(norms, 1e-300)), update)
            Y += update
    # Centring every frame on its own would break the springs between frames: the window is
    # kept where its start put it, and each frame is aligned onto its live one afterwards.
    return list(Y)
