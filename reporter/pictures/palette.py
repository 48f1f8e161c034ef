"""The GIF's one global palette, and quantising RGB frames to it.

Anti-aliased markers on a white background are blends of a class colour with white, and text
and probe images are greys; a palette of those holds nearly every pixel of a frame exactly, so
class colours never flicker from frame to frame. The class colours themselves are defined once,
in :data:`reporter.pictures.colours.CLASS_COLOURS`.
"""

from __future__ import annotations

import numpy as np

from reporter.pictures.colours import CLASS_COLOURS

BLEND_LEVELS = 12  # per class colour: 0/12 .. 11/12 of the way to white
# Classes 10-19 (colours.CLASS_COLOURS' second ten) get fewer blends, so the grey ramp that probe
# images and text need keeps 116 levels: their marker centres stay exact, edges map to the nearest.
EXTRA_BLEND_LEVELS = 2
FULL_BLEND_COLOURS = 10


def default_palette(colours=CLASS_COLOURS) -> np.ndarray:
    """The global palette: each class colour blended towards white, then a grey ramp (256 x RGB).

    Anti-aliased markers on a white background are blends of a class colour with white, and
    text and probe images are greys, so these 256 entries hold nearly every pixel exactly.
    """
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.float64)
    blends = []
    for k, colour in enumerate(rgb):
        levels = BLEND_LEVELS if k < FULL_BLEND_COLOURS else EXTRA_BLEND_LEVELS
        t = np.arange(levels)[:, None] / BLEND_LEVELS
        blends.append(np.rint(colour[None, :] * (1 - t) + 255.0 * t))
    blends = np.concatenate(blends)
    n_grey = 256 - len(blends)
    if n_grey < 2:
        raise ValueError(f"{len(colours)} colours leave no room for a grey ramp in 256 entries")
    grey = np.rint(np.linspace(0.0, 255.0, n_grey))[:, None].repeat(3, axis=1)
    return np.concatenate([blends, grey]).astype(np.uint8)


def _nearest(colours: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Nearest palette index of packed 0xRRGGBB colours (RGB distance, lowest index on ties)."""
    c_all = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255],
                     axis=1).astype(np.float64)
    pal = np.asarray(palette, dtype=np.float64)
    pal_sq = (pal ** 2).sum(axis=1)[None, :]
    nearest = np.empty(len(colours), dtype=np.uint8)
    for start in range(0, len(colours), 8192):
        c = c_all[start:start + 8192]
        # |c - p|^2 = |c|^2 - 2 c.p + |p|^2 is exact in float64 for 8-bit channels.
        dist = (c ** 2).sum(axis=1)[:, None] - 2.0 * (c @ pal.T) + pal_sq
        nearest[start:start + 8192] = dist.argmin(axis=1)
    return nearest


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.uint8)
    return ((rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8)
            | rgb[..., 2])


def quantize(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour (RGB distance, lowest index on ties) for each pixel."""
    packed = _pack(rgb)
    # Rendered frames hold a few thousand distinct colours: match those, not every pixel.
    uniq, inverse = np.unique(packed.reshape(-1), return_inverse=True)
    return _nearest(uniq, palette)[inverse].reshape(packed.shape)


class Quantizer:
    """:func:`quantize` with a table of every colour seen so far: consecutive frames share
    nearly all their colours, so each frame only matches the few new ones (two 16 MiB tables)."""

    def __init__(self, palette: np.ndarray):
        self.palette = palette
        self.table = np.zeros(1 << 24, dtype=np.uint8)
        self.known = np.zeros(1 << 24, dtype=bool)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        packed = _pack(rgb)
        new = packed[~self.known[packed]]
        if new.size:
            new = np.unique(new)
            self.table[new] = _nearest(new, self.palette)
            self.known[new] = True
        return self.table[packed]
