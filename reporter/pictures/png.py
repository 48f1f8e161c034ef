"""PNG files: the one place pictures become PNG bytes.

Every PNG the reporter writes is made here, with zlib level 3 and no timestamps, so the same
picture always gives the same bytes (a resumed report is byte-identical to an uninterrupted one).
"""

from __future__ import annotations

import io
import os
import zlib

import numpy as np
from PIL import Image

from latentlapse.atomic import write_bytes

LEVEL = 3  # zlib: 4 ms instead of 35 for the reconstruction grid with optimize=True, +20 % bytes


def encode_png(picture, *, runs: bool = False) -> bytes:
    """PNG bytes of a grey (H, W) or RGB (H, W, 3) uint8 picture, or of a PIL image.

    ``runs``: zlib's run-length strategy, for pictures that are mostly runs of one colour (a
    frame's background): measured on a 900 x 540 frame of 10,000 points, 20 ms and 176 KB, against
    27 ms and 186 KB with the default strategy (and 31 ms at Pillow's default level 6).
    """
    if not isinstance(picture, Image.Image):
        pixels = np.ascontiguousarray(picture, dtype=np.uint8)
        picture = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
    buf = io.BytesIO()
    if runs:
        picture.save(buf, format="PNG", compress_level=LEVEL, compress_type=zlib.Z_RLE)
    else:
        picture.save(buf, format="PNG", compress_level=LEVEL)
    return buf.getvalue()


def encode_levels_png(indices: np.ndarray, levels: int) -> bytes:
    """A grey (H, W) picture of level numbers (0 .. ``levels`` - 1) as a 4-bit palette PNG.

    The palette holds the ``levels`` (at most 16) evenly spaced greys, so the browser shows the
    same pixels as an 8-bit grey PNG, for half the bytes to compress (measured on a 1,000-point
    reconstruction sheet: 13 ms and 149 KB at zlib level 3, instead of 47 ms and 143 KB as 8-bit
    grey at level 6). Compressed with zlib's run-length strategy (the sheets are mostly runs of
    background): on a 10,000-point sheet 77 ms and 1.35 MB, against 128 ms and 1.45 MB at level 1
    with the default strategy (and about twice that time at level 3).
    """
    if not 2 <= levels <= 16:
        raise ValueError(f"a 4-bit palette holds 2 to 16 levels, got {levels}")
    buf = io.BytesIO()
    image = Image.fromarray(indices, "P")
    image.putpalette([round(i * 255.0 / (levels - 1)) for i in range(levels) for _ in range(3)])
    image.save(buf, format="PNG", compress_level=1, compress_type=zlib.Z_RLE, bits=4)
    return buf.getvalue()


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB picture (H, W, 3) uint8 to ``path`` as a PNG (run-length strategy), atomically."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 picture, got {rgb.shape} {rgb.dtype}")
    write_bytes(path, encode_png(rgb, runs=True))
