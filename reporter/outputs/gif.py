"""The animated GIF of a run, appended one frame at a time at a constant cost per frame.

Only the new frame is LZW-compressed: Pillow encodes it alone as a single-frame GIF with the
same 256-colour palette and its image block is spliced out (:mod:`reporter.outputs.gif_format`), so
earlier frames are never re-encoded. The whole file is published atomically after every append;
that copy is the only work that grows with the GIF (a memcpy of at most the budget, 5 MiB).

Every frame is quantised to ONE fixed palette (class colours, their blends with white, a grey
ramp), so class colours never flicker and readers get RGB frames back (imageio cannot read
multi-frame greyscale GIFs). The file itself holds everything needed to resume: a new
``GifWriter`` on a GIF it wrote continues it, byte for byte as if never interrupted.

Size budget, in this order:

1. Scale. With ``expected_frames`` known, the first frame is encoded at a ladder of scales
   and the largest whose projected total fits is kept. A GIF that outgrows the budget anyway
   is re-encoded once at a smaller scale. Never below :data:`MIN_SCALE` of the drawn width.
2. Frames. When even that scale cannot hold every frame, the GIF keeps an evenly spaced
   subset: every ``stride``-th frame (``stride`` a power of two) and always the first and the
   last, each shown ``stride`` times as long, so the GIF spans the run in the same time.
   Doubling the stride only drops frames already in the file (the kept set of stride 2s is a
   subset of that of s) and rewrites delays: nothing is re-encoded. The stride doubles when
   the budget is reached (so the GIF ends with between half and all of the frames the budget
   holds), at most log2(M) times over a run of M frames. Every frame stays in ``frames/`` and
   on the site.

:attr:`GifWriter.note` says what happened, in words; :attr:`GifWriter.kept` and
:attr:`GifWriter.frames` give "N of M frames".
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from latentlapse.atomic import write_bytes
from reporter import ReporterError
from reporter.outputs import defaults
from reporter.outputs import gif_format as fmt
from reporter.pictures.palette import Quantizer, default_palette, quantize  # noqa: F401 (re-exported)

DEFAULT_BUDGET = defaults.GIF_BUDGET
DEFAULT_DELAY_MS = defaults.GIF_DELAY_MS
MIN_DELAY_MS = defaults.GIF_MIN_DELAY_MS
#: The smallest scale a GIF is stored at: 675 px of the drawn 900. GitHub shows pull-request
#: images at most ~700 px wide, so at this scale the GIF is shown at its own pixel size, and the
#: frame's smallest text (class names, drawn >= 12 px high at 900 px) stays >= 9 px high, the
#: least that reads without zooming. Below it, fewer frames are kept instead.
MIN_SCALE = 0.75
LOWEST_ALLOWED_SCALE = 0.6  # a caller may lower the floor this far, no further
SCALES = (1.0, 0.9, 0.8, 0.75, 0.7, 0.65, 0.6)
PLANNING_FRACTION = 0.85  # plan for 85% of the budget: later frames may compress worse
WRITER_ID = "latentlapse-gif"
FORMAT = 2  # 1: every frame kept (no "kept"/"frames_total" in the comment); still resumed


def kept_frames(n_frames: int, stride: int) -> list[int]:
    """Indices an evenly spaced subset keeps: every ``stride``-th frame, and the last.

    >>> kept_frames(10, 4)
    [0, 4, 8, 9]
    """
    if n_frames <= 0:
        return []
    kept = list(range(0, n_frames, stride))
    if kept[-1] != n_frames - 1:
        kept.append(n_frames - 1)
    return kept


def _ordinal(n: int) -> str:
    return f"{n}{'nd' if n % 10 == 2 and n % 100 != 12 else 'th'}"  # strides are powers of two


class GifWriter:
    """Append frames to a looping animated GIF, publishing the whole file atomically each time.

    Parameters
    ----------
    path : path
        The GIF. If it exists and this writer made it, appending continues it; a GIF from
        anywhere else is refused (never overwritten).
    delay_ms : int
        Display time of one frame of the run (>= 20 ms, stored in 10 ms units). A kept frame
        of a subset with stride s is shown s times as long.
    loop : int
        Number of loops; 0 (default) loops forever.
    budget_bytes : int
        Size the GIF must stay under (default 5 MiB).
    expected_frames : int, optional
        How many frames the run will have; lets the first frame choose a scale and a stride
        that fit. Kept in the GIF, so a writer resumed without it plans with the same number.
    min_scale : float
        Never store frames below this fraction of their drawn size (default
        :data:`MIN_SCALE`; at least :data:`LOWEST_ALLOWED_SCALE`).

    Attributes
    ----------
    frames : int
        Frames of the run so far (M); the GIF holds ``kept`` of them.
    kept : int
        Frames in the GIF (N).
    stride : int
        Every ``stride``-th frame is kept (1: all of them).
    scale : float or None
        Fraction of the drawn size that frames are stored at.
    note : str or None
        What the writer did to stay under the budget, in words (None when nothing was needed).
    bytes : int
        Size of the published GIF.
    """

    def __init__(self, path, *, delay_ms: int = DEFAULT_DELAY_MS, loop: int = 0,
                 budget_bytes: int = DEFAULT_BUDGET, expected_frames: int | None = None,
                 min_scale: float = MIN_SCALE):
        if delay_ms < MIN_DELAY_MS:
            raise ReporterError(f"a GIF frame delay of {delay_ms} ms is too short: use at least "
                                f"{MIN_DELAY_MS} ms (browsers slow shorter delays down)")
        if budget_bytes <= 0:
            raise ReporterError("the GIF size budget must be positive")
        if not LOWEST_ALLOWED_SCALE - 1e-9 <= min_scale <= 1.0:
            raise ReporterError(f"a GIF scale floor of {min_scale:g} would make frames unreadable: "
                                f"use {LOWEST_ALLOWED_SCALE:g} to 1")
        self.path = Path(path)
        self.delay_cs = max(2, int(round(delay_ms / 10)))
        self.loop = int(loop)
        self.budget_bytes = int(budget_bytes)
        self.expected_frames = expected_frames
        self.min_scale = float(min_scale)
        self.palette = default_palette()
        self._palette_bytes = self.palette.tobytes()
        self._quantize = Quantizer(self.palette)
        self._reset()
        if self.path.exists():
            self._resume()

    def _reset(self) -> None:
        self._blocks: list[bytes] = []  # one per kept frame, its GCE first
        self._kept: list[int] = []  # the run's frame index of each block
        self._block_bytes = 0
        self.frames = 0
        self.stride = 1
        self.source_size: tuple[int, int] | None = None  # drawn frame size (W, H)
        self.size: tuple[int, int] | None = None  # stored frame size (W, H)
        self.scale: float | None = None
        self.note: str | None = None
        self.bytes = 0

    @property
    def kept(self) -> int:
        return len(self._blocks)

    @property
    def kept_indices(self) -> list[int]:
        """The run's frame index of each frame in the GIF."""
        return list(self._kept)

    @property
    def frames_text(self) -> str:
        """"N of M frames" (or "M frames" when all are kept)."""
        if self.kept == self.frames:
            return f"{self.frames} frame{'s' if self.frames != 1 else ''}"
        return f"{self.kept} of {self.frames} frames"

    # -- public -----------------------------------------------------------------------------

    def append(self, rgb: np.ndarray) -> None:
        """Add one frame (H, W, 3) uint8 at the end and publish the GIF."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {rgb.shape} {rgb.dtype}")
        drawn = (rgb.shape[1], rgb.shape[0])
        if self.source_size is None:
            self.source_size = drawn
            self._plan_first(rgb)
        elif drawn != self.source_size:
            raise ValueError(f"frame size {drawn} differs from the GIF's frames {self.source_size}")
        else:
            index = self.frames
            if self._kept[-1] % self.stride:  # the previous last frame is off the grid
                self._drop_last()
            self._push(index, self._encode(rgb, self.size))
            self.frames += 1
            self._set_delay(self.kept - 2)
        if self._total() > self.budget_bytes:
            self._fit(rgb)
        self._publish()

    def truncate(self, n_frames: int) -> None:
        """Keep only the first ``n_frames`` frames of the run (to match a state file after a crash).

        The last of them may be missing from a subset until the next append brings the last
        frame back; the next append gives the same bytes as a run never interrupted.
        """
        if not 0 <= n_frames <= self.frames:
            raise ValueError(f"cannot keep {n_frames} of {self.frames} frames")
        if n_frames == self.frames:
            return
        while self._kept and self._kept[-1] >= n_frames:
            self._drop_last()
        self.frames = n_frames
        if self._blocks:
            self._set_delay(self.kept - 1)
            self._publish()
        else:
            self.path.unlink(missing_ok=True)
            self._reset()

    # -- the kept frames --------------------------------------------------------------------

    def _push(self, index: int, block: bytes) -> None:
        self._blocks.append(block)
        self._kept.append(index)
        self._block_bytes += len(block)

    def _drop_last(self) -> None:
        self._block_bytes -= len(self._blocks.pop())
        self._kept.pop()

    def _set_delay(self, j: int) -> None:
        """Give kept frame ``j`` the display time of the run's frames up to the next kept one."""
        if j < 0:
            return
        nxt = self._kept[j + 1] if j + 1 < self.kept else self.frames
        delay = (nxt - self._kept[j]) * self.delay_cs
        if fmt.delay_of(self._blocks[j]) != delay:
            self._blocks[j] = fmt.with_delay(self._blocks[j], delay)

    def _double_stride(self) -> None:
        """Keep every (2 x stride)-th frame and the last: drop the others, nothing re-encoded."""
        self.stride *= 2
        last = self.frames - 1
        keep = [j for j, i in enumerate(self._kept) if i % self.stride == 0 or i == last]
        self._blocks = [self._blocks[j] for j in keep]
        self._kept = [self._kept[j] for j in keep]
        self._block_bytes = sum(len(b) for b in self._blocks)
        for j in range(self.kept):
            self._set_delay(j)

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
        parsed = fmt.parse(buf.getvalue())
        if parsed["palette"] is None or parsed["palette"].tobytes() != self._palette_bytes:
            raise RuntimeError("Pillow rewrote the palette of a GIF frame; cannot splice it")
        block, pos = parsed["frames"][0], 0
        while block[pos] == 0x21:  # drop any extension Pillow wrote: the GCE is ours
            pos = fmt.skip_sub_blocks(block, pos + 2)
        return fmt.gce(self.delay_cs) + block[pos:]

    def _decode(self, block: bytes) -> np.ndarray:
        """RGB pixels of one stored frame block."""
        with Image.open(io.BytesIO(fmt.single_frame(self.size, self._palette_bytes, block))) as im:
            return np.asarray(im.convert("RGB"))

    def _scaled_size(self, scale: float) -> tuple[int, int]:
        w, h = self.source_size
        return (max(1, int(round(w * scale))), max(1, int(round(h * scale))))

    def _budget_text(self) -> str:
        mib = self.budget_bytes / 2**20
        return f"{mib:g} MiB" if mib >= 1 else f"{self.budget_bytes / 1024:g} KiB"

    def _candidates(self, below: float) -> list[float]:
        return [s for s in SCALES if s < below and s >= self.min_scale - 1e-9]

    def _target(self) -> float:
        return self.budget_bytes * PLANNING_FRACTION - len(self._prefix())

    def _plan_first(self, rgb: np.ndarray) -> None:
        n_proj = max(int(self.expected_frames or 1), 1)
        target = self._target()
        chosen = None
        for scale in [1.0] + self._candidates(1.0):
            block = self._encode(rgb, self._scaled_size(scale))
            chosen = (scale, block)
            if len(block) * n_proj <= target:
                break
        self.scale, block = chosen
        self.size = self._scaled_size(self.scale)
        # No stride is planned from this one frame: early frames (scattered points, noisy
        # reconstructions) compress worse than later ones, so a plan from the first would keep a
        # half or a quarter of the frames that fit. Frames are dropped when the budget is reached.
        self._push(0, block)
        self.frames = 1
        self._describe(f"{n_proj} frames expected")

    def _fit(self, rgb: np.ndarray) -> None:
        """Over budget: a smaller scale (all kept frames re-encoded once), then fewer frames."""
        n = self.frames
        candidates = self._candidates(self.scale)
        if candidates:
            expected = self.expected_frames
            n_proj = expected if expected and expected > n else 2 * n  # unknown length: assume 2x
            mean_block = self._block_bytes / self.kept
            n_kept = len(kept_frames(n_proj, self.stride))
            chosen, last = None, None
            for scale in candidates:
                last = self._encode(rgb, self._scaled_size(scale))
                chosen = scale
                if mean_block * len(last) / len(self._blocks[-1]) * n_kept <= self._target():
                    break
            self._rescale(chosen, last)
            reason = f"all frames re-encoded at frame {n}"
        else:
            reason = f"at frame {n}"
        while self._total() > self.budget_bytes and self.kept > 2:
            self._double_stride()
        self._describe(reason)

    def _rescale(self, scale: float, newest: bytes) -> None:
        size = self._scaled_size(scale)
        # Earlier frames come from their stored pixels; the newest from its drawn pixels, so a
        # writer resumed right after this point (then truncated to n-1) produces the same bytes.
        blocks = []
        for block in self._blocks[:-1]:
            pixels = np.asarray(Image.fromarray(self._decode(block), "RGB").resize(
                size, Image.Resampling.LANCZOS))
            blocks.append(block[:fmt.GCE_LEN] + self._encode(pixels, size)[fmt.GCE_LEN:])
        blocks.append(self._blocks[-1][:fmt.GCE_LEN] + newest[fmt.GCE_LEN:])
        self._blocks, self.size, self.scale = blocks, size, scale
        self._block_bytes = sum(len(b) for b in blocks)

    def _describe(self, when: str) -> None:
        """The note: what was given up to stay under the budget, and when."""
        parts = []
        if self.scale < 1.0:
            parts.append(f"downscaled to {self.scale:.0%}")
        if self.stride > 1:
            parts.append(f"every {_ordinal(self.stride)} frame and the last, each shown "
                         f"{self.stride}x as long")
        if self._total() > self.budget_bytes:
            self.note = (f"over the {self._budget_text()} budget even at {self.scale:.0%} and "
                         f"{self.kept} frames ({self._total() / 2**20:.1f} MiB {when})")
        elif parts:
            self.note = f"{', '.join(parts)} ({when}) to stay under {self._budget_text()}"

    # -- the file ---------------------------------------------------------------------------

    def _prefix(self) -> bytes:
        meta = json.dumps({"writer": WRITER_ID, "format": FORMAT, "source": self.source_size,
                           "scale": self.scale, "note": self.note,
                           "expected_frames": self.expected_frames, "frames_total": self.frames,
                           "stride": self.stride, "kept": self._kept},
                          sort_keys=True, separators=(",", ":")).encode()
        return fmt.header(self.size or (0, 0), self._palette_bytes, self.loop, meta)

    def _total(self) -> int:
        return len(self._prefix()) + self._block_bytes + 1

    def _publish(self) -> None:
        data = b"".join([self._prefix(), *self._blocks, fmt.TRAILER])
        write_bytes(self.path, data)
        self.bytes = len(data)

    def _resume(self) -> None:
        refuse = (f"{self.path} exists and was not written by latentlapse: move it away or "
                  f"choose another output folder")
        damaged = f"{self.path} is damaged: delete it to start the GIF again"
        try:
            parsed = fmt.parse(self.path.read_bytes())
            meta = json.loads(parsed["comments"][0]) if parsed["comments"] else {}
        except (OSError, ValueError, IndexError, KeyError, UnicodeDecodeError):
            raise ReporterError(refuse) from None
        if meta.get("writer") != WRITER_ID or meta.get("format") not in (1, FORMAT):
            raise ReporterError(refuse)
        if parsed["palette"] is None or parsed["palette"].tobytes() != self._palette_bytes:
            raise ReporterError(f"{self.path} was written with another palette: delete it to "
                                f"start the GIF again")
        blocks = parsed["frames"]
        if not blocks or any(len(b) < fmt.GCE_LEN or b[:3] != b"\x21\xf9\x04" for b in blocks):
            raise ReporterError(damaged)
        kept = meta.get("kept", list(range(len(blocks))))
        total = int(meta.get("frames_total", len(blocks)))
        if len(kept) != len(blocks) or kept != sorted(set(kept)) or kept[-1] >= total:
            raise ReporterError(damaged)
        for index, block in zip(kept, blocks):
            self._push(index, block)
        self.frames = total
        self.stride = int(meta.get("stride", 1))
        self.source_size = tuple(meta["source"])
        self.size = parsed["size"]
        self.scale = float(meta["scale"])
        self.note = meta.get("note")
        if self.expected_frames is None:  # a restarted reporter may not know it any more
            self.expected_frames = meta.get("expected_frames")
        self.bytes = os.path.getsize(self.path)
        if not math.isclose(self._scaled_size(self.scale)[0], self.size[0], abs_tol=1):
            raise ReporterError(damaged)
