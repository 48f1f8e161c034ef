"""The reconstruction grid: one probe image per class, input above the autoencoder's output.

The pipeline calls :func:`save_reconstruction_grid` after every frame with that frame's probe
inputs and reconstructions, writing ``out_dir / reporter.site.RECONSTRUCTION_PNG``; the site
shows it as "Reconstructions at step N". Drawn with Pillow alone: pixels stay pixels (nearest
neighbour magnification) and the class colours match the frames'.
"""

from __future__ import annotations

import io

import numpy as np

from latentlapse import atomic
from reporter import ReporterError


def save_reconstruction_grid(path, inputs, recons, labels, class_names, *, colours=None, scale=3) -> list[int]:
    """Save one probe image per class, input above its reconstruction, as a PNG (atomically).

    Parameters
    ----------
    path : path
        Where to write; the site shows ``out_dir / RECONSTRUCTION_PNG``.
    inputs, recons : arrays of shape (N, 1, H, W) or (N, H, W)
        Probe images and the autoencoder's outputs at one step, same scale. Values in [0, 1]
        (or [0, 255]) are drawn as they are; other ranges are mapped from the inputs' min..max.
    labels : array of shape (N,)
        Class index of each probe image.
    class_names : sequence of str
        Name of each class, in class-index order.
    colours : sequence, optional
        One colour per class (hex string or RGB), drawn as a stripe over its column.
    scale : int
        Pixel magnification (nearest neighbour, so pixels stay crisp).

    Returns
    -------
    list of int
        The probe index shown for each class (the first image of that class).
    """
    from PIL import Image, ImageColor, ImageDraw, ImageFont

    x, r = _as_images(inputs, "inputs"), _as_images(recons, "reconstructions")
    y = np.asarray(labels).astype(np.int64).ravel()
    if x.shape != r.shape or len(y) != len(x):
        raise ReporterError(
            f"reconstruction grid: inputs {x.shape}, reconstructions {r.shape} and {len(y)} labels "
            "do not match: check --inputs-regex/--recon-regex/--labels-regex"
        )
    picks = [int(np.flatnonzero(y == c)[0]) for c in range(len(class_names)) if (y == c).any()]
    if not picks:
        raise ReporterError("reconstruction grid: no probe image has a label in 0..len(class_names)-1")
    lo, hi = (0.0, 255.0) if x.max() > 1.5 else (0.0, 1.0)
    if x.min() < -0.01:  # normalised inputs: show them on their own range
        lo, hi = float(x.min()), float(x.max())

    def to_pixels(img):
        grey = np.clip((img - lo) / ((hi - lo) or 1.0), 0.0, 1.0)
        return Image.fromarray((grey * 255).round().astype(np.uint8), "L").resize(
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
        left, c = gap + col * (cell_w + gap), int(y[idx])
        name = str(class_names[c])
        tw = draw.textlength(name, font=font)
        draw.text((left + (cell_w - tw) / 2, 2), name, fill=(30, 30, 30), font=font)
        if colours is not None:
            colour = colours[c]
            rgb = ImageColor.getrgb(colour) if isinstance(colour, str) else to_rgb255(colour)
            draw.rectangle([left, text_h, left + cell_w - 1, text_h + stripe - 1], fill=rgb)
        top = text_h + stripe + gap
        canvas.paste(to_pixels(x[idx]), (left, top))
        canvas.paste(to_pixels(r[idx]), (left, top + cell_h + gap))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    atomic.write_bytes(path, buf.getvalue())
    return picks


def _as_images(a, what):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise ReporterError(f"reconstruction grid: {what} must be (N, 1, H, W) or (N, H, W), got {a.shape}")
    return a


def to_rgb255(colour) -> tuple[int, int, int]:
    """An (r, g, b) colour in 0..1 or 0..255 as three ints in 0..255."""
    vals = [float(v) for v in list(colour)[:3]]
    if max(vals) <= 1.0:
        vals = [v * 255 for v in vals]
    return tuple(int(round(v)) for v in vals)
