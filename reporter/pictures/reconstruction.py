"""The reconstruction grid: one probe image per class, input above the autoencoder's output.

The pipeline calls :func:`save_reconstruction_grid` after every frame with that frame's probe
inputs and reconstructions, writing ``out_dir / reporter.site.page.RECONSTRUCTION_PNG``; the site
shows it as "Reconstructions at step N". Drawn with Pillow alone: pixels stay pixels (nearest
neighbour magnification) and the class colours match the frames'.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from latentlapse import atomic
from reporter import ReporterError
from reporter.pictures.png import encode_png
from reporter.trial.images import ImageView, probe_pictures
from reporter.trial.labels import checked_classes


def save_reconstruction_grid(path, inputs, recons, labels, class_names, *, colours=None, scale=3) -> list[int]:
    """Save one probe image per class, input above its reconstruction, as a PNG (atomically).

    Parameters
    ----------
    path : path
        Where to write; the site shows ``out_dir / RECONSTRUCTION_PNG``.
    inputs, recons : reporter.trial.images.ImageView, or arrays in any layout reporter.trial.images reads
        Probe images and the autoencoder's outputs at one step. Arrays are read with
        :func:`reporter.trial.images.probe_pictures` (the inputs' normalisation, applied to both).
    labels : array of shape (N,), or None
        Class index of each probe image; None (no labels): the first ten probe images.
    class_names : sequence of str
        Name of each class, in class-index order.
    colours : sequence, optional
        One colour per class (hex string or RGB), drawn as a stripe over its column.
    scale : int
        Pixel magnification (nearest neighbour, so pixels stay crisp).

    Returns
    -------
    list of int
        The probe index shown for each column.
    """
    if not isinstance(inputs, ImageView):
        x, r = np.asarray(inputs), np.asarray(recons)
        if len(x) != len(r):
            raise ReporterError(f"reconstruction grid: inputs {x.shape} and reconstructions {r.shape} do not match: "
                                "check --inputs-regex/--recon-regex")
        inputs, recons = probe_pictures(x, r, len(x))
    n = len(inputs.pixels) if inputs.shown else 0
    if not (inputs.shown and recons is not None and recons.shown) or recons.layout != inputs.layout:
        raise ReporterError(f"reconstruction grid: nothing to show ({inputs.note}; "
                            f"{recons.note if recons is not None else 'no reconstructions'}): "
                            "check --inputs-regex/--recon-regex")
    if labels is None:
        picks, names = list(range(min(10, n))), [f"#{i}" for i in range(min(10, n))]
    else:
        y = checked_classes(labels, n, where="reconstruction grid")
        picks = [int(np.flatnonzero(y == c)[0]) for c in range(len(class_names)) if (y == c).any()]
        names = [str(class_names[int(y[i])]) for i in picks]
        if not picks:
            raise ReporterError("reconstruction grid: no probe image has a label in 0..len(class_names)-1")
    x, r = inputs.take(picks), recons.take(picks)

    def to_pixels(img):
        return Image.fromarray((img * 255).round().astype(np.uint8), "RGB").resize(
            (img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST
        )

    cell_w, cell_h = x.shape[2] * scale, x.shape[1] * scale
    gap, text_h, stripe = 6, 16, 4
    width = len(picks) * (cell_w + gap) + gap
    height = text_h + stripe + 2 * cell_h + 3 * gap
    canvas = Image.new("RGB", (width, height), (244, 244, 244))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    for col, idx in enumerate(picks):
        left, name = gap + col * (cell_w + gap), names[col]
        tw = draw.textlength(name, font=font)
        draw.text((left + (cell_w - tw) / 2, 2), name, fill=(30, 30, 30), font=font)
        if colours is not None and labels is not None:
            colour = colours[int(labels[idx]) % len(colours)]
            rgb = ImageColor.getrgb(colour) if isinstance(colour, str) else to_rgb255(colour)
            draw.rectangle([left, text_h, left + cell_w - 1, text_h + stripe - 1], fill=rgb)
        top = text_h + stripe + gap
        canvas.paste(to_pixels(x[col]), (left, top))
        canvas.paste(to_pixels(r[col]), (left, top + cell_h + gap))
    atomic.write_bytes(path, encode_png(canvas))
    return picks


def to_rgb255(colour) -> tuple[int, int, int]:
    """An (r, g, b) colour in 0..1 or 0..255 as three ints in 0..255."""
    vals = [float(v) for v in list(colour)[:3]]
    if max(vals) <= 1.0:
        vals = [v * 255 for v in vals]
    return tuple(int(round(v)) for v in vals)
