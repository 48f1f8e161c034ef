"""Line charts as SVG geometry: the site draws its curves here so they need no script to show.

Pure functions from points to coordinates; the template turns the result into ``<svg>``.
"""

from __future__ import annotations

import math

from reporter.trial.steps import batch_steps, frame_train_step

WIDTH, HEIGHT = 640, 260
# Plot area inside the SVG: room on the left for y labels, below for x labels.
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 12, 34


def x_domain(frames, run_info=None) -> tuple[float, float]:
    """The training-step range shared by every chart, so one cursor position fits them all.

    Frames count at their training step, TRAIN-loss points (kept as global steps) at theirs
    (reporter/trial/steps.py); ``run_info`` is the trainer's run file, if any.
    """
    batch_step = batch_steps(frames, run_info)
    steps = []
    for f in frames:
        steps.append(float(frame_train_step(f, run_info)))
        steps += [float(batch_step(p[0])) for p in f.get("train_losses") or [] if len(p) > 1 and p[0] is not None]
    if not steps:
        return (0.0, 1.0)
    lo, hi = min(steps), max(steps)
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def line_chart(series, domain, *, y_range=None, log_if_ratio=None, title="") -> dict:
    """Lay out series of (step, value) points on one axis of training steps.

    Parameters
    ----------
    series : list of dict
        ``{"key", "label", "points": [(step, value), ...], "markers": bool}``; None, NaN and
        Inf values are gaps in the line.
    domain : (float, float)
        Step range of the x axis.
    y_range : (float, float), optional
        Clamp the y axis to this range (the data range inside it is used, padded).
    log_if_ratio : float, optional
        Use a log y axis when max/min of the positive values exceeds this ratio.
    title : str
        Used for the chart's accessible name.

    Returns
    -------
    dict
        ``width``, ``height``, ``box`` (plot area), ``series`` (``paths`` as SVG path data and
        ``markers`` as (x, y, label)), ``xticks``/``yticks`` as (pixel, label), ``log``,
        ``empty``, and ``x_of`` mapping a step to its x pixel.
    """
    values = [v for s in series for _, v in s["points"] if _ok(v)]
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    lo_x, hi_x = domain

    def x_of(step):
        return round(x0 + (float(step) - lo_x) / (hi_x - lo_x) * (x1 - x0), 2)

    log = bool(
        log_if_ratio and values and min(values) > 0 and max(values) / min(values) > log_if_ratio
    )
    lo_y, hi_y = _y_bounds(values, y_range, log)
    f = math.log10 if log else float

    def y_of(v):
        return round(y1 - (f(v) - f(lo_y)) / (f(hi_y) - f(lo_y)) * (y1 - y0), 2)

    laid = []
    for s in series:
        paths, current, markers = [], [], []
        for step, v in s["points"]:
            if not _ok(v) or (log and v <= 0):
                if current:
                    paths.append(current)
                current = []
                continue
            current.append((x_of(step), y_of(v)))
            if s.get("markers"):
                markers.append((x_of(step), y_of(v), f"step {int(step):,}: {v:.4g}"))
        if current:
            paths.append(current)
        ok = [v for _, v in s["points"] if _ok(v)]
        laid.append(
            {
                "key": s["key"],
                "label": s["label"],
                "paths": [_path(p) for p in paths],
                "markers": markers,
                "latest": f"{ok[-1]:.4g}" if ok else "–",
                "count": len(ok),
            }
        )
    return {
        "title": title,
        "width": WIDTH,
        "height": HEIGHT,
        "box": {"x0": x0, "x1": x1, "y0": y0, "y1": y1},
        "series": laid,
        "xticks": [(x_of(t), _label(t)) for t in nice_ticks(lo_x, hi_x)],
        "yticks": [(y_of(t), _label(t)) for t in (log_ticks(lo_y, hi_y) if log else nice_ticks(lo_y, hi_y))],
        "log": log,
        "empty": not values,
        "x_of": x_of,
    }


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 times a power of ten) covering lo..hi."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.75)
    first = math.ceil(lo / step - 1e-9) * step
    count = int(math.floor((hi - first) / step + 1e-9)) + 1
    return [round(first + i * step, 12) for i in range(count)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks at 1, 2 and 5 times powers of ten within lo..hi (at least the range's ends)."""
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        ticks += [m * 10**e for m in (1, 2, 5) if lo <= m * 10**e <= hi]
    return ticks if len(ticks) >= 2 else [lo, hi]


def _y_bounds(values, y_range, log):
    if not values:
        return y_range or (0.0, 1.0)
    lo, hi = min(values), max(values)
    if log:
        return lo / 1.15, hi * 1.15
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 0.1
    lo, hi = lo - pad, hi + pad
    if y_range:
        lo, hi = max(lo, y_range[0]), min(hi, y_range[1])
        if hi <= lo:
            lo, hi = y_range
    return lo, hi


def _path(points) -> str:
    if len(points) == 1:  # a lone point still shows: a short horizontal tick
        (x, y), = points
        return f"M{x - 2:g},{y:g}H{x + 2:g}"
    return "M" + "L".join(f"{x:g},{y:g}" for x, y in points)


def _label(t: float) -> str:
    if t == 0:
        return "0"
    if abs(t) >= 1000:
        return f"{t:,.0f}"
    return f"{t:.3g}"


def _ok(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
