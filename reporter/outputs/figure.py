"""The paper figure: small multiples of the embedding at a few training steps, vector, one legend.

``figure.pdf``, ``figure.svg`` and ``figure.png`` (300 dpi) show k frames (default 6), evenly
spaced in training steps with the first and the last included, at a journal's column width
(single: 3.5 in; double: 7 in). Each panel is titled with its training step; the class legend
is drawn once; the colours are the GIF's. The PDF embeds its fonts as TrueType (``pdf.fonttype``
42: journals reject Type 3 fonts), and the SVG draws text as paths so it looks the same
everywhere.

Made from a report folder alone (its ``state.json``, ``run.json`` and ``frames/*.npz``): the
reporter writes it as the run goes, and ``python -m reporter figure --report DIR`` re-makes it
from a finished report, e.g. at other steps, without reading the tensor store.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from latentlapse import atomic
from latentlapse.contract import RunInfo
from latentlapse import report_layout as layout
from reporter import ReporterError
from reporter.outputs import defaults
from reporter.state import load as load_state
from reporter.pictures.colours import class_colour
from reporter.pictures.render import BOX_LIMITS, fit_to_box, scatter_by_class
from reporter.trial.labels import class_names
from reporter.trial.steps import frame_train_step, total_steps

FIGURE_STEM = layout.FIGURE_STEM
FIGURE_FILES = layout.FIGURES
WIDTHS_INCHES = defaults.FIGURE_WIDTHS_INCHES
DEFAULT_PANELS = defaults.FIGURE_PANELS
PNG_DPI = 300
FONT_POINTS = 7.0  # a figure caption's size in most journals is 8-9 pt; panel text a little less
MARKER_AREA = 1.2  # points^2: 1,000 points per panel of ~1 in stay separable
COLUMNS = {"single": 3, "double": 6}
PAD_INCHES = 0.04  # between panels
TITLE_INCHES = FONT_POINTS * 1.6 / 72  # a panel's title line


@dataclass
class Panel:
    """One frame of the report as the figure draws it."""

    train_step: int
    embedding: np.ndarray
    labels: np.ndarray


def check_width(width: str) -> float:
    """Inches of a figure width name; a ReporterError naming the choices otherwise."""
    if width not in WIDTHS_INCHES:
        choices = " or ".join(f"{k} ({v:g} in)" for k, v in WIDTHS_INCHES.items())
        raise ReporterError(f"--figure-width {width!r} is not a width: use {choices}")
    return WIDTHS_INCHES[width]


def choose_steps(available: list[int], k: int) -> list[int]:
    """k of the ``available`` training steps, evenly spaced, first and last included.

    Each of k evenly spaced targets between the first and the last step takes the nearest
    step not taken yet, so the panels are distinct. Fewer than k steps: all of them.
    """
    if k < 1:
        raise ReporterError(f"a figure of {k} frames is empty: ask for 1 or more frames")
    steps = sorted(set(available))
    if len(steps) <= k:
        return steps
    if k == 1:
        return [steps[-1]]
    chosen: list[int] = []
    for target in np.linspace(steps[0], steps[-1], k):
        free = [s for s in steps if s not in chosen]
        chosen.append(min(free, key=lambda s: (abs(s - target), s)))
    return sorted(chosen)


def parse_steps(text: str) -> list[int]:
    """Training steps from "0,200,500,937"; a ReporterError for anything else."""
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ReporterError(f"--steps {text!r} is not a list of training steps: write e.g. "
                            "--steps 0,200,500,937") from None
    if not steps:
        raise ReporterError("--steps is empty: give training steps, e.g. --steps 0,200,500,937")
    return steps


def read_report(out: Path) -> tuple[list[dict], dict | None]:
    """The frame records of a report folder (``state.json``) and its run metadata (``run.json``)."""
    state = load_state(out / layout.STATE)
    if state is None:
        raise ReporterError(f"{out} holds no report (no {layout.STATE}): pass the folder the reporter "
                            "wrote (its --out)")
    try:
        run = RunInfo.from_json(json.loads((out / layout.RUN).read_text())) if (out / layout.RUN).is_file() else None
    except ValueError as exc:
        raise ReporterError(f"{out}: {layout.RUN} is not valid JSON ({exc})") from None
    return state.frame_dicts(), run


def frames_by_step(frames: list[dict], run: dict | None) -> dict[int, dict]:
    """Frame records by training step (the first frame of a step, should one repeat)."""
    by_step: dict[int, dict] = {}
    for record in frames:
        by_step.setdefault(frame_train_step(record, run), record)
    return by_step


def figure_steps(out: Path, frames: list[dict], run: dict | None, steps: list[int] | None = None,
                 k: int = DEFAULT_PANELS) -> list[int]:
    """The training steps a figure shows: ``steps`` once checked, or k evenly spaced ones."""
    by_step = frames_by_step(frames, run)
    if not by_step:
        raise ReporterError(f"{out} has no frames yet: make the figure once the report has some")
    if steps is None:
        return choose_steps(list(by_step), k)
    missing = [s for s in steps if s not in by_step]
    if missing:
        have = sorted(by_step)
        shown = ", ".join(str(s) for s in have[:12]) + (", ..." if len(have) > 12 else "")
        raise ReporterError(f"training step {missing[0]} has no frame in this report: its frames "
                            f"are at steps {shown} (pick from those, or leave out --steps)")
    return list(steps)


def load_panels(out: Path, frames: list[dict], run: dict | None, steps: list[int] | None = None,
                k: int = DEFAULT_PANELS):
    """The panels of a figure of report ``out``: at ``steps``, or k evenly spaced ones.

    Returns
    -------
    panels : list of Panel
    class_names : list of str
    total : int or None
        Train steps of the whole run, when the run file says.
    """
    by_step = frames_by_step(frames, run)
    steps = figure_steps(out, frames, run, steps, k)
    panels = []
    for step in steps:
        with np.load(out / by_step[step]["npz"]) as saved:
            panels.append(Panel(step, saved["embedding"], saved["labels"]))
    labels_max = max(int(p.labels.max()) for p in panels if len(p.labels))
    names = RunInfo.from_json(run).class_names if run else None
    if labels_max < 0:  # a trial without labels: every point -1, drawn in the one colour
        names = ["no labels"]
    else:
        names = class_names(labels_max + 1, names)
    return panels, [str(n) for n in names], total_steps(run)


def draw_figure(panels: list[Panel], class_names: list[str], *, width: str = "single",
                total: int | None = None):
    """The small multiples as a matplotlib Figure (not yet saved).

    Parameters
    ----------
    panels : list of Panel
        One panel per frame, in the order drawn (left to right, top to bottom).
    class_names : list of str
        Legend text per class (drawn once, under the panels).
    width : {"single", "double"}
        Column width: 3.5 in or 7 in.
    total : int, optional
        Train steps of the whole run: the last panel's title then says "of N".
    """
    inches = check_width(width)
    cols = min(len(panels), COLUMNS[width])
    rows = math.ceil(len(panels) / cols)
    legend_cols, _, legend_h = legend_shape(class_names, width)
    pad = PAD_INCHES
    side = (inches - pad * (cols + 1)) / cols
    title_h = TITLE_INCHES
    height = rows * (side + title_h) + pad * rows + legend_h

    fig = Figure(figsize=(inches, height), facecolor="white")
    FigureCanvasAgg(fig)
    for i, panel in enumerate(panels):
        r, c = divmod(i, cols)
        left = pad + c * (side + pad)
        top = r * (side + title_h + pad) + title_h
        last = i == len(panels) - 1 and total and panel.train_step == total
        draw_panel(fig, (left, top, side), (inches, height), panel.embedding, panel.labels,
                   f"step {panel.train_step:,}" + (f" of {total:,}" if last else ""))
    draw_legend(fig, class_names, legend_cols)
    return fig


def legend_shape(class_names: list[str], width: str) -> tuple[int, int, float]:
    """The class legend under a figure: its columns, rows and height in inches."""
    legend_cols = min(len(class_names), 5 if width == "single" else 10)
    legend_rows = math.ceil(len(class_names) / legend_cols)
    return legend_cols, legend_rows, legend_rows * FONT_POINTS * 1.7 / 72 + 0.04


def draw_panel(fig, place: tuple[float, float, float], size: tuple[float, float], embedding, labels,
               title: str | None, limits=None):
    """One small multiple: a square map, titled above; returns its axes.

    ``place`` is (left, top, side) in inches from the figure's top left; ``size`` the figure's
    (width, height) in inches. ``limits`` None: the map is fitted to the box (one run's panels);
    otherwise drawn as given within these limits (a comparison's maps, already aligned).
    """
    left, top, side = place
    inches, height = size
    ax = fig.add_axes((left / inches, 1 - (top + side) / height, side / inches, side / height))
    emb = np.asarray(embedding, dtype=np.float64)
    if limits is None:
        emb, limits = fit_to_box(emb), BOX_LIMITS
    scatter_by_class(ax, emb, labels, limits, marker_area=MARKER_AREA, spine_width=0.5)
    if title is not None:
        ax.set_title(title, fontsize=FONT_POINTS, pad=2)
    return ax


def draw_legend(fig, class_names: list[str], legend_cols: int) -> None:
    """The class legend, once, centred at the bottom of the figure, read by rows."""
    legend_rows = math.ceil(len(class_names) / legend_cols)
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=3.5, markeredgewidth=0,
                      markerfacecolor=class_colour(k), label=name[:16])
               for k, name in enumerate(class_names)]
    # The legend fills its columns top to bottom: reorder so that it reads by rows (0 1 2 3 4 / 5 ...).
    handles = [handles[r * legend_cols + c] for c in range(legend_cols) for r in range(legend_rows)
               if r * legend_cols + c < len(handles)]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=legend_cols,
               frameon=False, fontsize=FONT_POINTS, handletextpad=0.1, columnspacing=0.6,
               borderaxespad=0.1, labelspacing=0.3)


def render_files(fig) -> dict[str, bytes]:
    """The figure as PDF (TrueType fonts), SVG (text as paths) and 300 dpi PNG bytes."""
    files = {}
    settings = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "path",
                "svg.hashsalt": "latentlapse"}
    # No creation dates: the same report gives the same files.
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {"Software": None}}
    with matplotlib.rc_context(settings):
        for ext in ("pdf", "svg", "png"):
            buf = io.BytesIO()
            fig.savefig(buf, format=ext, dpi=PNG_DPI, metadata=metadata[ext], facecolor="white")
            files[f"{FIGURE_STEM}.{ext}"] = buf.getvalue()
    return files


def write_figure(out, *, frames: list[dict] | None = None, run: dict | None = None,
                 steps: list[int] | None = None, k: int = DEFAULT_PANELS,
                 width: str = "single") -> list[int]:
    """Make the figure of report ``out`` and write its three files into it, atomically.

    Parameters
    ----------
    out : path
        The report folder.
    frames, run : list of dict, dict, optional
        The frame records and run metadata; read from ``state.json`` and ``run.json`` when
        ``frames`` is None (a finished report, as ``python -m reporter figure`` does).
    steps : list of int, optional
        Training steps to show; default: ``k`` evenly spaced ones, first and last included.
    k : int
        How many panels without ``steps``.
    width : {"single", "double"}

    Returns
    -------
    list of int
        The training steps shown.

    Raises
    ------
    ReporterError
        A bad width, k < 1, or steps the report has no frame of.
    """
    check_width(width)
    if k < 1:
        choose_steps([], k)  # raises the one-line error
    out = Path(out)
    if frames is None:
        frames, run = read_report(out)
    panels, names, total = load_panels(out, frames, run, steps, k)
    for name, data in render_files(draw_figure(panels, names, width=width, total=total)).items():
        atomic.write_bytes(out / name, data)
    return [p.train_step for p in panels]
