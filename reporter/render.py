"""One frame of the time-lapse as a picture: probe images, their reconstructions, the 2-D embedding.

Everything is drawn with matplotlib's object API on an Agg canvas (no pyplot, no global figure
state), so frames can be drawn from any thread and the same inputs give the same pixels.

Stable axes. t-SNE coordinates have no unit: their scale drifts from frame to frame while the
arrangement is what matters. The default (``limits=None``) therefore *normalises* each frame:
:func:`fit_to_box` centres the finite points on their bounding box and scales them uniformly so
the larger side spans [-1, 1]; the axes are always :data:`BOX_LIMITS`. Consecutive frames are
Procrustes-aligned upstream, so the view does not jump. A caller who wants raw coordinates
passes ``limits`` explicitly, e.g. ``stable_limits(all_frames)`` computed over a whole run.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reporter import ReporterError
from reporter.atomic import write_bytes

#: Petroff's 10-colour sequence (M. A. Petroff, "Accessible Color Sequences for Data
#: Visualization", 2021; matplotlib's ``petroff10`` style): chosen in a survey to stay
#: distinguishable under the common colour-vision deficiencies. Class ``k`` gets colour ``k % 10``.
CLASS_COLOURS = (
    "#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6",
    "#a96b59", "#e76300", "#b9ac70", "#717581", "#92dadd",
)
PALETTE_NAME = "Petroff 10"

#: Axis limits of every normalised frame (see :func:`fit_to_box`); the margin keeps markers
#: on the edge whole.
BOX_LIMITS = (-1.06, 1.06, -1.06, 1.06)

#: Default picture: 900 x 380 px, small enough for a GIF of ~40 frames under 5 MiB.
FIGSIZE_INCHES = (9.0, 3.8)
DPI = 100

BANNER_COLOUR = CLASS_COLOURS[2]  # a palette colour, so the GIF keeps it exactly
MARKER_AREA = 9.0  # points^2: ~4 px across, so each marker has a pure-colour centre
MAX_EXAMPLE_CLASSES = 10


def class_colour(k: int) -> str:
    """Colour (hex) of class index ``k``; colours repeat after ten classes."""
    return CLASS_COLOURS[int(k) % len(CLASS_COLOURS)]


def fit_to_box(embedding: np.ndarray) -> np.ndarray:
    """Centre and scale an embedding so its finite points fill [-1, 1] along the larger side.

    Parameters
    ----------
    embedding : array (N, 2)
        2-D coordinates; rows with NaN/Inf stay NaN/Inf.

    Returns
    -------
    array (N, 2), float64
        Uniformly scaled (aspect preserved), centred on the bounding box of the finite points.
    """
    y = np.array(embedding, dtype=np.float64, copy=True)
    finite = np.isfinite(y).all(axis=1)
    if not finite.any():
        return y
    lo, hi = y[finite].min(axis=0), y[finite].max(axis=0)
    half = float((hi - lo).max()) / 2.0
    y -= (lo + hi) / 2.0
    if half > 0:
        y /= half
    return y


def stable_limits(embeddings, margin: float = 0.05) -> tuple[float, float, float, float]:
    """Square axis limits holding every finite point of one embedding or of a whole sequence.

    Parameters
    ----------
    embeddings : array (N, 2) or (T, N, 2), or a list of (N_t, 2) arrays
        Compute this once over all frames to draw them in raw coordinates without the view moving.
    margin : float
        Fraction of the side added on each edge.

    Returns
    -------
    (xmin, xmax, ymin, ymax)
    """
    if isinstance(embeddings, (list, tuple)):
        points = np.concatenate([np.asarray(e, dtype=np.float64).reshape(-1, 2) for e in embeddings])
    else:
        points = np.asarray(embeddings, dtype=np.float64).reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        return (-1.0, 1.0, -1.0, 1.0)
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2.0
    half = max(float((hi - lo).max()) / 2.0, 1e-12) * (1.0 + 2.0 * margin)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _as_images(array, name: str, n: int) -> np.ndarray:
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3 or a.shape[0] != n:
        raise ReporterError(
            f"{name} must be {n} images shaped (N,H,W) or (N,1,H,W), got shape {np.shape(array)}: "
            f"check the --{name}-regex option"
        )
    return a


def _examples(labels: np.ndarray, n_classes: int) -> list[int | None]:
    """Index of the first probe image of each class (None where a class is absent)."""
    picks: list[int | None] = []
    for k in range(min(n_classes, MAX_EXAMPLE_CLASSES)):
        hits = np.flatnonzero(labels == k)
        picks.append(int(hits[0]) if len(hits) else None)
    return picks


def _mosaic(inputs, recons, picks, cols):
    """Tiles: each class's input above its reconstruction; NaN marks gaps (drawn as background)."""
    h, w = inputs.shape[1:]
    label_gap, gap = max(h // 4, 4), 1
    pair_rows = math.ceil(len(picks) / cols)
    block_h = label_gap + h + gap + h
    canvas = np.full((pair_rows * block_h, cols * w + (cols - 1) * 2), np.nan)
    shown = [i for i in picks if i is not None]
    lo = float(np.nanmin(inputs[shown])) if shown else 0.0
    hi = float(np.nanmax(inputs[shown])) if shown else 1.0
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        lo, hi = 0.0, 1.0
    anchors = []
    for slot, i in enumerate(picks):
        r, c = divmod(slot, cols)
        top, left = r * block_h + label_gap, c * (w + 2)
        anchors.append((left, top))
        if i is None:
            continue
        canvas[top:top + h, left:left + w] = np.clip((inputs[i] - lo) / (hi - lo), 0, 1)
        rec = np.clip((recons[i] - lo) / (hi - lo), 0, 1)
        canvas[top + h + gap:top + 2 * h + gap, left:left + w] = rec
    return canvas, anchors


def _fmt_loss(value) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def draw_frame(
    embedding,
    labels,
    class_names,
    inputs,
    reconstructions,
    *,
    step: int,
    global_step: int,
    eval_loss,
    train_loss=None,
    limits=None,
    title: str | None = None,
    nonfinite: bool = False,
    figsize=FIGSIZE_INCHES,
    dpi: int = DPI,
) -> np.ndarray:
    """Draw one frame: probe images over their reconstructions, and the embedding by class.

    Parameters
    ----------
    embedding : array (N, 2)
        2-D coordinates of the probe set; non-finite rows are left out.
    labels : array (N,)
        Integer class of each point, an index into ``class_names``.
    class_names : sequence of str
        Legend text per class.
    inputs, reconstructions : array (N, H, W) or (N, 1, H, W)
        Probe images and the autoencoder's output; one example per class is shown.
    step, global_step : int
        EVAL step of this frame and the trainer's global step.
    eval_loss, train_loss : float or None
        Losses printed on the frame.
    limits : (xmin, xmax, ymin, ymax) or None
        None (default) normalises this frame with :func:`fit_to_box` and uses
        :data:`BOX_LIMITS`; otherwise raw coordinates are drawn within these fixed limits.
    title : str, optional
        Heading; defaults to "latentlapse".
    nonfinite : bool
        The latents held NaN/Inf: a banner marks the frame (also shown when ``embedding``
        itself has non-finite rows).
    figsize, dpi
        Picture size; the default is 900 x 380 px.

    Returns
    -------
    array (H, W, 3), uint8
        The RGB picture; identical inputs give identical pixels.
    """
    emb = np.asarray(embedding, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[1] != 2:
        raise ReporterError(f"the embedding must be shaped (N, 2), got {emb.shape}")
    n = emb.shape[0]
    lab = np.asarray(labels).reshape(-1)
    if lab.shape[0] != n:
        raise ReporterError(f"{lab.shape[0]} labels for {n} points: check the --labels-regex option")
    if not np.all(np.isfinite(lab.astype(np.float64))) or np.any(lab != np.round(lab)):
        raise ReporterError("labels must be whole numbers: check the --labels-regex option")
    lab = lab.astype(np.int64)
    names = [str(c) for c in class_names]
    if n and (lab.min() < 0 or lab.max() >= len(names)):
        raise ReporterError(
            f"labels run from {lab.min()} to {lab.max()} but there are {len(names)} class names"
        )
    ins = _as_images(inputs, "inputs", n)
    recs = _as_images(reconstructions, "recon", n)
    if recs.shape != ins.shape:
        raise ReporterError(f"reconstructions {recs.shape} do not match inputs {ins.shape}")

    finite = np.isfinite(emb).all(axis=1)
    marked = bool(nonfinite) or not finite.all()
    if limits is None:
        emb, limits = fit_to_box(emb), BOX_LIMITS

    fig = Figure(figsize=figsize, dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)

    # Left: one probe image per class, input above reconstruction.
    picks = _examples(lab, len(names))
    cols = min(5, max(len(picks), 1))
    canvas, anchors = _mosaic(ins, recs, picks, cols)
    ax_img = fig.add_axes((0.045, 0.05, 0.30, 0.80))
    ax_img.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax_img.set_anchor("N")
    ax_img.set_axis_off()
    h = ins.shape[1]
    # Long names (Fashion-MNIST's "T-shirt/top") get a smaller font so neighbours don't touch.
    long_names = max((len(names[k]) for k in range(len(anchors))), default=0) > 7
    for slot, (left, top) in enumerate(anchors):
        ax_img.text(left, top - 1.5, names[slot][:12], color=class_colour(slot),
                    fontsize=6 if long_names else 7, fontweight="normal" if long_names else "bold",
                    ha="left", va="bottom", clip_on=False)
        if slot % cols == 0:
            ax_img.text(-2, top + h / 2, "in", fontsize=6.5, ha="right", va="center", clip_on=False)
            ax_img.text(-2, top + 1 + 1.5 * h, "out", fontsize=6.5, ha="right", va="center",
                        clip_on=False)

    # Middle: the probe set's embedding, drawn in a fixed shuffled order so no class is
    # always painted over the others.
    ax = fig.add_axes((0.37, 0.05, 0.80 * figsize[1] / figsize[0], 0.80))
    order = np.random.default_rng(0).permutation(n)
    order = order[finite[order]]
    colours = np.array([class_colour(k) for k in lab[order]], dtype=object)
    ax.scatter(emb[order, 0], emb[order, 1], s=MARKER_AREA, c=list(colours), linewidths=0,
               rasterized=True)
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="box")
    for spine in ax.spines.values():
        spine.set_color("#94a4a2")
    if marked:
        for spine in ax.spines.values():
            spine.set_color(BANNER_COLOUR)
            spine.set_linewidth(3)
        ax.text(0.5, 0.985, f"latents contain NaN/Inf\n{int(finite.sum())} of {n} points shown",
                transform=ax.transAxes, ha="center", va="top", fontsize=8, fontweight="bold",
                color="white", bbox=dict(boxstyle="square,pad=0.3", facecolor=BANNER_COLOUR,
                                         edgecolor=BANNER_COLOUR))

    # Right: legend, step and losses.
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=6, markeredgewidth=0,
                      markerfacecolor=class_colour(k), label=name) for k, name in enumerate(names)]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.74, 0.86), frameon=False,
               fontsize=8, ncols=1 if len(names) <= 10 else 2, handletextpad=0.3,
               borderaxespad=0.0, labelspacing=0.45)
    fig.text(0.045, 0.94, title or "latentlapse", fontsize=12, fontweight="bold", va="center")
    fig.text(0.37, 0.94, f"EVAL step {step}   (global step {global_step})", fontsize=9,
             va="center")
    fig.text(0.74, 0.94, f"eval loss {_fmt_loss(eval_loss)}\ntrain loss {_fmt_loss(train_loss)}",
             fontsize=8, va="center", family="monospace")

    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB picture (no timestamps: the same picture gives the same bytes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB picture (H, W, 3) uint8 to ``path`` as a PNG, atomically."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 picture, got {rgb.shape} {rgb.dtype}")
    write_bytes(path, encode_png(rgb))
