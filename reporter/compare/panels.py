"""A comparison's time-lapse frame: every run's map side by side, in step, each panel titled.

Drawn the way one run's frames are (reporter/pictures/render.py): matplotlib on an Agg canvas,
the unchanging part (heading, panel titles, map frames, the class legend) drawn once and kept as
pixels, each tick painting only the tick's text, the bar, the points and each panel's caption.

Readable as one run's frame is: the picture is 900 px wide like a report's frame, so the GIF's
smallest scale (75 %, reporter/outputs/gif.py) shows it at 675 px, about what a pull request
shows, and its smallest text (12 px here) stays >= 9 px. More runs make the picture taller, not
wider: 2 columns up to 4 runs, then 3 or 4.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba_array
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D

from reporter.compare.comparison import reach
from reporter.pictures.colours import class_colour
from reporter.pictures.render import (
    BANNER_COLOUR, DPI, FIGSIZE_INCHES, MARKER_AREA, TEXT_GREY, PixelLayout,
    draw_heading, map_points,
)
from reporter.trial.steps import step_text

WIDTH_PX = FIGSIZE_INCHES[0] * DPI  # one run's frame width: the GIF's scale floor is set for it
MARGIN = 24.0
TOP = 64.0                 # below the heading and its bar
GAP = 24.0                 # between panels, across and down
TITLE_PX = 13.0            # a panel's title: the run's name and its differing settings
CAPTION_PX = 12.0          # a panel's own step and loss, and the legend's names
LINE = 1.3                 # line height, in font sizes
MAX_TITLE_LINES = 2
LEGEND_DOT = 10.0          # px across
MAP_SIDE_AT_FULL_MARKERS = 460.0  # one run's map side: its markers; smaller maps get smaller ones
ELLIPSIS = "\u2026"


def columns_for(n_runs: int) -> int:
    """Panels per row: side by side for 2, a 2 x 2 grid up to 4, then 3 or 4 across in two rows."""
    if n_runs <= 2:
        return max(n_runs, 1)
    if n_runs <= 4:
        return 2
    return min(4, math.ceil(n_runs / 2))


def shared_limits(comparison) -> tuple[float, float, float, float]:
    """One square for every panel and tick: the box [-1, 1] and the aligned points around it (comparison.reach)."""
    half = reach(comparison) * 1.06  # render.BOX_LIMITS' margin: markers on the edge stay whole
    return (-half, half, -half, half)


def tick_text(comparison, key: float) -> str:
    """The tick as the heading says it: "step 925 of 937" when every run has that length."""
    totals = {f.record.total_steps for run in comparison.runs for f in run.report.frames}
    if comparison.match == "step" and len(totals) == 1 and None not in totals:
        return step_text(int(key), totals.pop())
    return comparison.tick_label(key)


def tick_done(comparison, key: float) -> float:
    """How far along the timeline a tick is, 0 to 1, for the heading's bar."""
    if comparison.match == "share":
        return min(max(float(key), 0.0), 1.0)
    totals = {f.record.total_steps for run in comparison.runs for f in run.report.frames}
    end = totals.pop() if len(totals) == 1 and None not in totals else comparison.ticks[-1]
    return min(max(float(key) / float(end), 0.0), 1.0) if end else 1.0


def frame_caption(record, shown: int, total: int) -> list[str]:
    """A panel's caption, in parts: the frame's own step, its loss, how many points when some are missing."""
    step = record.train_step if record.train_step is not None else record.step
    words = [step_text(step, record.total_steps)]
    if record.eval_loss is not None and math.isfinite(record.eval_loss):
        words.append(f"eval loss {record.eval_loss:.4g}")
    if shown < total:
        words.append(f"{shown} of {total} points")
    return words


def _shown(layout: np.ndarray) -> int:
    return int(np.isfinite(layout).all(axis=1).sum())


def wrap(text: str, width: float, measure, max_lines: int = MAX_TITLE_LINES) -> list[str]:
    """``text`` in at most ``max_lines`` lines no wider than ``width`` (``measure(s)`` in px); the last
    line cut with an ellipsis if the text does not fit."""
    lines, line = [], ""
    words = text.split()
    for i, word in enumerate(words):
        trial = f"{line} {word}" if line else word
        if measure(trial) <= width or not line:
            line = trial
            continue
        lines.append(line)
        line = word
        if len(lines) == max_lines:
            line = " ".join([lines.pop(), *words[i:]])
            break
    lines.append(line)
    last = lines[-1]
    if measure(last) > width:
        while last and measure(last + ELLIPSIS) > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + ELLIPSIS
    return lines or [""]


class ComparisonCanvas:
    """The side-by-side frame of a comparison, built once, painted once per tick.

    Parameters
    ----------
    comparison : reporter.compare.comparison.Comparison
    titles : list of str
        One per run: its panel's title.
    heading : str
        The picture's title, left of the tick's text.
    """

    def __init__(self, comparison, titles: list[str], heading: str):
        runs = comparison.runs
        self.comparison = comparison
        self.columns = cols = columns_for(len(runs))
        rows = math.ceil(len(runs) / cols)
        side = (WIDTH_PX - 2 * MARGIN - (cols - 1) * GAP) / cols
        pt = 72.0 / DPI  # a pixel in points

        # The titles' lines, measured in the font they are drawn in, fix the panels' heights.
        probe = Figure(figsize=(1, 1), dpi=DPI)
        renderer = FigureCanvasAgg(probe).get_renderer()
        title_font = FontProperties(size=TITLE_PX * pt, weight="bold")
        caption_font = FontProperties(size=CAPTION_PX * pt)

        def measure(font):
            return lambda s: renderer.get_text_width_height_descent(s, font, ismath=False)[0]

        wrapped = [wrap(t, side, measure(title_font)) for t in titles]
        title_lines = max(len(w) for w in wrapped)
        title_h = title_lines * TITLE_PX * LINE
        # A caption is one line where every frame's fits the panel, else one part per line.
        captions = [frame_caption(f.record, _shown(y), len(y))
                    for run in runs for f, y in zip(run.report.frames, run.layouts)]
        self.caption_joint = " \u00b7 "
        if any(measure(caption_font)(self.caption_joint.join(c)) > side for c in captions):
            self.caption_joint = "\n"
        caption_lines = max(len(c) for c in captions) if self.caption_joint == "\n" else 1
        caption_h = caption_lines * CAPTION_PX * LINE + 4
        block = title_h + caption_h + side

        names = list(comparison.classes) or ["no labels"]
        entry = LEGEND_DOT + 6 + max(measure(caption_font)(n[:16]) for n in names) + 18
        legend_cols = max(1, min(len(names), int((WIDTH_PX - 2 * MARGIN) // entry)))
        legend_rows = math.ceil(len(names) / legend_cols)
        legend_top = TOP + rows * block + (rows - 1) * GAP + 14
        height = legend_top + legend_rows * CAPTION_PX * 1.8 + 10
        height = 2 * math.ceil(height / 2)  # even sides: the MP4's yuv420p needs them

        fig = Figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI, facecolor="white")
        FigureCanvasAgg(fig)
        px = PixelLayout(WIDTH_PX, height)
        self.step, self.bar = draw_heading(fig, px, pt, heading, True)
        dynamic = [self.step, self.bar]

        limits = shared_limits(comparison)
        labels = np.asarray(comparison.labels)
        self.order = np.random.default_rng(0).permutation(len(labels))  # as one run's frame draws them
        self.colours = to_rgba_array([class_colour(k) for k in labels]) if len(labels) else np.zeros((0, 4))
        area = MARKER_AREA * min(1.0, side / MAP_SIDE_AT_FULL_MARKERS)
        self.points, self.captions, self.places = [], [], []
        for i, lines in enumerate(wrapped):
            r, c = divmod(i, cols)
            left = MARGIN + c * (side + GAP)
            top = TOP + r * (block + GAP)
            for j, line in enumerate(lines):
                fig.text(*px.point(left, top + (j + 0.5) * TITLE_PX * LINE), line, fontproperties=title_font,
                         va="center", ha="left")
            caption = fig.text(*px.point(left, top + title_h), "", fontproperties=caption_font,
                               va="top", ha="left", color=TEXT_GREY, linespacing=LINE)
            ax = fig.add_axes(px.box(left, top + title_h + caption_h, side, side))
            points = map_points(ax, limits, area, colours=[])
            dynamic.extend([points, *ax.spines.values(), caption])  # the spines over the points
            self.points.append(points)
            self.captions.append(caption)
            self.places.append((left, top + title_h + caption_h, side))

        legend_w = legend_cols * entry - 18
        x0 = (WIDTH_PX - legend_w) / 2
        for k, name in enumerate(names):
            r, c = divmod(k, legend_cols)
            x, y = x0 + c * entry, legend_top + (r + 0.5) * CAPTION_PX * 1.8
            dot_x, dot_y = px.point(x + LEGEND_DOT / 2, y)
            fig.add_artist(Line2D([dot_x], [dot_y], linestyle="none",
                                  marker="o", markersize=LEGEND_DOT * pt, markeredgewidth=0,
                                  markerfacecolor=class_colour(k if comparison.classes else -1),
                                  transform=fig.transFigure))
            fig.text(*px.point(x + LEGEND_DOT + 6, y), name[:16], fontproperties=caption_font,
                     va="center", ha="left")

        for artist in dynamic:
            artist.set_animated(True)
        self.dynamic = dynamic
        self.fig = fig
        self.size = (int(WIDTH_PX), int(height))
        self.title_lines = wrapped
        fig.canvas.draw()
        self.background = fig.canvas.copy_from_bbox(fig.bbox)

    def paint(self, tick: int) -> np.ndarray:
        """The RGB picture (H, W, 3) uint8 of tick ``tick`` (an index into ``comparison.ticks``)."""
        comparison = self.comparison
        key = comparison.ticks[tick]
        self.step.set_text(tick_text(comparison, key))
        self.bar.set_width(tick_done(comparison, key))
        for run, points, caption in zip(comparison.runs, self.points, self.captions):
            f = run.frame_at[tick]
            layout = run.layouts[f]
            finite = np.isfinite(layout).all(axis=1)
            order = self.order[finite[self.order]]
            points.set_offsets(layout[order] if len(order) else np.zeros((0, 2)))
            points.set_facecolors(self.colours[order])
            caption.set_text(self.caption_joint.join(
                frame_caption(run.report.frames[f].record, len(order), len(layout))))
            caption.set_color(TEXT_GREY if len(order) == len(layout) else BANNER_COLOUR)
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        for artist in self.dynamic:
            self.fig.draw_artist(artist)
        return np.array(np.asarray(canvas.buffer_rgba())[..., :3])

