"""Two or more reports of one probe set, in one frame of reference and on one timeline.

The steps, in order:

1. **Shared points.** Probe images are matched by content (the digests ``probes.js`` holds), not
   by index or name: the comparison shows the images every run has, in the reference run's order.
2. **Timeline.** Each run's frames get a key: the training step (``match="step"``) or the share
   of the run's training done (``match="share"``). The timeline's ticks are every key of any run;
   at a tick each run shows its last frame at or before it (its first before it starts).
3. **Alignment.** The reference run (the first) keeps its own frames, each fitted to the box
   [-1, 1] as the report's map is. Every frame of another run is rotated, scaled and moved onto
   the reference's frame at the same key (orthogonal Procrustes with scale, over the shared
   points). One handedness per run, chosen over all its frames, so no panel mirrors from one
   step to the next. The reference is one run for the whole comparison.
4. **Separation.** For each class and run, the first key from which the class's 10-NN accuracy
   in the 2-D map stays at or above :data:`SEPARATED` until the run's last frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reporter import ReporterError
from reporter.compare.reports import Report
from reporter.embedding.align import similarity
from reporter.embedding.quality import knn_hits
from reporter.pictures.render import fit_to_box
from reporter.trial.steps import step_text

STEP, SHARE = "step", "share"
MATCHES = (STEP, SHARE)
# A class "separates" once its 10-NN accuracy in the 2-D map stays at or above this to the end.
SEPARATED = 0.8
SEPARATION_K = 10
MAX_RUNS = 8
# How far beyond the reference's box [-1, 1] the views of a comparison reach at most (reach()).
MOST_REACH = 1.5


@dataclass
class RunView:
    """One run of a comparison: its frames' aligned maps over the shared points."""

    report: Report
    take: np.ndarray                   # (S,) the shared points' indices in this run
    keys: np.ndarray                   # (F,) each frame's key (training step, or share of training done)
    layouts: list[np.ndarray]          # (S, 2) per frame, aligned onto the reference, in its box
    residuals: list[float | None]      # per frame: similarity residual (None: the reference, or not alignable)
    reflected: bool
    frame_at: list[int]                # per tick: the frame shown
    separation: dict[int, float | None]  # class -> key from which it stays separated (None: never)


@dataclass
class Comparison:
    runs: list[RunView]
    match: str
    ticks: list[float]
    labels: np.ndarray                 # (S,) the reference run's labels of the shared points
    classes: list[str]

    @property
    def shared(self) -> int:
        return len(self.labels)

    def tick_label(self, key: float) -> str:
        if self.match == SHARE:
            return f"{key * 100:.0f}% of training"
        return step_text(int(key))


def shared_points(reports: list[Report]) -> list[np.ndarray]:
    """Per report, the indices of the probe images every report holds, in the first report's order.

    An image held twice in one probe set is matched occurrence by occurrence.

    Raises
    ------
    ReporterError
        If no image is in every report.
    """
    def keyed(report):
        seen, keys = {}, []
        for d in report.digests:
            seen[d] = seen.get(d, 0) + 1
            keys.append((d, seen[d]))
        return {k: i for i, k in enumerate(keys)}

    maps = [keyed(r) for r in reports]
    common = [k for k in maps[0] if all(k in m for m in maps[1:])]
    if not common:
        for r in reports[1:]:
            if not set(maps[0]) & set(keyed(r)):
                raise ReporterError(f"{reports[0].name} and {r.name} share no probe image (checked by content): "
                                    "compare runs of the same probe set, e.g. the same dataset and --probe-size")
        raise ReporterError("no probe image is in every report (checked by content): compare runs of the same probe set")
    return [np.array([m[k] for k in common], dtype=np.int64) for m in maps]


def frame_keys(report: Report, match: str) -> np.ndarray:
    """Each frame's key on the timeline: its training step, or the share of its run's training done."""
    keys = []
    for f in report.frames:
        step = f.record.train_step if f.record.train_step is not None else f.record.step
        if match == STEP:
            keys.append(float(step))
            continue
        total = f.record.total_steps or (report.run_file or {}).get("steps")
        if not isinstance(total, (int, float)) or total <= 0:
            raise ReporterError(f"{report.name} does not record its run's length, so --match share cannot place its "
                                "frames: use --match step")
        keys.append(round(float(step) / float(total), 6))
    return np.array(keys, dtype=np.float64)


def compare(reports: list[Report], match: str = STEP) -> Comparison:
    """Align ``reports`` (the first is the reference) and put them on one timeline.

    Raises
    ------
    ReporterError
        Fewer than two or more than :data:`MAX_RUNS` reports, a report without frames, no
        shared probe image, an unknown ``match``.
    """
    if not 2 <= len(reports) <= MAX_RUNS:
        raise ReporterError(f"compare takes 2 to {MAX_RUNS} reports, got {len(reports)}")
    if match not in MATCHES:
        raise ReporterError(f"--match must be one of {', '.join(MATCHES)}, got {match!r}")
    for r in reports:
        if not r.frames:
            raise ReporterError(f"{r.name} has no frames yet: wait for its first frame, or pass --follow")
    takes = shared_points(reports)
    all_keys = [frame_keys(r, match) for r in reports]
    ticks = sorted(set(float(k) for keys in all_keys for k in keys))
    ref, ref_take, ref_keys = reports[0], takes[0], all_keys[0]
    ref_layouts = [fit_to_box(f.embedding[ref_take]) for f in ref.frames]
    labels = ref.labels[ref_take]
    runs = []
    for i, (report, take, keys) in enumerate(zip(reports, takes, all_keys)):
        if i == 0:
            layouts, residuals, reflected = ref_layouts, [None] * len(ref_layouts), False
        else:
            targets = [ref_layouts[_at(ref_keys, k)] for k in keys]
            layouts, residuals, reflected = _align_run([f.embedding[take] for f in report.frames], targets)
        runs.append(RunView(report=report, take=take, keys=keys, layouts=layouts, residuals=residuals,
                            reflected=reflected, frame_at=[_at(keys, t) for t in ticks],
                            separation=separation(layouts, labels, keys)))
    return Comparison(runs=runs, match=match, ticks=ticks, labels=labels, classes=ref.classes)


def reach(comparison: Comparison, most: float = MOST_REACH) -> float:
    """How far the aligned maps reach from the centre (at least 1: the reference's box; at most ``most``).

    The reference run fills the box [-1, 1]; another run, given its spread, may reach past it. The
    GIF's panels and the page's maps show this much, the same for every panel and step, so places
    stay comparable; beyond ``most`` a stray point would shrink every map, and is clamped instead.
    """
    furthest = 1.0
    for run in comparison.runs:
        for layout in run.layouts:
            finite = np.isfinite(layout).all(axis=1)
            if finite.any():
                furthest = max(furthest, float(np.abs(layout[finite]).max()))
    return min(furthest, most)


def _at(keys: np.ndarray, key: float) -> int:
    """The last frame at or before ``key`` (the first before the run starts)."""
    return max(0, int(np.searchsorted(keys, key + 1e-9, side="right")) - 1)


def _align_run(frames: list[np.ndarray], targets: list[np.ndarray]):
    """Each frame onto its target, with one handedness for the whole run (the majority's)."""
    usable = [np.isfinite(y).all(axis=1) & np.isfinite(t).all(axis=1) for y, t in zip(frames, targets)]
    mirrors = [similarity(y[ok], t[ok])[2] for y, t, ok in zip(frames, targets, usable) if ok.sum() >= 3]
    reflected = sum(mirrors) * 2 > len(mirrors)
    layouts, residuals = [], []
    for y, t, ok in zip(frames, targets, usable):
        if ok.sum() < 3:
            layouts.append(fit_to_box(y))  # too few finite points to fit: shown in its own box
            residuals.append(None)
            continue
        out = np.full(y.shape, np.nan)
        out[ok], residual, _ = similarity(y[ok], t[ok], reflect=reflected)
        layouts.append(out)
        residuals.append(residual)
    return layouts, residuals, reflected


def separation(layouts: list[np.ndarray], labels: np.ndarray, keys: np.ndarray) -> dict[int, float | None]:
    """Per class: the first key from which its 10-NN accuracy in the map stays >= :data:`SEPARATED`."""
    classes = np.unique(labels)
    since = {int(c): None for c in classes}
    hits = []
    for y in layouts:
        ok = np.isfinite(y).all(axis=1)
        row = np.zeros(len(labels), dtype=bool)
        if ok.sum() > SEPARATION_K:
            row[ok] = knn_hits(y[ok], labels[ok], SEPARATION_K)
        hits.append(row)
    for c in classes:
        members = labels == c
        shares = [h[members].mean() if members.any() else 0.0 for h in hits]
        start = None
        for f in range(len(shares) - 1, -1, -1):  # walk back from the end while it holds
            if shares[f] < SEPARATED:
                break
            start = float(keys[f])
        since[int(c)] = start
    return since
