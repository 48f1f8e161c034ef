"""Input and reconstruction tensors as pictures: which layout a shape is, and how values become grey levels.

A probe set's inputs reach the reporter in whatever layout the model used: (N, H, W),
(N, 1, H, W), (N, 3, H, W), (N, H, W, 3), or flat (N, D). :func:`image_view` decides once per
tensor how to show it and says so in words (:attr:`ImageView.note`); the frame, the
reconstruction grid and the site all show the same pictures. What cannot be a picture is drawn
as a bar-code strip (one bar per value), and what is too large even for that is left out with a
note: never an error, since a report without pictures is still a report.

Normalisation is chosen from the inputs' values and applied unchanged to their
reconstructions, so both are on one scale:

- values within [0, 1] are shown as they are;
- values within [0, 255] (beyond 1) are divided by 255;
- anything else (standardised data, say) is mapped from the probe set's min..max to black..white.

Only the few images a frame shows are converted (:meth:`ImageView.take`): the cost per frame
does not grow with the probe set beyond one min/max pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from latentlapse.contract import ROLE
from reporter import ReporterError

#: A flat vector longer than this is not drawn as a bar code (a strip wider than a frame's panel).
MAX_BARCODE_VALUES = 1024
#: Bar-code strips are this many times as wide as they are high, at least.
BARCODE_ASPECT = 4
#: Tolerance when deciding whether values lie within [0, 1] or [0, 255] (float rounding).
RANGE_SLACK = 1e-3


@dataclass(frozen=True)
class ImageView:
    """How one tensor of the probe set is shown.

    Attributes
    ----------
    pixels : array (N, H, W, C) or None
        The tensor's values in picture layout (C is 1 or 3), a view where possible; None when
        the tensor is left out.
    kind : str
        ``"image"``, ``"barcode"`` or ``"none"``.
    lo, hi : float
        Values mapped to black and white.
    normalisation : str
        The rule used, in words (``"[0, 1] as is"``, ...).
    note : str
        One sentence for the site: the shape, how it is laid out, how values are shown.
    """

    pixels: np.ndarray | None
    kind: str
    lo: float
    hi: float
    normalisation: str
    note: str

    @property
    def shown(self) -> bool:
        return self.pixels is not None

    @property
    def layout(self) -> tuple[int, int, int] | None:
        """(H, W, C) of one sample's values in picture layout (a bar code is (1, D, 1)), or None."""
        return None if self.pixels is None else tuple(self.pixels.shape[1:])

    @property
    def shape(self) -> tuple[int, int] | None:
        """(H, W) of one picture as :meth:`take` draws it, or None."""
        if self.pixels is None:
            return None
        h, w = self.pixels.shape[1:3]
        return _barcode_size(w) if self.kind == "barcode" else (h, w)

    def take(self, indices) -> np.ndarray:
        """RGB pictures of the given probe points: array (k, H, W, 3), float64 in [0, 1]."""
        a = self.values(indices)
        return np.repeat(a, 3, axis=3) if a.shape[3] == 1 else a

    def values(self, indices, dtype=np.float64) -> np.ndarray:
        """The given probe points' pictures with their channels, (k, H, W, C), in [0, 1] (NaN: 0)."""
        if self.pixels is None:
            raise ReporterError(f"no pictures to take: {self.note}")
        a = np.asarray(self.pixels[np.asarray(indices, dtype=np.int64)], dtype=dtype)
        span = self.hi - self.lo
        with np.errstate(invalid="ignore"):
            a = np.clip((a - self.lo) / (span if span > 0 else 1.0), 0.0, 1.0)
        a = np.nan_to_num(a, nan=0.0)
        return _stretch_barcode(a) if self.kind == "barcode" else a


def parse_image_shape(text: str | None) -> tuple[int, ...] | None:
    """``--image-shape``: ``HxW``, ``HxWxC`` (channels last) or ``CxHxW`` (channels first), C in 1, 3.

    Returns
    -------
    tuple or None
        ``(H, W, C, channels_first)`` packed as ``(H, W, C, 0|1)``, or None for no option.
    """
    if text is None or str(text).strip() == "":
        return None
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        dims = []
    if len(dims) not in (2, 3) or min(dims) <= 0:
        raise ReporterError(f"--image-shape {text!r} is not HxW, HxWxC or CxHxW (e.g. 28x28, 32x32x3)")
    if len(dims) == 2:
        return (dims[0], dims[1], 1, 0)
    if dims[2] in (1, 3):
        return (dims[0], dims[1], dims[2], 0)
    if dims[0] in (1, 3):
        return (dims[1], dims[2], dims[0], 1)
    raise ReporterError(f"--image-shape {text!r}: one of its sides must be the channels, 1 or 3 (e.g. 32x32x3)")


def image_view(array, n: int, *, role: str = "inputs", image_shape: tuple | None = None,
               like: ImageView | None = None) -> ImageView:
    """Decide how to show a tensor of ``n`` probe points.

    Parameters
    ----------
    array : array_like, first axis of length ``n``
        The tensor's values at one step.
    n : int
        Number of probe points (the latents' first axis).
    role : str
        ``"inputs"`` or ``"recon"``, for the messages.
    image_shape : tuple, optional
        :func:`parse_image_shape` of ``--image-shape``: reshape each sample to it. Raises
        ReporterError if the values per sample do not fit.
    like : ImageView, optional
        The inputs' view, for reconstructions: same layout and the same normalisation.

    Returns
    -------
    ImageView
    """
    a = np.asarray(array)
    option = f"--{role}-regex"
    what = ROLE[role].noun if role in ROLE else role
    if a.ndim == 0 or a.shape[0] != n:
        raise ReporterError(f"{role} has shape {a.shape} but the latents hold {n} points: check {option}")
    per_sample = int(np.prod(a.shape[1:], dtype=np.int64))
    if like is not None and like.pixels is not None:
        h, w, c = like.layout
        if per_sample == h * w * c:
            # Beside inputs drawn as bar codes, reconstructions are bar codes too (a picture beside a
            # strip says nothing, and the frame's rows have the inputs' size).
            pixels = _reshape_like(a, like) if like.kind == "image" else a.reshape(n, h, w, c)
            return ImageView(pixels, like.kind, like.lo, like.hi, like.normalisation,
                             f"{what} {_shape(a)} shown like the inputs, on their scale")
        if per_sample != h * w * c:
            return _left_out(f"{what} {_shape(a)} hold {per_sample:,} values per point, the inputs "
                             f"{h * w * c:,}: not shown")
    pixels, layout = _layout(a, per_sample, image_shape, role)
    if pixels is None:
        return _left_out(f"{what} {_shape(a)}: {layout}")
    # The values are the same in any layout: measure them where they are contiguous.
    lo, hi, rule = (like.lo, like.hi, like.normalisation) if like is not None else normalisation(a)
    kind = "barcode" if layout.startswith("a bar code") else "image"
    return ImageView(pixels, kind, lo, hi, rule, f"{what} {_shape(a)} shown as {layout}; values {rule}")


def normalisation(values) -> tuple[float, float, str]:
    """The black and white levels for these values, and the rule in words (see the module docstring)."""
    a = np.asarray(values)
    if a.size == 0:
        return 0.0, 1.0, "[0, 1] as is"
    lo, hi = float(a.min()), float(a.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):  # only then a filtered copy (NaN/Inf are rare)
        finite = a[np.isfinite(a)]
        if finite.size == 0:
            return 0.0, 1.0, "[0, 1] as is (no finite value)"
        lo, hi = float(finite.min()), float(finite.max())
    if lo >= -RANGE_SLACK and hi <= 1.0 + RANGE_SLACK:
        return 0.0, 1.0, "in [0, 1], shown as they are"
    if lo >= -RANGE_SLACK and hi <= 255.0 + RANGE_SLACK:
        return 0.0, 255.0, "in [0, 255], divided by 255"
    return lo, hi, f"from {lo:.3g} to {hi:.3g} (standardised?), mapped from min..max to black..white"


# -- layouts ---------------------------------------------------------------------------------


def _layout(a: np.ndarray, per_sample: int, image_shape, role: str):
    """(N, H, W, C) pixels and the layout in words, or (None, why not)."""
    n = a.shape[0]
    if image_shape is not None:
        h, w, c, channels_first = image_shape
        if h * w * c != per_sample:
            raise ReporterError(
                f"--image-shape {h}x{w}" + (f"x{c}" if c != 1 else "") + f" needs {h * w * c:,} values per "
                f"point but {role} {_shape(a)} has {per_sample:,}: fix --image-shape or leave it out")
        if channels_first:
            return a.reshape(n, c, h, w).transpose(0, 2, 3, 1), f"{h} x {w} images ({c} channels first, --image-shape)"
        return a.reshape(n, h, w, c), f"{h} x {w} images" + (f" ({c} channels last)" if c > 1 else "") + " (--image-shape)"
    shape = a.shape[1:]
    if len(shape) == 2 and min(shape) > 1:
        return a[..., None], f"{shape[0]} x {shape[1]} grey images"
    if len(shape) == 3:
        if shape[0] in (1, 3) and shape[2] not in (1, 3):
            c = "grey" if shape[0] == 1 else "RGB"
            return a.transpose(0, 2, 3, 1), f"{shape[1]} x {shape[2]} {c} images (channels first)"
        if shape[2] in (1, 3):
            c = "grey" if shape[2] == 1 else "RGB"
            return a, f"{shape[0]} x {shape[1]} {c} images (channels last)"
    if len(shape) == 1 and per_sample >= 4:
        side = math.isqrt(per_sample)
        if side * side == per_sample:
            return a.reshape(n, side, side, 1), f"{side} x {side} grey images (a square of {per_sample} values)"
        side = math.isqrt(per_sample // 3)
        if per_sample % 3 == 0 and side * side * 3 == per_sample and side >= 2:
            # Flattened (3, H, W), the layout of MXNet and PyTorch; --image-shape HxWx3 says otherwise.
            return (a.reshape(n, 3, side, side).transpose(0, 2, 3, 1),
                    f"{side} x {side} RGB images (3 x a square of {side * side} values, channels first)")
    if 1 < per_sample <= MAX_BARCODE_VALUES:
        return (a.reshape(n, 1, per_sample, 1),
                f"a bar code of {per_sample} values per point (not an image shape; pass --image-shape to reshape)")
    if per_sample <= 1:
        return None, "one value per point, not a picture: left out"
    return None, (f"{per_sample:,} values per point in no image layout: left out "
                  "(pass --image-shape HxW[xC] if they are images)")


def _reshape_like(a: np.ndarray, like: ImageView) -> np.ndarray:
    h, w, c = like.layout
    n = a.shape[0]
    if a.shape[1:] == (h, w, c):
        return a
    if a.ndim == 4 and a.shape[1:] == (c, h, w):
        return a.transpose(0, 2, 3, 1)
    if c == 3 and a.ndim == 2:
        return a.reshape(n, 3, h, w).transpose(0, 2, 3, 1)
    return a.reshape(n, h, w, c)


def _barcode_size(d: int) -> tuple[int, int]:
    """(H, W) of the strip of ``d`` values: each value a bar at least 2 px wide, BARCODE_ASPECT:1."""
    bar = max(1, math.ceil(28 / d)) * (2 if d <= 64 else 1)
    return max(4, d * bar // BARCODE_ASPECT), d * bar


def _stretch_barcode(a: np.ndarray) -> np.ndarray:
    """(k, 1, D, 1) -> (k, H, W, 1) as :func:`_barcode_size` says."""
    d = a.shape[2]
    height, width = _barcode_size(d)
    return np.repeat(np.repeat(a, width // d, axis=2), height, axis=1)


def _left_out(note: str) -> ImageView:
    return ImageView(None, "none", 0.0, 1.0, "", note)


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(d) for d in a.shape) + ")"


def probe_pictures(inputs, recon, n: int, image_shape: tuple | None = None):
    """The views of one step's inputs and reconstructions: (inputs, recon), each an ImageView or None.

    None for a role the trial does not have; reconstructions are shown only beside inputs, in
    the inputs' layout and on their scale.
    """
    if inputs is None:
        return None, None
    shown = image_view(inputs, n, role="inputs", image_shape=image_shape)
    if recon is None:
        return shown, None
    return shown, image_view(recon, n, role="recon", image_shape=image_shape, like=shown)
