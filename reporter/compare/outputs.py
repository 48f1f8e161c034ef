"""The comparison's outputs people paste: a side-by-side GIF and MP4, and a paper figure.

``comparison.gif`` and ``comparison.mp4`` show every run's map side by side at each tick of the
comparison's timeline (reporter/compare/panels.py draws the frames). They keep one run's rules:
the GIF goes through the report's :class:`~reporter.outputs.gif.GifWriter` (the 5 MiB budget, a
smaller scale down to 75 % and no further, then an evenly spaced subset of frames), the MP4
through its encoder (H.264, every frame, under 10 MB). ``figure.pdf/.svg/.png`` shows the runs as
rows and a few evenly spaced ticks as columns, in the report figure's style
(reporter/outputs/figure.py).

Each file is made whole in a work folder and published atomically, so a page reading the folder
sees the previous comparison's file or this one's. The same comparison gives the same bytes.
As in a report (reporter/outputs/publish.py) the MP4 and the figure are optional: one that
cannot be made records its error line, and the others are still made.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from latentlapse import atomic
from latentlapse import report_layout as layout
from reporter.compare.panels import ComparisonCanvas, shared_limits, tick_text
from reporter.outputs import defaults
from reporter.outputs.figure import (
    FONT_POINTS, PAD_INCHES, TITLE_INCHES, check_width, choose_steps, draw_legend, draw_panel,
    legend_shape, render_files,
)
from reporter.outputs.gif import GifWriter
from reporter.outputs.publish import cannot_make_reason
from reporter.outputs.video import CRF, MAX_BYTES, encode, plan_crf
from reporter.site.downloads import size_text
from reporter.trial.steps import step_text

log = logging.getLogger("reporter.compare")

WORK_PREFIX = ".compare-outputs-"  # hidden: never part of what people take away
FIGURE_WIDTH = "double"  # runs as rows and six steps as columns need a page's width
FIGURE_COLUMNS = {"single": 3, "double": 6}
#: What each file is, for the page's list of downloads.
WHAT = {
    layout.COMPARE_GIF: "every run's map side by side at each step, for a pull request",
    layout.COMPARE_MP4: "the same frames as an H.264 video, for a pull request or a slide",
    layout.FIGURES[0]: "runs as rows, steps as columns: vector, fonts embedded, for a paper",
    layout.FIGURES[1]: "the same figure as SVG",
    layout.FIGURES[2]: "the same figure as a 300 dpi PNG",
}


def write_outputs(out_dir, comparison, titles: list[str], *, delay_ms: int = defaults.GIF_DELAY_MS,
                  threads: int = 1, gif_budget_bytes: int = defaults.GIF_BUDGET,
                  figure_width: str = FIGURE_WIDTH, figure_panels: int = defaults.FIGURE_PANELS,
                  heading: str | None = None, figure: bool = True) -> dict:
    """Write the comparison's GIF, MP4 and figure into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        The comparison's folder (created if missing).
    comparison : reporter.compare.comparison.Comparison
    titles : list of str
        One per run, in order: its panel's and its figure row's title (its name and the
        settings that differ).
    delay_ms : int
        A tick's display time in the GIF; the MP4 plays 1000 / ``delay_ms`` ticks a second.
    threads : int
        The video encoder's threads.
    gif_budget_bytes : int
        The size the GIF stays under (as a report's ``--gif-budget-mib``).
    figure_width : {"single", "double"}
        The figure's column width; it shows up to 3 (single) or 6 (double) ticks.
    figure_panels : int
        How many ticks the figure shows (evenly spaced, the first and the last included).
    heading : str, optional
        The frames' title; default "latentlapse · N runs".
    figure : bool
        Make the figure too (default). It costs more than the GIF and the MP4 together at 8
        runs (~8 s for 48 vector panels of 300 points): a comparison that follows a live run
        can leave it for the end.

    Returns
    -------
    dict
        ``{"gif": {...}, "video": {...}, "figure": {...}, "files": [...], "problems": [...]}``:
        each output with its ``path`` (relative to ``out_dir``) and ``error`` (None, or the line
        that says why it could not be made and what to do). ``files``: ``{"path", "what"}`` of
        each file made, for the page; ``problems``: the error lines. The GIF: ``frames``
        (ticks), ``kept`` and ``kept_ticks`` (the tick indices it holds), ``bytes``, ``width``,
        ``height``, ``scale``, ``note``, ``caption`` ("N of M frames, W × H px, size"). The video: ``frames``,
        ``bytes``, ``crf``. The figure: ``files``, ``bytes`` (of the PDF), ``ticks`` (the keys
        shown), ``labels`` (their text), ``rows`` (the runs' titles), ``width``; None when
        ``figure`` is False.

    Raises
    ------
    ValueError
        ``titles`` does not hold one title per run.
    ReporterError
        A bad ``delay_ms``, budget, figure width or panel count (the user's options: one line).
    Exception
        The GIF could not be written (as a report's GIF, it is not optional).
    """
    if len(titles) != len(comparison.runs):
        raise ValueError(f"{len(titles)} titles for {len(comparison.runs)} runs")
    check_width(figure_width)
    if figure_panels < 1:
        choose_steps([], figure_panels)  # raises the one-line error
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{WORK_PREFIX}*"):  # the work folder of a comparison killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    heading = heading or f"latentlapse \u00b7 {len(comparison.runs)} runs"
    canvas = ComparisonCanvas(comparison, list(titles), heading)
    ticks = range(len(comparison.ticks))
    results = {}
    with tempfile.TemporaryDirectory(dir=out, prefix=WORK_PREFIX) as work:
        work = Path(work)
        gif = GifWriter(work / layout.COMPARE_GIF, delay_ms=delay_ms, budget_bytes=gif_budget_bytes,
                        expected_frames=len(ticks))
        drawn = _Drawn(canvas, ticks, gif)
        results["video"] = _video(out, work, drawn, canvas, len(ticks), 1000.0 / delay_ms, threads)
        drawn.finish()  # the ticks the encoder did not take, if it stopped early, into the GIF
        atomic.write_bytes(out / layout.COMPARE_GIF, (work / layout.COMPARE_GIF).read_bytes())
        caption = f"{gif.frames_text}, {gif.size[0]} \u00d7 {gif.size[1]} px, {size_text(gif.bytes)}"
        results["gif"] = {"path": layout.COMPARE_GIF, "frames": gif.frames, "kept": gif.kept,
                          "kept_ticks": gif.kept_indices, "bytes": gif.bytes, "width": gif.size[0],
                          "height": gif.size[1], "scale": gif.scale, "note": gif.note, "error": None,
                          "caption": caption + (f"; {gif.note}" if gif.note else "")}
    results["figure"] = _figure(out, comparison, list(titles), figure_width, figure_panels) if figure else None
    made = [r for r in (results["gif"], results["video"], results["figure"]) if r and not r["error"]]
    return {"gif": results["gif"], "video": results["video"], "figure": results["figure"],
            "files": [{"path": name, "what": WHAT[name]} for r in made for name in r.get("files", [r["path"]])],
            "problems": [r["error"] for r in (results["video"], results["figure"]) if r and r["error"]]}


class _Drawn:
    """The ticks' pictures, drawn once each, in order: each goes into the GIF as it is drawn and
    is handed on to the video encoder. An error in drawing or in the GIF is kept, so that it is
    raised as itself and not taken for the encoder's."""

    def __init__(self, canvas, ticks, gif):
        self.canvas, self.ticks, self.gif = canvas, iter(ticks), gif
        self.failure: BaseException | None = None

    def __iter__(self):
        for tick in self.ticks:
            try:
                rgb = self.canvas.paint(tick)
                self.gif.append(rgb)
            except BaseException as exc:
                self.failure = exc
                raise
            yield rgb

    def finish(self) -> None:
        for _ in self:
            pass


def _video(out: Path, work: Path, drawn: _Drawn, canvas, n_frames: int, fps: float, threads: int) -> dict:
    """Encode the ticks as ``comparison.mp4``; too large for GitHub's 10 MB: again, coarser, once."""
    path = work / layout.COMPARE_MP4
    crf = CRF
    try:
        try:
            encode(path, drawn, fps, threads, crf)
        except BaseException:
            if drawn.failure is not None:
                raise drawn.failure from None
            raise
        size = path.stat().st_size
        if size > MAX_BYTES:
            crf = plan_crf(size / n_frames, n_frames, MAX_BYTES)
            drawn.finish()  # every tick is in the GIF before the second pass
            encode(path, (canvas.paint(t) for t in range(n_frames)), fps, threads, crf)
        data = path.read_bytes()
        atomic.write_bytes(out / layout.COMPARE_MP4, data)
    except Exception as exc:  # noqa: BLE001 - the MP4 is one output among several: the rest goes on
        if drawn.failure is not None:
            raise
        return _could_not_make("the MP4", [layout.COMPARE_MP4], out, exc)
    return {"path": layout.COMPARE_MP4, "frames": n_frames, "bytes": len(data), "crf": crf, "error": None}


def _figure(out: Path, comparison, titles: list[str], width: str, k: int) -> dict:
    """Draw the figure and write its three files; its record, or the line saying why it could not be made."""
    try:
        ticks = figure_ticks(comparison, k, width)
        files = render_files(draw_comparison_figure(comparison, titles, ticks, width=width))
        for name, data in files.items():
            atomic.write_bytes(out / name, data)
    except Exception as exc:  # noqa: BLE001 - as for the MP4
        return _could_not_make("the paper figure", list(layout.FIGURES), out, exc)
    return {"path": layout.FIGURES[0], "files": list(layout.FIGURES), "bytes": len(files[layout.FIGURES[0]]),
            "ticks": [comparison.ticks[t] for t in ticks],
            "labels": [tick_text(comparison, comparison.ticks[t]) for t in ticks],
            "rows": list(titles), "width": width, "error": None}


def _could_not_make(what: str, names: list[str], out: Path, exc: Exception) -> dict:
    """The record of an output that could not be made (a report's words for it); an earlier
    comparison's file of that name is removed, so the folder shows no picture of other runs."""
    line = f"{what} could not be made: {cannot_make_reason(exc, out)}"
    log.error("%s", line)
    log.debug("%s", what, exc_info=exc)
    for name in names:
        stale = out / name
        if stale.is_file() or stale.is_symlink():
            stale.unlink()
    return {"path": names[0], "error": line}


def figure_ticks(comparison, k: int, width: str = FIGURE_WIDTH) -> list[int]:
    """Indices of the ticks the figure shows: up to ``k`` (at most the width's columns), evenly
    spaced on the timeline, the first and the last included."""
    keys = choose_steps(list(comparison.ticks), min(k, FIGURE_COLUMNS[width]))
    return [comparison.ticks.index(key) for key in keys]


def draw_comparison_figure(comparison, titles: list[str], ticks: list[int], *, width: str = FIGURE_WIDTH):
    """The runs as rows, ``ticks`` (indices into ``comparison.ticks``) as columns: a matplotlib Figure.

    The ticks' text heads the columns; each row is headed by its run's title. When a run's
    frame at a tick is not at the tick itself (runs matched by share of training, or a run
    without a frame there), every panel also says its own step.
    """
    inches = check_width(width)
    runs = comparison.runs
    cols, pad, title_h = len(ticks), PAD_INCHES, TITLE_INCHES
    names = list(comparison.classes) or ["no labels"]
    legend_cols, _, legend_h = legend_shape(names, width)
    side = (inches - pad * (cols + 1)) / cols
    own = any(float(run.keys[run.frame_at[t]]) != float(comparison.ticks[t]) for run in runs for t in ticks)
    row_h = title_h * (2 if own else 1) + side + pad
    height = title_h + len(runs) * row_h + legend_h

    fig = Figure(figsize=(inches, height), facecolor="white")
    FigureCanvasAgg(fig)
    for c, t in enumerate(ticks):
        fig.text((pad + c * (side + pad) + side / 2) / inches, 1 - title_h / 2 / height,
                 tick_text(comparison, comparison.ticks[t]), fontsize=FONT_POINTS, ha="center", va="center")
    limits = shared_limits(comparison)
    labels = np.asarray(comparison.labels)
    for r, (run, title) in enumerate(zip(runs, titles)):
        top = title_h + r * row_h
        fig.text(pad / inches, 1 - (top + title_h / 2) / height, _fit(title, inches - 2 * pad),
                 fontsize=FONT_POINTS, fontweight="bold", ha="left", va="center")
        for c, t in enumerate(ticks):
            f = run.frame_at[t]
            record = run.report.frames[f].record
            step = record.train_step if record.train_step is not None else record.step
            draw_panel(fig, (pad + c * (side + pad), top + title_h * (2 if own else 1), side), (inches, height),
                       run.layouts[f], labels, step_text(step) if own else None, limits=limits)
    draw_legend(fig, names, legend_cols)
    return fig


def _fit(text: str, inches: float) -> str:
    """``text`` cut with an ellipsis to about ``inches`` at the figure's font (~0.55 em a character)."""
    most = max(4, math.floor(inches * 72 / (0.55 * FONT_POINTS)))
    return text if len(text) <= most else text[:most - 1].rstrip() + "\u2026"
