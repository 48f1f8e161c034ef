"""The interactive view's data: written once per frame into ``explore/``, read by the page lazily.

A page opened from ``file://`` may not ``fetch`` files beside it, but it may load scripts and
images. So every data file is a small script that hands one JSON object to a function the page
registered (``latentlapseExplore``), and pictures are PNG sprite sheets shown through ``<img>``
or CSS backgrounds. Files:

``explore/probes.js``     once: point count, labels, class names, the sprite sheet's layout, and a
                          digest of each probe input's values (runs are compared by these).
``explore/probes.png``    once: every probe image, row-major in a grid of ``cols`` columns.
``explore/frame-NNNN.js`` per frame: 2-D coordinates (as in the PNG frame: each frame fitted to
                          the box [-1, 1]), per-point loss, nearest latent neighbours.
``explore/recon-NNNN.png`` per frame: the reconstructions, same layout as ``probes.png``.

Each frame writes only its own files, so the cost of a frame does not grow with the run.
Arrays travel as base64 of little-endian binary (coordinates int16, losses float32, neighbours
uint16/uint32): about 24 KB per frame of 1,000 points instead of ~60 KB of decimal text.
Everything from a trial (class names) is JSON inside a script: ``<``, ``>``, ``&`` and the
JavaScript line separators U+2028/U+2029 are written as ``\\uXXXX`` escapes, so no string can
close the script or the page's inline data block.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np

from latentlapse import atomic
from latentlapse import report_layout as layout
from reporter import ReporterError
from reporter.embedding.neighbours import nearest_neighbours
from reporter.pictures.png import encode_levels_png, encode_png
from reporter.pictures.render import fit_to_box
from reporter.trial.images import image_view
from reporter.trial.steps import step_text, training_step

FOLDER = layout.EXPLORE
PROBES_JS = f"{FOLDER}/probes.js"
PROBES_PNG = f"{FOLDER}/probes.png"
# The function every data file calls; app.js defines it before loading any.
CALLBACK = "latentlapseExplore"
FORMAT = 1
# Coordinates are fitted to [-1, 1] (render.fit_to_box); int16 steps of 1/COORD_SCALE of that.
COORD_SCALE = 30000
MISSING_COORD = -32768  # a point with NaN/Inf coordinates: not drawn
# Nearest latent neighbours kept per point and frame (shown for a pinned point).
NEIGHBOURS = 5
# Grey levels of the reconstruction sprites: 16 keeps a default run's sprites near 150 KB a
# frame (256 levels: ~400 KB) and is invisible at the size the page shows them.
RECON_LEVELS = 16
# Pictures converted at once when a sprite sheet is made.
SPRITE_BLOCK = 1024
# Hex digits of a probe input's digest: 64 bits, no accidental match among millions of images.
DIGEST_HEX = 16

_JS_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def json_for_script(obj) -> str:
    """JSON text that is safe inside ``<script>`` (inline or a ``.js`` file) and as JavaScript.

    Parameters
    ----------
    obj : JSON-serialisable
        No NaN/Inf (they are not JSON): pass None instead.

    Returns
    -------
    str
        Compact JSON with ``<``, ``>``, ``&``, U+2028 and U+2029 as unicode escapes.
    """
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    for char, escape in _JS_ESCAPES:  # str.replace: 50x faster than a pass per character in Python
        text = text.replace(char, escape)
    return text


def data_script(payload: dict) -> str:
    """The text of one data file: a call of the page's registered function with ``payload``."""
    return f"{CALLBACK}({json_for_script(payload)});\n"


def read_data_script(path) -> dict:
    """The payload of a data file :func:`data_script` wrote.

    Raises
    ------
    ValueError
        If the file is not one (OSError if it cannot be read).
    """
    text = Path(path).read_text(encoding="utf-8").strip()
    head, tail = f"{CALLBACK}(", ");"
    if not (text.startswith(head) and text.endswith(tail)):
        raise ValueError(f"{path} is not a latentlapse data file")
    payload = json.loads(text[len(head):-len(tail)])
    if not isinstance(payload, dict):
        raise ValueError(f"{path} holds no payload object")
    return payload


def unpack(text: str, dtype: str) -> np.ndarray:
    """The array :func:`pack` wrote (1-D)."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def frame_files(index: int) -> dict[str, str]:
    """Paths (relative to the report folder) of frame ``index``'s data and reconstruction sprite."""
    return {"js": f"{FOLDER}/frame-{index:04d}.js", "recon": f"{FOLDER}/recon-{index:04d}.png"}


# -- pure parts -----------------------------------------------------------------------------


def pack(array: np.ndarray, dtype: str) -> str:
    """Base64 of ``array`` as little-endian ``dtype`` (e.g. ``'<i2'``)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def quantise_coordinates(embedding: np.ndarray, fitted: bool = False) -> np.ndarray:
    """Fit an (N, 2) embedding to the box [-1, 1] as the PNG frames are, as int16 (N*2,).

    Rows holding NaN/Inf become :data:`MISSING_COORD`. ``fitted``: the coordinates are already
    where they should be drawn (a comparison's, aligned onto its reference run), so they are only
    quantised; points beyond the box are clamped to the int16 range.
    """
    y = np.asarray(embedding, dtype=np.float64) if fitted else fit_to_box(np.asarray(embedding, dtype=np.float64))
    finite = np.isfinite(y).all(axis=1)
    q = np.full(y.shape, MISSING_COORD, dtype=np.int16)
    q[finite] = np.clip(np.round(y[finite] * COORD_SCALE), -32767, 32767).astype(np.int16)
    return q.ravel()


def latent_neighbours(latents: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """The ``k`` nearest other points of each point in the latent space, nearest first.

    Points with NaN/Inf latents have no neighbours and are nobody's: their rows and any missing
    places (fewer than ``k + 1`` finite points) hold -1.

    Returns
    -------
    array (N, k) of int64
    """
    X = np.asarray(latents, dtype=np.float64).reshape(len(latents), -1)
    out = np.full((len(X), k), -1, dtype=np.int64)
    finite = np.flatnonzero(np.isfinite(X).all(axis=1))
    kk = min(k, len(finite) - 1)
    if kk < 1:
        return out
    near, _ = nearest_neighbours(X[finite], kk)
    out[finite, :kk] = finite[near]
    return out


def sprite_layout(n: int) -> int:
    """Columns of a near-square sprite sheet of ``n`` images."""
    return max(1, int(np.ceil(np.sqrt(n))))


def to_levels(values: np.ndarray, levels: int = 256, indices: bool = False) -> np.ndarray:
    """Values in [0, 1] as uint8 with ``levels`` evenly spaced grey levels (0 and 255 included).

    With ``indices``, the level numbers 0 .. levels - 1 themselves (a palette PNG's pixels).
    """
    level = np.round(np.clip(values, 0.0, 1.0) * (levels - 1))
    if indices:
        return level.astype(np.uint8)
    return np.round(level * (255.0 / (levels - 1))).astype(np.uint8)


def view_pixels(view, levels: int = 256, indices: bool = False) -> np.ndarray:
    """Every picture of an :class:`reporter.trial.images.ImageView` as uint8, (N, H, W) grey or (N, H, W, 3).

    Converted a block at a time: a float copy of 10,000 RGB pictures at once would take ~190 MB.
    ``levels`` and ``indices`` as :func:`to_levels`.
    """
    n = len(view.pixels)
    parts = []
    for start in range(0, n, SPRITE_BLOCK):
        pictures = view.values(np.arange(start, min(n, start + SPRITE_BLOCK)), dtype=np.float32)
        if pictures.shape[3] == 1:
            pictures = pictures[..., 0]
        parts.append(to_levels(pictures, levels, indices))
    return np.concatenate(parts)


def sprite_sheet(pictures: np.ndarray, cols: int) -> np.ndarray:
    """Tile (N, H, W[, 3]) uint8 pictures row-major into one picture of ``cols`` columns (black padding)."""
    n, h, w = pictures.shape[:3]
    rows = -(-n // cols)
    pad = rows * cols - n
    if pad:
        pictures = np.concatenate([pictures, np.zeros((pad, *pictures.shape[1:]), dtype=np.uint8)])
    tiles = pictures.reshape(rows, cols, h, w, *pictures.shape[3:])
    return np.swapaxes(tiles, 1, 2).reshape(rows * h, cols * w, *pictures.shape[3:])


def probe_views(inputs, reconstructions, n: int):
    """How the inputs and reconstructions are shown (reporter/trial/images.py): the frames' rules, one scale.

    Returns (inputs view or None, reconstructions view or None); None where nothing can be shown.
    """
    if inputs is None:
        return None, None
    try:
        inputs_view = image_view(inputs, n, role="inputs")
    except ReporterError:
        return None, None
    if not inputs_view.shown:
        return None, None
    recon_view = None
    if reconstructions is not None:
        try:
            recon_view = image_view(reconstructions, n, role="recon", like=inputs_view)
        except ReporterError:
            recon_view = None
    return inputs_view, recon_view if recon_view is not None and recon_view.shown else None


# -- the files ------------------------------------------------------------------------------


def probe_digests(inputs, n: int) -> list[str] | None:
    """A short digest of each probe input's values (as float64, little-endian), None without inputs.

    Two runs hold the same probe image where the digests agree, whatever its index or the run's
    name: ``latentlapse compare`` matches runs' points by these.
    """
    if inputs is None or len(inputs) != n:
        return None
    rows = np.ascontiguousarray(np.asarray(inputs).reshape(n, -1), dtype="<f8")
    return [hashlib.sha256(row.tobytes()).hexdigest()[:DIGEST_HEX] for row in rows]


def write_probes(out_dir, labels, inputs, class_names, *, inputs_view=None) -> dict:
    """Write ``explore/probes.js`` (and ``probes.png`` when the inputs are pictures); return the payload."""
    out = Path(out_dir)
    labels = np.asarray(labels).astype(np.int64).ravel()
    if inputs_view is None:
        inputs_view = probe_views(inputs, None, len(labels))[0]
    payload = {
        "kind": "probes", "format": FORMAT, "n": int(len(labels)), "labels": labels.tolist(),
        "classes": [str(c) for c in class_names], "sprite": None,
        "note": inputs_view.note if inputs_view is not None else "no pictures of the probe points",
        "digests": probe_digests(inputs, len(labels)),
    }
    if inputs_view is not None:
        pictures = view_pixels(inputs_view)
        cols = sprite_layout(len(pictures))
        atomic.write_bytes(out / PROBES_PNG, encode_png(sprite_sheet(pictures, cols)))
        payload["sprite"] = {"src": PROBES_PNG, "cols": cols, "width": int(pictures.shape[2]),
                             "height": int(pictures.shape[1])}
    atomic.write_text(out / PROBES_JS, data_script(payload))
    return payload


def write_frame(out_dir, index: int, embedding, labels, class_names, *, step: int, global_step: int,
                train_step: int | None = None, label: str | None = None,
                latents=None, inputs=None, reconstructions=None, losses=None, neighbours=None,
                views=None) -> dict:
    """Write frame ``index``'s data (and the probes' files if missing); return the payload.

    Parameters
    ----------
    out_dir : path
        The report folder.
    index : int
        The frame's index (0-based), as in ``state.json``.
    embedding : array (N, 2)
        The frame's 2-D coordinates, as drawn (any scale: fitted to the box here).
    labels, class_names :
        Class index per point and the name of each class.
    step, global_step : int
        The EVAL step and smdebug's global step of the frame (data, not shown).
    train_step : int, optional
        Train steps done at the frame (reporter/trial/steps.py); derived from the two above if not given.
    label : str, optional
        What the map says of the frame: its training step, "step 925 of 937". Default
        ``step_text(train_step)``.
    latents : array (N, D), optional
        Bottleneck vectors: the pinned point's neighbours are found among them.
    inputs, reconstructions : arrays of N images, optional
        Shown as the frames show them (reporter/trial/images.py: layout, and one scale chosen from the
        inputs); the reconstructions become this frame's sprite sheet.
    losses : array (N,), optional
        Per-sample loss.
    neighbours : array (N, >= NEIGHBOURS) of int, optional
        The latents' nearest neighbours, nearest first, if the caller has them (the embedder
        does); else they are searched here.
    views : (ImageView or None, ImageView or None), optional
        The inputs' and reconstructions' views as :func:`probe_views` makes them, if the caller
        has them (the frame does): ``inputs`` is then only digested (``probes.js``), and
        ``reconstructions`` not looked at.
    """
    out = Path(out_dir)
    n = len(embedding)
    if len(labels) != n:
        raise ReporterError(f"explore data: {n} points but {len(labels)} labels: check --labels-regex")
    inputs_view, recon_view = views if views is not None else probe_views(inputs, reconstructions, n)
    if not (out / PROBES_JS).is_file():
        write_probes(out, labels, inputs, class_names, inputs_view=inputs_view)
    files = frame_files(index)
    if train_step is None:
        train_step = training_step(step, global_step)
    label = label or step_text(train_step)
    payload = {"kind": "frame", "format": FORMAT, "index": int(index), "step": int(step),
               "global_step": int(global_step), "train_step": int(train_step), "label": str(label), "n": int(n), "scale": COORD_SCALE,
               "xy": pack(quantise_coordinates(embedding), "<i2"), "loss": None, "nn": None, "k": 0,
               "recon": None}
    if losses is not None and len(losses) == n:
        payload["loss"] = pack(np.asarray(losses, dtype=np.float64).ravel(), "<f4")
    if latents is not None and len(latents) == n:
        if neighbours is not None and np.shape(neighbours)[0] == n and np.shape(neighbours)[1] >= NEIGHBOURS:
            near = np.asarray(neighbours)[:, :NEIGHBOURS]
        else:
            near = latent_neighbours(latents)
        wide = n > 65535
        near = np.where(near < 0, 0xFFFFFFFF if wide else 0xFFFF, near)
        payload.update(nn=pack(near, "<u4" if wide else "<u2"), k=int(near.shape[1]), nn_bytes=4 if wide else 2)
    if recon_view is not None:
        grey = recon_view.pixels.shape[-1] == 1  # one channel: a 4-bit palette PNG; colour: RGB
        sheet = sprite_sheet(view_pixels(recon_view, RECON_LEVELS, indices=grey), sprite_layout(n))
        atomic.write_bytes(out / files["recon"],
                           encode_levels_png(sheet, RECON_LEVELS) if grey else encode_png(sheet))
        payload["recon"] = files["recon"]
    # The script last: a page that sees it can rely on the sprite it names.
    atomic.write_text(out / files["js"], data_script(payload))
    return payload
