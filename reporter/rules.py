"""Alerts: rules evaluated on the frames seen so far, each saying at which step it fired.

Messages say the training step (reporter/trial/steps.py: "step 150", train steps done), as the frames
do; the records keep smdebug's global step too (``step``/``last_step``) for anything reading them.

Every rule is a pure function of the frame records kept in ``state.json`` (and, for the
bottleneck rule, the latest latent vectors). A rule that holds over several consecutive frames
is one alert (an *episode*): ``step`` is the frame where it first held, ``last_step`` the last
one, ``active`` whether it still holds at the latest frame. An empty list means no rule fired.
"""

from __future__ import annotations

import math

import numpy as np

from reporter import ReporterError
from reporter.trial.steps import frame_train_step

RULE_TITLES = {
    "loss_not_decreasing": "Loss not decreasing",
    "overfitting": "Eval loss rising while train loss falls",
    "nonfinite": "NaN or Inf in saved tensors",
    "dead_units": "Bottleneck units always zero",
}

# Relative change below which a loss counts as flat: 0.1 % over the window.
MIN_IMPROVEMENT = 1e-3
MIN_TREND = 1e-3


def evaluate(
    frames: list[dict],
    *,
    latents_last=None,
    window: int = 5,
    min_improvement: float = MIN_IMPROVEMENT,
    min_trend: float = MIN_TREND,
) -> list[dict]:
    """Evaluate every rule on the frames so far.

    Parameters
    ----------
    frames : list of dict
        Frame records as in ``state.json`` (``step``/``global_step``, ``eval_loss``,
        ``train_loss``, ``train_losses``, ``nonfinite``, optionally ``dead_units``), oldest first.
    latents_last : array of shape (N, D), optional
        Bottleneck vectors of the probe set at the latest frame; enables the dead-unit rule
        for that frame and adds its NaN/Inf check.
    window : int
        Number of frames a trend must hold over before the loss rules fire.
    min_improvement : float
        Relative drop of the eval loss over ``window`` frames below which it counts as flat.
    min_trend : float
        Relative change over ``window`` frames a loss must exceed to count as rising/falling.

    Returns
    -------
    list of dict
        Alerts ``{"rule", "title", "step", "last_step", "train_step", "last_train_step", "active",
        "message"}`` sorted by step: ``step``/``last_step`` are global steps, ``train_step``/
        ``last_train_step`` the training steps the message names.
    """
    if window < 2:
        raise ReporterError(f"the alert window must be at least 2 frames, got {window}")
    alerts = (
        loss_not_decreasing(frames, window=window, min_improvement=min_improvement)
        + overfitting(frames, window=window, min_trend=min_trend)
        + nonfinite_values(frames, latents_last=latents_last)
        + dead_bottleneck_units(frames, latents_last=latents_last)
    )
    return sorted(alerts, key=lambda a: (a["step"], a["rule"]))


def dead_units(latents, atol: float = 0.0) -> list[int]:
    """Indices of bottleneck units that are zero (within ``atol``) for every probe image.

    Parameters
    ----------
    latents : array of shape (N, D)
        Bottleneck vectors of one frame's probe set.
    atol : float
        Largest absolute value still counted as zero.
    """
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ReporterError(
            f"bottleneck vectors must be a non-empty (N, D) array, got shape {z.shape}: "
            "check --latent-regex names the bottleneck tensor"
        )
    with np.errstate(invalid="ignore"):
        zero = np.abs(z) <= atol  # NaN compares False: a NaN unit is not "dead", it is broken
    return [int(i) for i in np.flatnonzero(zero.all(axis=0))]


def loss_not_decreasing(frames, *, window=5, min_improvement=MIN_IMPROVEMENT) -> list[dict]:
    """Eval loss (train loss if no eval loss) has not improved over the last ``window`` frames."""
    losses, which = _eval_or_train(frames)
    flags = []
    for i in range(len(frames)):
        if i < window:
            flags.append(False)
            continue
        ref, recent = losses[i - window], losses[i - window + 1 : i + 1]
        if not all(_finite(v) for v in [ref, *recent]):
            flags.append(False)  # non-finite losses are the NaN rule's business
            continue
        flags.append(min(recent) > ref - abs(ref) * min_improvement)

    def message(start, end):
        return (
            f"The {which} loss has not improved by {min_improvement:.1%} over {window} frames "
            f"since step {frame_train_step(frames[start - window]):,} (was {losses[start - window]:.4g}, "
            f"best since {min(losses[start - window + 1 : end + 1]):.4g})."
        )

    return _alerts("loss_not_decreasing", frames, flags, message)


def overfitting(frames, *, window=5, min_trend=MIN_TREND) -> list[dict]:
    """Eval loss trends up while train loss trends down over the last ``window`` frames."""
    steps = [frame_step(f) for f in frames]
    evals = [_num(f.get("eval_loss")) for f in frames]
    trains = frame_train_losses(frames)
    flags = []
    for i in range(len(frames)):
        lo = i - window + 1
        if lo < 0:
            flags.append(False)
            continue
        e = _relative_trend(steps[lo : i + 1], evals[lo : i + 1])
        t = _relative_trend(steps[lo : i + 1], trains[lo : i + 1])
        flags.append(e is not None and t is not None and e > min_trend and t < -min_trend)

    def message(start, end):
        lo = max(0, end - window + 1)
        return (
            f"Over the {window} frames to step {frame_train_step(frames[end]):,} the eval loss rose "
            f"({evals[lo]:.4g} to {evals[end]:.4g}) while the train loss fell "
            f"({trains[lo]:.4g} to {trains[end]:.4g}): the model may be overfitting."
        )

    return _alerts("overfitting", frames, flags, message)


def nonfinite_values(frames, *, latents_last=None) -> list[dict]:
    """Frames flagged ``nonfinite`` by the reader, or with a NaN/Inf loss or latent vector."""
    flags = []
    for i, f in enumerate(frames):
        values = [f.get("eval_loss"), f.get("train_loss")]
        values += [p[1] for p in (f.get("train_losses") or []) if len(p) > 1]
        bad = bool(f.get("nonfinite")) or any(v is not None and not _finite(v) for v in values)
        if i == len(frames) - 1 and latents_last is not None:
            bad = bad or not bool(np.isfinite(np.asarray(latents_last, dtype=np.float64)).all())
        flags.append(bad)

    def message(start, end):
        first, last = frame_train_step(frames[start]), frame_train_step(frames[end])
        span = f"at step {first:,}" if end == start else f"from step {first:,} to step {last:,}"
        return f"NaN or Inf values in the saved tensors {span}: training has diverged."

    return _alerts("nonfinite", frames, flags, message)


def dead_bottleneck_units(frames, *, latents_last=None) -> list[dict]:
    """Bottleneck units that output zero for every probe image, up to the latest frame.

    Uses ``frame["dead_units"]`` where the pipeline stored it (the history) and
    ``dead_units(latents_last)`` for the latest frame.
    """
    if not frames:
        return []
    per_frame = [f.get("dead_units") for f in frames]
    if latents_last is not None:
        per_frame[-1] = dead_units(latents_last)
    latest = per_frame[-1]
    if not latest:
        return []
    # For each unit dead now, walk back while it stayed dead: the step it first went dead.
    since = {}
    for unit in latest:
        i = len(frames) - 1
        while i > 0 and per_frame[i - 1] is not None and unit in per_frame[i - 1]:
            i -= 1
        since[unit] = i
    first = min(since.values())
    n_units = np.asarray(latents_last).shape[1] if latents_last is not None else None
    of = f" of {n_units}" if n_units else ""
    names = ", ".join(str(u) for u in sorted(latest))
    message = (
        f"{len(latest)}{of} bottleneck unit(s) ({names}) output 0 for every probe image "
        f"since step {frame_train_step(frames[first]):,}: they carry no information."
    )
    return [
        {
            "rule": "dead_units",
            "title": RULE_TITLES["dead_units"],
            "step": frame_step(frames[first]),
            "last_step": frame_step(frames[-1]),
            "train_step": frame_train_step(frames[first]),
            "last_train_step": frame_train_step(frames[-1]),
            "active": True,
            "message": message,
            "units": sorted(latest),
        }
    ]


def frame_train_losses(frames) -> list[float | None]:
    """One train loss per frame: ``train_loss``, else the mean of the batch losses since the last frame.

    ``train_losses`` entries are ``[step, loss]``; whether each frame carries only its own
    batches or all of them so far, points are de-duplicated by step and split at frame steps.
    """
    points = {}
    for f in frames:
        for p in f.get("train_losses") or []:
            if len(p) > 1 and p[0] is not None:
                points[p[0]] = _num(p[1])
    out, prev = [], -math.inf
    for f in frames:
        step = frame_step(f)
        value = _num(f.get("train_loss"))
        if value is None:
            batch = [v for s, v in points.items() if prev < s <= step and v is not None]
            value = float(np.mean(batch)) if batch else None
        out.append(value)
        prev = step
    return out


def _eval_or_train(frames):
    evals = [_num(f.get("eval_loss")) for f in frames]
    if any(v is not None for v in evals):
        return evals, "eval"
    return frame_train_losses(frames), "train"


def _relative_trend(steps, values):
    """Least-squares change over the span, relative to the mean level; None if unusable."""
    if any(v is None or not _finite(v) for v in values):
        return None
    x, y = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if np.ptp(x) == 0:
        return None
    slope = np.polyfit(x, y, 1)[0]
    level = abs(float(np.mean(y))) or 1.0
    return float(slope * np.ptp(x) / level)


def _alerts(rule, frames, flags, message) -> list[dict]:
    alerts, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            end = i - 1
            alerts.append(
                {
                    "rule": rule,
                    "title": RULE_TITLES[rule],
                    "step": frame_step(frames[start]),
                    "last_step": frame_step(frames[end]),
                    "train_step": frame_train_step(frames[start]),
                    "last_train_step": frame_train_step(frames[end]),
                    "active": end == len(frames) - 1,
                    "message": message(start, end),
                }
            )
            start = None
    return alerts


def frame_step(frame) -> int:
    """The global step of a frame (else the mode step, else the index): the order of all saved steps."""
    for key in ("global_step", "step", "index"):
        if frame.get(key) is not None:
            return int(frame[key])
    return 0


def _num(value):
    return None if value is None else float(value)


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))
