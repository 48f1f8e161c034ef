"""A comparison's folder: its map data, ``compare.json`` and ``index.html``, every file atomically.

The folder opens from ``file://`` and requests nothing outside itself: the probe sprite sheet is
copied in, each run's frames are written as the report's map data files are
(reporter/site/explore.py), with coordinates aligned onto the reference run, under
``data/run-K/``. A file whose bytes would not change is not rewritten, so a live comparison
writes only what its runs' new frames change.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from latentlapse import atomic
from latentlapse import report_layout as layout
from reporter import ReporterError, __version__
from reporter.compare.comparison import SEPARATED, SEPARATION_K, SHARE, Comparison, reach
from reporter.pictures.colours import CLASS_COLOURS
from reporter.site import explore
from reporter.site.charts import line_chart
from reporter.site.page import class_palette, copy_assets, script_json, template_dir, templates_of, write_if_changed
from reporter.state import SILENT_AFTER_SECONDS, silent_for
from reporter.trial.steps import step_text

DATA = layout.COMPARE_DATA
PROBES_JS = f"{DATA}/probes.js"
PROBES_PNG = f"{DATA}/probes.png"
TEMPLATE = "compare.html.j2"
REFRESH_SECONDS = 5
FORMAT = 1
# What the settings table shows of a run file's config, in this order, and what it calls each.
SETTINGS = (("dataset", "dataset"), ("seed", "trainer seed"), ("lr", "learning rate"), ("batch_size", "batch size"),
            ("steps", "training steps"), ("epochs", "epochs"), ("eval_every", "eval every"),
            ("probe_size", "probe set"), ("warmup_steps", "warm-up steps"), ("save_interval", "save interval"))
NOT_RECORDED = "not recorded"
# Settings a panel's title names (the differing ones), at most.
TITLE_SETTINGS = 3


def marker(out: Path) -> Path:
    return out / layout.COMPARE_INFO


def check_folder(out: Path) -> None:
    """Refuse to write into a folder that holds something other than a comparison."""
    if out.exists() and not out.is_dir():
        raise ReporterError(f"{out} is a file: pass --out a folder for the comparison")
    # Hidden entries do not count: a comparison killed before its first compare.json leaves only
    # its outputs' work folder (reporter/compare/outputs.py), which the next run clears.
    if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()) and not marker(out).is_file():
        raise ReporterError(f"{out} is not empty and holds no comparison ({layout.COMPARE_INFO}): "
                            "pass --out a new or empty folder, so nothing in it is overwritten")


def run_settings(comparison: Comparison) -> tuple[list[dict], list[str]]:
    """The settings table (one row per setting, a value per run) and each run's differing settings in words."""
    rows, differing = [], [[] for _ in comparison.runs]
    for key, name in SETTINGS + (("reporter_seed", "embedding seed"),):
        values = []
        for run in comparison.runs:
            report = run.report
            if key == "reporter_seed":
                value = report.state.trial.get("seed")
            else:
                # The trainer's config, or what the run file says of the run where the option was
                # left to its default (steps: None in the config, 937 in the run file).
                config = (report.run_file or {}).get("config") or {}
                value = config.get(key)
                if value is None:
                    value = (report.run_file or {}).get(key)
            values.append(NOT_RECORDED if value is None else _text(value))
        differs = len(set(values)) > 1
        rows.append({"name": name, "values": values, "differs": differs})
        if differs:
            for i, value in enumerate(values):
                if value != NOT_RECORDED:
                    differing[i].append(f"{name} {value}")
    return rows, [", ".join(d[:TITLE_SETTINGS]) for d in differing]


def titles(comparison: Comparison) -> list[str]:
    """Each panel's title: the run's name and the settings in which it differs from the others."""
    _, differing = run_settings(comparison)
    return [run.report.name + (f" · {d}" if d else "") for run, d in zip(comparison.runs, differing)]


def write_data(out: Path, comparison: Comparison) -> list[list[str]]:
    """The map's data files; returns each run's frame files (relative to ``out``)."""
    ref = comparison.runs[0].report
    sprite = None
    if ref.sprite and (ref.folder / ref.sprite["src"]).is_file():
        data = (ref.folder / ref.sprite["src"]).read_bytes()
        if not (out / PROBES_PNG).is_file() or (out / PROBES_PNG).read_bytes() != data:
            atomic.write_bytes(out / PROBES_PNG, data)
        sprite = {**{k: ref.sprite[k] for k in ("cols", "width", "height")}, "src": PROBES_PNG,
                  "index": comparison.runs[0].take.tolist()}
    payload = {"kind": "probes", "format": explore.FORMAT, "n": comparison.shared,
               "labels": comparison.labels.tolist(), "classes": comparison.classes, "sprite": sprite,
               "note": None, "digests": None}
    write_if_changed(out / PROBES_JS, explore.data_script(payload))
    files = []
    shrink = 1.0 / reach(comparison)  # every panel as far as the furthest run reaches: the GIF's view
    for k, run in enumerate(comparison.runs):
        inverse = np.full(run.report.n, -1, dtype=np.int64)
        inverse[run.take] = np.arange(len(run.take))
        paths = []
        for f, (frame, xy) in enumerate(zip(run.report.frames, run.layouts)):
            rel = f"{DATA}/run-{k}/frame-{f:04d}.js"
            record = frame.record
            label = step_text(record.train_step, record.total_steps) if record.train_step is not None else None
            body = {"kind": "frame", "format": explore.FORMAT, "index": f, "step": int(record.step),
                    "global_step": int(record.global_step), "train_step": int(record.train_step or 0),
                    "label": label or f"frame {f + 1}", "n": comparison.shared, "scale": explore.COORD_SCALE,
                    "xy": explore.pack(explore.quantise_coordinates(xy * shrink, fitted=True), "<i2"),
                    "loss": None, "nn": None, "k": 0, "recon": None}
            if frame.losses is not None:
                body["loss"] = explore.pack(frame.losses[run.take], "<f4")
            if frame.neighbours is not None:
                near = _shared_neighbours(frame.neighbours[run.take], inverse)
                body.update(nn=explore.pack(np.where(near < 0, 0xFFFFFFFF, near), "<u4"), k=int(near.shape[1]),
                            nn_bytes=4)
            write_if_changed(out / rel, explore.data_script(body))
            paths.append(rel)
        files.append(paths)
    return files


def _shared_neighbours(near: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """A run's latent neighbours as shared-point indices; neighbours outside the shared set drop out."""
    mapped = np.where(near >= 0, inverse[np.clip(near, 0, None)], -1)
    out = np.full(mapped.shape, -1, dtype=np.int64)
    for i, row in enumerate(mapped):
        kept = row[row >= 0]
        out[i, :len(kept)] = kept
    return out


def facts(comparison: Comparison, names: list[str], live: bool, outputs: dict | None) -> dict:
    """``compare.json``: what was compared and how, with no clock in it (equal inputs, equal file)."""
    return {
        "format": FORMAT, "match": comparison.match, "shared_points": comparison.shared,
        "live": live, "ticks": comparison.ticks, "separated_at": SEPARATED, "separation_k": SEPARATION_K,
        "runs": [{"name": name, "folder": str(run.report.folder), "points": run.report.n,
                  "frames": len(run.report.frames), "status": run.report.state.status,
                  "reflected": run.reflected, "keys": run.keys.tolist(), "residuals": run.residuals,
                  "frame_at": run.frame_at,
                  "separation": {comparison.classes[c] if c < len(comparison.classes) else str(c): key
                                 for c, key in run.separation.items()}}
                 for name, run in zip(names, comparison.runs)],
        "outputs": outputs or {},
    }


def write_site(out, comparison: Comparison, *, live: bool, outputs: dict | None = None,
               command: str = "", now: datetime | None = None) -> Path:
    """Write (or update) the comparison in ``out``: data, ``compare.json``, assets and ``index.html``.

    The caller checks the folder first (:func:`check_folder`): the outputs may be there before
    ``compare.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(timezone.utc)
    files = write_data(out, comparison)
    settings, _ = run_settings(comparison)
    names = [run.report.name for run in comparison.runs]
    panel_titles = titles(comparison)
    write_if_changed(marker(out), json.dumps(facts(comparison, names, live, outputs), indent=1) + "\n")
    templates = template_dir()
    versions = copy_assets(templates / "static", out / layout.ASSETS)
    html = templates_of(templates).get_template(TEMPLATE).render(
        **_context(out, comparison, files, settings, panel_titles, live, outputs or {}, command, now, versions))
    atomic.write_text(out / layout.PAGE, html)
    return out / layout.PAGE


def _context(out, comparison, files, settings, panel_titles, live, outputs, command, now, versions):
    runs = comparison.runs
    ticks = comparison.ticks
    lo, hi = (ticks[0], ticks[-1]) if ticks else (0.0, 1.0)
    domain = (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)
    charts = [_chart(comparison, key, title, domain, y_range) for key, title, y_range in (
        ("knn_2d", "10-NN accuracy in the 2-D map", (0.0, 1.0)),
        ("knn_latent", "10-NN accuracy in the latent space", (0.0, 1.0)),
        ("trustworthiness", "Trustworthiness of the map", (0.0, 1.0)),
        ("eval_loss", "Evaluation loss", None))]
    x_of = charts[0]["chart"]["x_of"]
    timeline = []
    for t, key in enumerate(ticks):
        label = comparison.tick_label(key)
        shown = [f"{run.report.name}: frame {run.frame_at[t] + 1}" for run in runs]
        timeline.append({"number": t + 1, "label": label, "png": None, "alt": "", "cursor_x": x_of(key),
                         "caption": f"{label} ({t + 1} of {len(ticks)}) · " + "; ".join(shown)})
    residuals = []
    for run in runs[1:]:
        values = [r for r in run.residuals if r is not None]
        residuals.append({"name": run.report.name, "median": _fmt(statistics.median(values)) if values else "–",
                          "last": _fmt(values[-1]) if values else "–", "reflected": run.reflected})
    separation = [{"name": comparison.classes[c] if c < len(comparison.classes) else str(c),
                   "values": [_key_text(comparison, run.separation.get(c)) for run in runs]}
                  for c in sorted(runs[0].separation)]
    statuses = [_status(run.report) for run in runs]
    still = [s for s in statuses if s["live"]]
    return {
        "title": "latentlapse · compare " + " · ".join(r.report.name for r in runs),
        "runs": [{"name": run.report.name, "title": title, "folder": str(run.report.folder),
                  "page": _relative(out, run.report.folder / layout.PAGE), "frames": len(run.report.frames),
                  "points": run.report.n, "status": status}
                 for run, title, status in zip(runs, panel_titles, statuses)],
        "panels": [{"title": t} for t in panel_titles],
        "shared": comparison.shared,
        "partial": any(run.report.n != comparison.shared for run in runs),
        "match": comparison.match,
        "match_text": ("the share of each run's training done" if comparison.match == SHARE
                       else "training step (a run shows its last frame at or before the step)"),
        "settings": settings,
        "charts": charts,
        "separation": separation,
        "separated_at": SEPARATED,
        "separation_k": SEPARATION_K,
        "residuals": residuals,
        "live": live and bool(still),
        "still_running": len(still),
        "refresh_seconds": REFRESH_SECONDS,
        "timeline": timeline,
        "latest": timeline[-1] if timeline else None,
        "outputs": _outputs_view(outputs),
        "command": command,
        "palette": class_palette(comparison.classes),
        "assets": {name: f"{layout.ASSETS}/{name}?v={digest}" for name, digest in versions.items()},
        "written": now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "version": __version__,
        "data_json": script_json({
            "live": live and bool(still), "refresh": REFRESH_SECONDS, "updated": round(now.timestamp(), 3),
            "silentAfter": SILENT_AFTER_SECONDS, "frames": timeline, "probes": PROBES_JS,
            "panels": [{"frames": paths, "frameAt": run.frame_at, "name": run.report.name}
                       for paths, run in zip(files, runs)],
            "colours": list(CLASS_COLOURS)}),
    }


def _outputs_view(outputs: dict) -> dict | None:
    """What the page says of the GIF, MP4 and figure: reporter/compare/outputs.py's record, and why a figure is missing."""
    if not outputs:
        return None
    gif = outputs.get("gif")
    waiting = ["The figure is made when no run trains any more."] if outputs.get("figure") is None else []
    return {"gif": gif if gif and not gif.get("error") else None, "files": outputs.get("files") or [],
            "problems": (outputs.get("problems") or []) + waiting}


def _chart(comparison, key, title, domain, y_range):
    series = []
    for i, run in enumerate(comparison.runs):
        points = [(float(k), getattr(f.record, key)) for k, f in zip(run.keys, run.report.frames)]
        series.append({"key": f"run-{i}", "label": run.report.name, "points": points, "markers": len(points) < 60})
    chart = line_chart(series, domain, y_range=y_range, log_if_ratio=8.0 if key == "eval_loss" else None, title=title)
    return {"id": f"chart-{key.replace('_', '-')}", "title": title, "chart": chart}


def _status(report) -> dict:
    """A run's status as the comparison says it: a live report that has been silent too long is not running."""
    status = report.state.status
    quiet = silent_for(status, report.state.updated)
    if quiet is not None:
        return {"live": False, "word": status,
                "text": f"{status}, but no update for {quiet / 60:.0f} min (its reporter may have stopped)"}
    return {"live": report.live, "word": status, "text": status}


def is_silent(report) -> bool:
    return silent_for(report.state.status, report.state.updated) is not None


def _key_text(comparison, key):
    if key is None:
        return "not separated"
    return comparison.tick_label(key)


def _relative(out: Path, target: Path) -> str | None:
    if not target.is_file():
        return None
    return Path(os.path.relpath(target.resolve(), out.resolve())).as_posix()


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if isinstance(value, (str, int)) else json.dumps(value, default=str)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else "–"
