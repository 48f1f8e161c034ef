"""The animated GIF of a run, appended one frame at a time at a constant cost per frame.

The GIF byte stream is assembled here: header, one global colour table, a NETSCAPE2.0 loop
block, a comment holding this writer's metadata, then per frame a Graphic Control Extension
(the delay) and an image block, then the trailer. Only the new frame is LZW-compressed: Pillow
encodes it alone as a single-frame GIF with the same 256-colour palette and its image block is
spliced out, so earlier frames are never re-encoded. The whole file is published atomically
after every append; that copy is the only work that grows with the number of frames (a
memcpy of at most a few MiB).

Every frame is quantised to ONE fixed palette (class colours, their blends with white, a grey
ramp), so class colours never flicker and readers get RGB frames back (imageio cannot read
multi-frame greyscale GIFs). The file itself holds everything needed to resume: a new
``GifWriter`` on a GIF it wrote continues it, byte for byte as if never interrupted.

Size budget: with ``expected_frames`` known, the first frame is encoded at a ladder of scales
and the largest one whose projected total fits the budget is kept. If the GIF outgrows the
budget anyway, all frames are re-encoded once at a smaller scale. :attr:`GifWriter.note` says
what happened, in words.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from reporter import ReporterError
from reporter.atomic import write_bytes
from reporter.render import CLASS_COLOURS

DEFAULT_BUDGET = 5 * 1024 * 1024  # GitHub's image proxy drops hot-linked images above ~5 MiB
DEFAULT_DELAY_MS = 250
MIN_DELAY_MS = 20  # browsers slow down shorter delays to 100 ms
SCALES = (1.0, 0.9, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4, 0.33, 0.25)
PLANNING_FRACTION = 0.85  # plan for 85% of the budget: later frames may compress worse
BLEND_LEVELS = 12  # per class colour: 0/12 .. 11/12 of the way to white
WRITER_ID = "latentlapse-gif"

_TRAILER = b"\x3b"
_GCE_LEN = 8


def default_palette(colours=CLASS_COLOURS) -> np.ndarray:
    """The global palette: each class colour blended towards white, then a grey ramp (256 x RGB).

    Anti-aliased markers on a white background are blends of a class colour with white, and
    text and probe images are greys, so these 256 entries hold nearly every pixel exactly.
    """
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.float64)
    t = np.arange(BLEND_LEVELS)[None, :, None] / BLEND_LEVELS
    blends = np.rint(rgb[:, None, :] * (1 - t) + 255.0 * t).reshape(-1, 3)
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


class _Quantizer:
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


def _sub_blocks(data: bytes) -> bytes:
    chunks = [bytes([len(data[i:i + 255])]) + data[i:i + 255] for i in range(0, len(data), 255)]
    return b"".join(chunks) + b"\x00"


def _skip_sub_blocks(buf: bytes, pos: int) -> int:
    while True:
        if pos >= len(buf):
            raise ValueError("truncated GIF data")
        n = buf[pos]
        pos += 1 + n
        if n == 0:
            return pos


def _parse(buf: bytes) -> dict:
    """Split a GIF into screen size, global palette, comments and per-frame blocks.

    A frame block runs from the extensions before an image (our Graphic Control Extension)
    to the end of its image data.
    """
    if buf[:6] not in (b"GIF87a", b"GIF89a") or len(buf) < 13:
        raise ValueError("not a GIF")
    width, height, flags = struct.unpack("<HHB", buf[6:11])
    pos, palette = 13, None
    if flags & 0x80:
        n = 3 << ((flags & 7) + 1)
        palette = np.frombuffer(buf[pos:pos + n], dtype=np.uint8).reshape(-1, 3)
        pos += n
    comments, frames, frame_start = [], [], None
    while pos < len(buf):
        kind = buf[pos]
        if kind == 0x3B:
            break
        if kind == 0x21:
            label = buf[pos + 1]
            if label == 0xF9 and frame_start is None:
                frame_start = pos
            end = _skip_sub_blocks(buf, pos + 2)
            if label == 0xFE and not frames and frame_start is None:
                data, p = b"", pos + 2
                while buf[p]:
                    data += buf[p + 1:p + 1 + buf[p]]
                    p += 1 + buf[p]
                comments.append(data)
            pos = end
        elif kind == 0x2C:
            start = frame_start if frame_start is not None else pos
            img_flags = buf[pos + 9]
            p = pos + 10 + ((3 << ((img_flags & 7) + 1)) if img_flags & 0x80 else 0)
            pos = _skip_sub_blocks(buf, p + 1)  # +1: the LZW minimum code size byte
            frames.append(buf[start:pos])
            frame_start = None
        else:
            raise ValueError(f"unexpected GIF block 0x{kind:02x} at byte {pos}")
    return {"size": (width, height), "palette": palette, "comments": comments, "frames": frames}


def _gce(delay_cs: int) -> bytes:
    # Disposal 1 (leave in place); every frame covers the whole screen anyway.
    return b"\x21\xf9\x04\x04" + struct.pack("<H", delay_cs) + b"\x00\x00"


class GifWriter:
    """Append frames to a looping animated GIF, publishing the whole file atomically each time.

    Parameters
    ----------
    path : path
        The GIF. If it exists and this writer made it, appending continues it; a GIF from
        anywhere else is refused (never overwritten).
    delay_ms : int
        Display time of each frame appended from now on (>= 20 ms, stored in 10 ms units).
    loop : int
        Number of loops; 0 (default) loops forever.
    budget_bytes : int
        Size the GIF should stay under (default 5 MiB).
    expected_frames : int, optional
        How many frames the run will have; lets the first frame choose a scale that fits.
        Kept in the GIF, so a writer resumed without it plans with the same number.
    min_scale : float
        Never shrink frames below this fraction of their drawn size.

    Attributes
    ----------
    frames : int
        Frames in the GIF.
    scale : float or None
        Fraction of the drawn size that frames are stored at.
    note : str or None
        What the writer did to stay under the budget, in words (None when nothing was needed).
    bytes : int
        Size of the published GIF.
    """

    def __init__(self, path, *, delay_ms: int = DEFAULT_DELAY_MS, loop: int = 0,
                 budget_bytes: int = DEFAULT_BUDGET, expected_frames: int | None = None,
                 min_scale: float = SCALES[-1]):
        if delay_ms < MIN_DELAY_MS:
            raise ReporterError(f"a GIF frame delay of {delay_ms} ms is too short: use at least "
                                f"{MIN_DELAY_MS} ms (browsers slow shorter delays down)")
        if budget_bytes <= 0:
            raise ReporterError("the GIF size budget must be positive")
        self.path = Path(path)
        self.delay_cs = max(2, int(round(delay_ms / 10)))
        self.loop = int(loop)
        self.budget_bytes = int(budget_bytes)
        self.expected_frames = expected_frames
        self.min_scale = float(min_scale)
        self.palette = default_palette()
        self._palette_bytes = self.palette.tobytes()
        self._quantize = _Quantizer(self.palette)
        self._blocks: list[bytes] = []
        self.source_size: tuple[int, int] | None = None  # drawn frame size (W, H)
        self.size: tuple[int, int] | None = None  # stored frame size (W, H)
        self.scale: float | None = None
        self.note: str | None = None
        self.bytes = 0
        if self.path.exists():
            self._resume()

    @property
    def frames(self) -> int:
        return len(self._blocks)

    # -- public -----------------------------------------------------------------------------

    def append(self, rgb: np.ndarray) -> None:
        """Add one frame (H, W, 3) uint8 at the end and publish the GIF."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {rgb.shape} {rgb.dtype}")
        drawn = (rgb.shape[1], rgb.shape[0])
        if self.source_size is None:
            self.source_size = drawn
            self._choose_first_scale(rgb)
        elif drawn != self.source_size:
            raise ValueError(f"frame size {drawn} differs from the GIF's frames {self.source_size}")
        else:
            self._blocks.append(self._encode(rgb, self.size))
        if self._total() > self.budget_bytes:
            self._shrink(rgb)
        self._publish()

    def truncate(self, n_frames: int) -> None:
        """Keep only the first ``n_frames`` frames (to match a state file after a crash)."""
        if not 0 <= n_frames <= self.frames:
            raise ValueError(f"cannot keep {n_frames} of {self.frames} frames")
        if n_frames == self.frames:
            return
        del self._blocks[n_frames:]
        if self._blocks:
            self._publish()
        else:
            self.path.unlink(missing_ok=True)
            self.source_size = self.size = self.scale = self.note = None
            self.bytes = 0

    # -- encoding ---------------------------------------------------------------------------

    def _encode(self, rgb: np.ndarray, size: tuple[int, int]) -> bytes:
        """GCE + image block of one frame, resized to ``size`` and quantised to the palette."""
        if (rgb.shape[1], rgb.shape[0]) != size:
            rgb = np.asarray(Image.fromarray(rgb, "RGB").resize(size, Image.Resampling.LANCZOS))
        index = self._quantize(rgb)
        im = Image.frombytes("P", size, np.ascontiguousarray(index).tobytes())
        im.putpalette(self._palette_bytes)
        buf = io.BytesIO()
        im.save(buf, "GIF", optimize=False, interlace=False)
        parsed = _parse(buf.getvalue())
        if parsed["palette"] is None or parsed["palette"].tobytes() != self._palette_bytes:
            raise RuntimeError("Pillow rewrote the palette of a GIF frame; cannot splice it")
        block, pos = parsed["frames"][0], 0
        while block[pos] == 0x21:  # drop any extension Pillow wrote: the GCE is ours
            pos = _skip_sub_blocks(block, pos + 2)
        return _gce(self.delay_cs) + block[pos:]

    def _decode(self, block: bytes) -> np.ndarray:
        """RGB pixels of one stored frame block."""
        w, h = self.size
        gif = (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + self._palette_bytes
               + block + _TRAILER)
        with Image.open(io.BytesIO(gif)) as im:
            return np.asarray(im.convert("RGB"))

    def _scaled_size(self, scale: float) -> tuple[int, int]:
        w, h = self.source_size
        return (max(1, int(round(w * scale))), max(1, int(round(h * scale))))

    def _budget_text(self) -> str:
        mib = self.budget_bytes / 2**20
        return f"{mib:g} MiB" if mib >= 1 else f"{self.budget_bytes / 1024:g} KiB"

    def _candidates(self, below: float) -> list[float]:
        return [s for s in SCALES if s < below and s >= self.min_scale - 1e-9]

    def _choose_first_scale(self, rgb: np.ndarray) -> None:
        n_proj = max(int(self.expected_frames or 1), 1)
        target = self.budget_bytes * PLANNING_FRACTION - len(self._prefix())
        chosen = None
        for scale in [1.0] + self._candidates(1.0):
            block = self._encode(rgb, self._scaled_size(scale))
            chosen = (scale, block)
            if len(block) * n_proj <= target:
                break
        self.scale, block = chosen
        self.size = self._scaled_size(self.scale)
        self._blocks.append(block)
        if self.scale < 1.0:
            self.note = (f"downscaled to {self.scale:.0%} to stay under {self._budget_text()} "
                         f"({n_proj} frames expected)")

    def _shrink(self, rgb: np.ndarray) -> None:
        """Over budget: re-encode every frame once at a scale projected to fit."""
        n = self.frames
        candidates = self._candidates(self.scale)
        if not candidates:
            self.note = (f"over the {self._budget_text()} budget even at {self.scale:.0%} "
                         f"({self._total() / 2**20:.1f} MiB at frame {n})")
            return
        expected = self.expected_frames
        n_proj = expected if expected and expected > n else 2 * n  # unknown length: assume 2x
        mean_block = sum(len(b) for b in self._blocks) / n
        target = self.budget_bytes * PLANNING_FRACTION - len(self._prefix())
        chosen, last = None, None
        for scale in candidates:
            last = self._encode(rgb, self._scaled_size(scale))
            chosen = scale
            if mean_block * len(last) / len(self._blocks[-1]) * n_proj <= target:
                break
        size = self._scaled_size(chosen)
        # Earlier frames come from their stored pixels; the newest from its drawn pixels, so a
        # writer resumed right after this point (then truncated to n-1) produces the same bytes.
        blocks = []
        for block in self._blocks[:-1]:
            pixels = np.asarray(Image.fromarray(self._decode(block), "RGB").resize(
                size, Image.Resampling.LANCZOS))
            blocks.append(block[:_GCE_LEN] + self._encode(pixels, size)[_GCE_LEN:])
        blocks.append(self._blocks[-1][:_GCE_LEN] + last[_GCE_LEN:])
        self._blocks, self.size, self.scale = blocks, size, chosen
        self.note = (f"downscaled to {chosen:.0%} (all frames re-encoded at frame {n}) to stay "
                     f"under {self._budget_text()}")

    # -- the file ---------------------------------------------------------------------------

    def _prefix(self) -> bytes:
        w, h = self.size or (0, 0)
        meta = json.dumps({"writer": WRITER_ID, "format": 1, "source": self.source_size,
                           "scale": self.scale, "note": self.note,
                           "expected_frames": self.expected_frames},
                          sort_keys=True, separators=(",", ":")).encode()
        return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + self._palette_bytes
                + b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", self.loop) + b"\x00"
                + b"\x21\xfe" + _sub_blocks(meta))

    def _total(self) -> int:
        return len(self._prefix()) + sum(len(b) for b in self._blocks) + 1

    def _publish(self) -> None:
        data = b"".join([self._prefix(), *self._blocks, _TRAILER])
        write_bytes(self.path, data)
        self.bytes = len(data)

    def _resume(self) -> None:
        refuse = (f"{self.path} exists and was not written by latentlapse: move it away or "
                  f"choose another output folder")
        try:
            parsed = _parse(self.path.read_bytes())
            meta = json.loads(parsed["comments"][0]) if parsed["comments"] else {}
        except (OSError, ValueError, IndexError, KeyError, UnicodeDecodeError):
            raise ReporterError(refuse) from None
        if meta.get("writer") != WRITER_ID or meta.get("format") != 1:
            raise ReporterError(refuse)
        if parsed["palette"] is None or parsed["palette"].tobytes() != self._palette_bytes:
            raise ReporterError(f"{self.path} was written with another palette: delete it to "
                                f"start the GIF again")
        if not parsed["frames"] or any(len(b) < _GCE_LEN or b[:3] != b"\x21\xf9\x04"
                                       for b in parsed["frames"]):
            raise ReporterError(f"{self.path} is damaged: delete it to start the GIF again")
        self._blocks = list(parsed["frames"])
        self.source_size = tuple(meta["source"])
        self.size = parsed["size"]
        self.scale = float(meta["scale"])
        self.note = meta.get("note")
        if self.expected_frames is None:  # a restarted reporter may not know it any more
            self.expected_frames = meta.get("expected_frames")
        self.bytes = os.path.getsize(self.path)
        if not math.isclose(self._scaled_size(self.scale)[0], self.size[0], abs_tol=1):
            raise ReporterError(f"{self.path} is damaged: delete it to start the GIF again")
