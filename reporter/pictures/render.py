"""One frame of the time-lapse as a picture: probe images, their reconstructions, the 2-D embedding.

Everything is drawn with matplotlib's object API on an Agg canvas (no pyplot), so the same
inputs give the same pixels. The frames of one report share a layout: its figure is built and
its unchanging part drawn once, and each frame paints only what changes (:class:`_FrameCanvas`,
behind a lock, so frames can still be drawn from any thread).

Stable axes. t-SNE coordinates have no unit: their scale drifts from frame to frame while the
arrangement is what matters. The default (``limits=None``) therefore *normalises* each frame:
:func:`fit_to_box` centres the finite points on their bounding box and scales them uniformly so
the larger side spans [-1, 1]; the axes are always :data:`BOX_LIMITS`. Consecutive frames are
Procrustes-aligned upstream, so the view does not jump. A caller who wants raw coordinates
passes ``limits`` explicitly, e.g. ``stable_limits(all_frames)`` computed over a whole run.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from reporter import ReporterError
from reporter.pictures.colours import CLASS_COLOURS, UNLABELLED_COLOUR, class_colour
from reporter.trial.images import ImageView, probe_pictures
from reporter.trial.labels import checked_classes
from reporter.trial.steps import step_text


#: Axis limits of every normalised frame (see :func:`fit_to_box`); the margin keeps markers
#: on the edge whole.
BOX_LIMITS = (-1.06, 1.06, -1.06, 1.06)

#: Default picture: 900 x 540 px. Read at ~700 px wide in a pull request (its text is >= 12 px
#: high at 900 px, so >= 9 px there) and on a 16:9-ish slide.
FIGSIZE_INCHES = (9.0, 5.4)
DPI = 100

BANNER_COLOUR = CLASS_COLOURS[2]  # a palette colour, so the GIF keeps it exactly
MARKER_AREA = 16.0  # points^2: ~5.5 px across, so each marker has a pure-colour centre
MAX_EXAMPLE_CLASSES = 10
AXIS_COLOUR = "#bfbfbf"
TEXT_GREY = "#555555"
BAR_TRACK, BAR_DONE = "#e6e6e6", "#555555"  # greys: the GIF's palette holds them exactly


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


def _pictures(inputs, reconstructions, n: int):
    """The frame's pictures as reporter.trial.images views (arrays of any layout are read here), or None."""
    if inputs is None or isinstance(inputs, ImageView):
        shown = inputs if inputs is not None and inputs.shown else None
        recon = reconstructions if shown is not None and reconstructions is not None and reconstructions.shown else None
        return shown, recon
    shown, recon = probe_pictures(inputs, reconstructions, n)
    return (shown, recon if recon is not None and recon.shown else None) if shown.shown else (None, None)


def _labels(labels, class_names, n: int):
    """Integer classes and legend names, checked; (None, []) for a trial without labels."""
    if labels is None:
        return None, []
    names = [str(c) for c in class_names]
    lab = checked_classes(labels, n, len(names))
    return lab, names


def _examples(labels: np.ndarray, n_classes: int) -> list[int | None]:
    """Index of the first probe image of each class (None where a class is absent)."""
    picks: list[int | None] = []
    for k in range(min(n_classes, MAX_EXAMPLE_CLASSES)):
        hits = np.flatnonzero(labels == k)
        picks.append(int(hits[0]) if len(hits) else None)
    return picks


def _thumbnails(inputs, recons, picks):
    """RGB, one row per example: its input, a gap, its reconstruction (if any); gaps are white.

    ``inputs`` and ``recons`` are reporter.trial.images views: their stated normalisation is applied.
    """
    h, w = inputs.shape
    gap = max(w // 7, 2)
    row_h = h + gap
    canvas = np.ones((len(picks) * row_h, 2 * w + gap if recons is not None else w, 3))
    for slot, i in enumerate(picks):
        if i is None:
            continue
        top = slot * row_h
        canvas[top:top + h, :w] = inputs.take([i])[0]
        if recons is not None:
            canvas[top:top + h, w + gap:] = recons.take([i])[0]
    return canvas


def _fmt_loss(value) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def scatter_by_class(ax, embedding, labels, limits, *, marker_area: float, rasterized: bool = False,
                     spine_width: float = 0.8) -> None:
    """The embedding's finite points in their class colours on ``ax``, square, no ticks.

    Points are drawn in a fixed shuffled order so no class is always painted over the others.
    The frame and the paper figure draw their maps with this. ``labels`` None: one colour.
    """
    finite = np.isfinite(embedding).all(axis=1)
    order = np.random.default_rng(0).permutation(len(embedding))
    order = order[finite[order]]
    ax.scatter(embedding[order, 0], embedding[order, 1], s=marker_area, linewidths=0,
               c=[class_colour(k) for k in np.asarray(labels)[order]] if labels is not None
               else UNLABELLED_COLOUR, rasterized=rasterized)
    _square_map(ax, limits, spine_width)


def _square_map(ax, limits, spine_width: float = 0.8) -> None:
    """A map's axes: these limits, square, no ticks, light grey spines."""
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="box")
    for spine in ax.spines.values():
        spine.set_color(AXIS_COLOUR)
        spine.set_linewidth(spine_width)


def map_points(ax, limits, marker_area: float, colours=None):
    """An empty scatter on a square map (``ax``) whose points a canvas sets per frame.

    ``colours``: one per point in drawing order (None: the one colour of unlabelled points).
    Returns the PathCollection: ``set_offsets`` places the points.
    """
    points = ax.scatter([], [], s=marker_area, linewidths=0, rasterized=True,
                        c=UNLABELLED_COLOUR if colours is None else None)
    if colours is not None:
        points.set_facecolors(colours)
    _square_map(ax, limits)
    return points


def draw_heading(fig, px: "PixelLayout", pt: float, title: str, with_bar: bool):
    """A frame's heading: the title (left), the step's text (right, empty) and a bar of progress.

    Sizes are pixels of the default 900-px-wide picture: ``pt`` is one of them in points.
    Returns the step's Text and the bar's done Rectangle (None without a bar): a canvas sets
    their text and width per frame.
    """
    fig.text(*px.point(24, 26), title, fontsize=15 * pt, fontweight="bold", va="center", ha="left")
    step = fig.text(*px.point(876, 26), "", fontsize=15 * pt, va="center", ha="right")
    done = None
    if with_bar:
        bar = fig.add_axes(px.box(24, 46, 852, 6))
        bar.set_axis_off()
        bar.set_xlim(0, 1)
        bar.set_ylim(0, 1)
        bar.add_patch(Rectangle((0, 0), 1, 1, facecolor=BAR_TRACK, edgecolor="none"))
        done = bar.add_patch(Rectangle((0, 0), 0, 1, facecolor=BAR_DONE, edgecolor="none"))
    return step, done


class PixelLayout:
    """Places in pixels from the top left of a ``width`` x ``height`` picture, in figure fractions."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height

    def box(self, left, top, w, h):
        return (left / self.width, 1 - (top + h) / self.height, w / self.width, h / self.height)

    def point(self, x, y):
        return (x / self.width, 1 - y / self.height)


def draw_frame(
    embedding,
    labels,
    class_names,
    inputs,
    reconstructions,
    *,
    step: int,
    total_steps: int | None = None,
    eval_loss=None,
    train_loss=None,
    limits=None,
    title: str | None = None,
    nonfinite: bool = False,
    global_step: int | None = None,
    figsize=FIGSIZE_INCHES,
    dpi: int = DPI,
) -> np.ndarray:
    """Draw one frame: the embedding by class, large, and beside it each class with an example.

    Layout (900 x 540 px by default), made to be read at ~700 px wide in a pull request and on
    a slide: a heading with the training step and a progress bar of it; the probe set's
    embedding in a square that is the largest element; on the right one row per class: its
    colour, its name, one of its probe images and the autoencoder's reconstruction of it.

    Parameters
    ----------
    embedding : array (N, 2)
        2-D coordinates of the probe set; non-finite rows are left out.
    labels : array (N,) or None
        Integer class of each point, an index into ``class_names``; None: one colour.
    class_names : sequence of str
        Legend text per class (the first 20 are listed, then how many more).
    inputs, reconstructions : reporter.trial.images.ImageView, array in any layout it reads, or None
        Probe images and the autoencoder's output; one example per class is shown (up to
        ten classes; a few points without labels). None: the map and the names alone.
    step : int
        The training step of this frame (train steps done), as people count them.
    total_steps : int, optional
        Train steps of the whole run: the heading says "step 925 of 937" and a bar shows the
        progress. Without it, "step 925" and no bar.
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
    global_step : int, optional
        Accepted and not drawn: smdebug's global step (it counts EVAL passes too) belongs in
        the data files, not in the picture.
    figsize, dpi
        Picture size; the default is 900 x 540 px.

    Returns
    -------
    array (H, W, 3), uint8
        The RGB picture; identical inputs give identical pixels.
    """
    del global_step
    emb = np.asarray(embedding, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[1] != 2:
        raise ReporterError(f"the embedding must be shaped (N, 2), got {emb.shape}")
    n = emb.shape[0]
    lab, names = _labels(labels, class_names, n)
    ins, recs = _pictures(inputs, reconstructions, n)

    finite = np.isfinite(emb).all(axis=1)
    marked = bool(nonfinite) or not finite.all()
    if limits is None:
        emb, limits = fit_to_box(emb), BOX_LIMITS
    if lab is None:
        picks = [int(i) for i in np.linspace(0, n - 1, min(n, 5))] if ins is not None else []
        names = [f"#{i}" for i in picks] or ["no labels"]
    with_images = ins is not None and len(names) <= MAX_EXAMPLE_CLASSES
    if with_images and lab is not None:
        picks = _examples(lab, len(names))
    thumbs = _thumbnails(ins, recs, picks) if with_images else None
    order = np.random.default_rng(0).permutation(n)
    order = order[finite[order]]

    # Everything but the step, the bar, the points, the example pictures and the losses is the
    # same from frame to frame of a report: that part is drawn once (see _FrameCanvas).
    layout = _FrameLayout(
        figsize=tuple(figsize), dpi=dpi, title=title or "latentlapse", names=tuple(names),
        with_bar=bool(total_steps), limits=tuple(float(v) for v in limits),
        colours=tuple(class_colour(k) for k in lab[order]) if lab is not None else None,
        marked=(int(finite.sum()), n) if marked else None,
        thumbs_shape=None if thumbs is None else thumbs.shape,
        image_shape=None if thumbs is None else tuple(ins.shape), with_recons=recs is not None,
    )
    with _CANVAS_LOCK:
        global _CANVAS
        if _CANVAS is None or _CANVAS.layout != layout:
            _CANVAS = _FrameCanvas(layout)
        return _CANVAS.paint(
            points=emb[order], thumbs=thumbs, step=step_text(step, total_steps),
            done=min(max(float(step) / float(total_steps), 0.0), 1.0) if total_steps else 0.0,
            losses=f"eval loss {_fmt_loss(eval_loss)}    train loss {_fmt_loss(train_loss)}",
        )


@dataclass(frozen=True)
class _FrameLayout:
    """What fixes a frame's picture apart from its step, points, example pictures and losses."""

    figsize: tuple
    dpi: int
    title: str
    names: tuple            # legend rows (class names, or the example points' names)
    with_bar: bool
    limits: tuple
    colours: tuple | None   # the points' colours in drawing order; None: unlabelled
    marked: tuple | None    # (points shown, points) when the latents hold NaN/Inf
    thumbs_shape: tuple | None
    image_shape: tuple | None
    with_recons: bool


_CANVAS = None
_CANVAS_LOCK = threading.Lock()


class _FrameCanvas:
    """A frame's figure, built once per :class:`_FrameLayout`, painted once per frame.

    Its unchanging part (heading, legend, the map's frame, the banner) is drawn once and kept
    as pixels; a frame restores them and draws its own artists (step, bar, points, the map's
    spines over the points, the example pictures, the losses) on top, in that order. A new
    canvas draws its first frame the same way, so the same inputs give the same pixels whether
    or not the canvas drew frames before (building the figure and drawing all of it cost ~3x
    more than this at 1,000 points).
    """

    def __init__(self, layout: _FrameLayout):
        self.layout = layout
        figsize, dpi = layout.figsize, layout.dpi
        fig = Figure(figsize=figsize, dpi=dpi, facecolor="white")
        FigureCanvasAgg(fig)
        # Sizes below are pixels of the default 900 x 540 picture, scaled to the one asked for.
        px = PixelLayout(900.0, 540.0)
        unit = figsize[0] * dpi / 900.0  # points per default pixel, times the dpi ratio
        pt = 72.0 / 100.0 * unit  # a default pixel in points
        dynamic = []

        self.step, self.bar = draw_heading(fig, px, pt, layout.title, layout.with_bar)
        dynamic.extend(a for a in (self.step, self.bar) if a is not None)

        # The probe set's embedding, the largest element; the points' drawing order is the caller's.
        ax = fig.add_axes(px.box(24, 64, 460, 460))
        self.points = map_points(ax, layout.limits, MARKER_AREA * unit ** 2, layout.colours)
        dynamic.append(self.points)
        if layout.marked:
            for spine in ax.spines.values():
                spine.set_color(BANNER_COLOUR)
                spine.set_linewidth(3)
        dynamic.extend(ax.spines.values())  # over the points, as a full draw has them
        if layout.marked:
            shown, n = layout.marked
            dynamic.append(ax.text(0.5, 0.985, f"latents contain NaN/Inf\n{shown} of {n} points shown",
                                   transform=ax.transAxes, ha="center", va="top", fontsize=11 * pt,
                                   fontweight="bold", color="white",
                                   bbox=dict(boxstyle="square,pad=0.3", facecolor=BANNER_COLOUR,
                                             edgecolor=BANNER_COLOUR)))

        # One row per class: colour, name, an example and its reconstruction. Without labels, a
        # few example points in the one colour; past 20 classes the rest is summed up in words.
        names = layout.names
        shown = names[:len(CLASS_COLOURS)]
        n_rows = len(shown) + (1 if len(names) > len(shown) else 0)
        with_images = layout.thumbs_shape is not None
        top, height = 84.0, 420.0
        columns = 1 if n_rows <= 10 else 2
        per_column = math.ceil(n_rows / columns)
        row_h = min(height / max(per_column, 1), 46.0)
        name_size = min(14.0, 0.4 * row_h) * pt
        # Name column: the marker and the longest name (~0.6 em per character), then the images;
        # the whole block centred in the space right of the scatter.
        longest = max((len(name[:16]) for name in shown), default=1)
        name_column = 0.4 * row_h + 0.6 * longest * name_size / pt + 24
        left, right = 500.0, 876.0
        self.thumbs = None
        if with_images:
            image_h, image_w = layout.image_shape
            thumbs_h, thumbs_w = layout.thumbs_shape[:2]
            # A row's pictures fill its height, unless they are wide (bar codes): then the space.
            scale = min(row_h / (image_h + max(image_w // 7, 2)), (right - left - name_column) / thumbs_w)
            width_px = thumbs_w * scale
            left = max(left, left + (right - left - name_column - width_px) / 2)
            x_img = left + name_column
            ax_img = fig.add_axes(px.box(x_img, top, width_px, thumbs_h * scale))
            self.thumbs = ax_img.imshow(np.ones(layout.thumbs_shape), vmin=0.0, vmax=1.0,
                                        interpolation="nearest", aspect="auto")
            ax_img.set_axis_off()
            dynamic.append(self.thumbs)
            words = ((x_img + width_px * 0.25, "in"), (x_img + width_px * 0.75, "out")) if layout.with_recons \
                else ((x_img + width_px * 0.5, "in"),)
            for x, word in words:
                fig.text(*px.point(x, top - 4), word, fontsize=11 * pt, ha="center", va="bottom",
                         color=TEXT_GREY)
        else:
            left = max(left, left + (right - left - columns * name_column) / 2)
        for k, name in enumerate(shown):
            col, row = divmod(k, per_column)
            x = left + 8 + col * name_column
            # With images, centre the name on the picture of the row (its gap is below it).
            y = top + (row + 0.5) * row_h - (0.06 * row_h if with_images else 0)
            fig.add_artist(Line2D([px.point(x, y)[0]], [px.point(x, y)[1]], linestyle="none",
                                  marker="o", markersize=0.32 * row_h * pt, markeredgewidth=0,
                                  markerfacecolor=class_colour(k) if layout.colours is not None else UNLABELLED_COLOUR,
                                  transform=fig.transFigure))
            fig.text(*px.point(x + 0.4 * row_h, y), name[:16], fontsize=name_size, va="center",
                     ha="left")
        if len(names) > len(shown):
            col, row = divmod(len(shown), per_column)
            fig.text(*px.point(left + 8 + col * name_column, top + (row + 0.5) * row_h),
                     f"+{len(names) - len(shown)} more: colours repeat every {len(CLASS_COLOURS)}",
                     fontsize=name_size * 0.8, va="center", ha="left", color=TEXT_GREY)
        self.losses = fig.text(*px.point(500, 524), "", fontsize=11 * pt, va="bottom", ha="left",
                               color=TEXT_GREY)
        dynamic.append(self.losses)

        for artist in dynamic:
            artist.set_animated(True)  # left out of the full draw below
        self.dynamic = dynamic
        self.fig = fig
        fig.canvas.draw()
        self.background = fig.canvas.copy_from_bbox(fig.bbox)

    def paint(self, *, points, thumbs, step: str, done: float, losses: str) -> np.ndarray:
        """The frame's RGB picture: the kept background, then this frame's artists."""
        self.step.set_text(step)
        if self.bar is not None:
            self.bar.set_width(done)
        self.points.set_offsets(points)
        if self.thumbs is not None:
            self.thumbs.set_data(thumbs)
        self.losses.set_text(losses)
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        for artist in self.dynamic:
            self.fig.draw_artist(artist)
        return np.array(np.asarray(canvas.buffer_rgba())[..., :3])
