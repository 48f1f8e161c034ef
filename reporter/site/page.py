"""The static site: ``index.html``, its assets and its downloads, rewritten after every frame.

The page opens from ``file://`` or any static host and makes no network request: styles and
script are copied beside it, the charts are inline SVG drawn here, and the data the script needs
is inline JSON. Everything from a trial, a config or a file name goes through Jinja2's
autoescape; the run configuration goes through :func:`redact` before it reaches the page.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from latentlapse import atomic
from latentlapse import report_layout as layout
from latentlapse.contract import RunInfo
from reporter import ReporterError, __version__, rules
from reporter.site import explore
from reporter.site import downloads as site_outputs
from reporter.site.charts import line_chart, x_domain
from reporter.trial.modes import role_rows, site_notes
from reporter.pictures.colours import CLASS_COLOURS
from reporter.site.redact import HIDDEN, redact, redact_text
from reporter.trial.steps import batch_steps, frame_train_step, total_steps
from reporter.state import FINAL_STATUSES, LIVE_STATUSES, SILENT_AFTER_SECONDS, ReportState, epoch, parse_time

__all__ = [
    "write_site",
    "template_dir",
    "redact",
    "HIDDEN",
    "RECONSTRUCTION_PNG",
]

TEMPLATE_ENV = "REPORTER_SITE_TEMPLATE"
RECONSTRUCTION_PNG = layout.RECONSTRUCTION
METRICS_CSV = layout.METRICS
RUN_JSON = layout.RUN
# While the run may still grow the page reloads itself this often; finished/failed/stopped pages don't.
REFRESH_SECONDS = 5
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def template_dir() -> Path:
    """The folder holding ``index.html.j2`` and ``static/``.

    ``$REPORTER_SITE_TEMPLATE`` wins (the Docker image copies the templates elsewhere); then
    ``site_template/`` beside the package in a source tree, then inside an installed package.
    """
    env = os.environ.get(TEMPLATE_ENV)
    if env:
        if not (Path(env) / "index.html.j2").is_file():
            raise ReporterError(
                f"{TEMPLATE_ENV}={env} holds no index.html.j2: point it at the site_template folder"
            )
        return Path(env)
    package = Path(__file__).resolve().parents[1]  # reporter/
    for candidate in (package.parent / "site_template", package / "site_template"):
        if (candidate / "index.html.j2").is_file():
            return candidate
    raise ReporterError(
        f"site_template/ not found next to {package}: set {TEMPLATE_ENV} to the folder holding index.html.j2"
    )


@functools.lru_cache(maxsize=4)
def templates_of(folder: Path) -> Environment:
    """The Jinja environment of a template folder, made once per process.

    Compiling the page's templates cost more than rendering them (~0.2 s a frame); the
    environment keeps them compiled and recompiles one only when its file changes.
    """
    return Environment(loader=FileSystemLoader(str(folder)), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def write_site(out_dir, state: dict, run: RunInfo | dict | None, *, now: datetime | None = None) -> Path:
    """Write the site for the frames so far into ``out_dir``; every file atomically.

    Parameters
    ----------
    out_dir : path
        The reporter's output folder (frames, GIF and ``state.json`` already written there).
    state : ReportState or dict
        The reporter state (reporter/state.py), or ``state.json`` as parsed.
    run : dict or None
        The store's ``latentlapse-run.json``, None before the trainer wrote it. A redacted copy
        is written as ``run.json``.
    now : datetime, optional
        The time to print as "written at" and to measure a stall against (default: now, UTC).

    Returns
    -------
    Path
        The written ``index.html``.
    """
    if isinstance(state, dict):
        state = ReportState.from_json(state)
    elif not isinstance(state, ReportState):
        raise ReporterError(f"the site needs the reporter state (a ReportState or dict), got {type(state).__name__}")
    if run is not None and not isinstance(run, (dict, RunInfo)):
        raise ReporterError(f"the run metadata must be a JSON object, got {type(run).__name__}")
    run = RunInfo.from_json(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(timezone.utc)
    templates = template_dir()

    asset_versions = copy_assets(templates / "static", out / layout.ASSETS)
    public_run = redact(run.to_json()) if run is not None else None
    if public_run is not None:
        write_if_changed(out / RUN_JSON, json.dumps(public_run, indent=2, sort_keys=True, default=str) + "\n")
    frames = state.frame_dicts()
    write_if_changed(out / METRICS_CSV, _metrics_csv(frames))

    html = templates_of(templates).get_template("index.html.j2").render(
        **_context(out, state, public_run or {}, frames, now, asset_versions)
    )
    atomic.write_text(out / layout.PAGE, html)
    return out / layout.PAGE


# -- the page's context ----------------------------------------------------------------------


def _context(out: Path, state: ReportState, run: dict, frames: list, now: datetime, versions: dict) -> dict:
    status = state.status
    live = status in LIVE_STATUSES
    class_names = [str(c) for c in run.get("class_names") or []]
    steps = [frame_train_step(f, run) for f in frames]  # training steps: the charts' axis
    domain = x_domain(frames, run)
    loss = line_chart(_loss_series(frames, run), domain, log_if_ratio=8.0, title="Loss")
    quality = line_chart(_quality_series(frames, run), domain, y_range=(0.0, 1.0), title="Quality")
    frame_views = [_frame_view(out, f, i, len(frames), steps[i], loss, site_outputs.frame_label(f, run))
                   for i, f in enumerate(frames)]
    gaps = gap_texts(state.skipped, len(frames))
    for i, view in enumerate(frame_views):
        view["gap"] = gaps[i]
    alerts = state.alerts or []  # the loop's (reporter/pipeline.py), re-evaluated there when unreadable
    recon_step = steps[-1] if steps else None  # the grid is redrawn with every frame
    dataset = DATASET_NAMES.get(str(run.get("dataset", "")), run.get("dataset") or "unknown dataset")
    palette = class_palette(class_names)
    map_panels = _map_panels(out, state, frame_views)
    return {
        "title": f"latentlapse · {dataset}",
        "header": _header(state, run, frames, status, dataset, now),
        "live": live,
        "refresh_seconds": REFRESH_SECONDS,
        "assets": {name: f"{layout.ASSETS}/{name}?v={digest}" for name, digest in versions.items()},
        # The GIF, the MP4 and the paper figure with their snippets (reporter/site/downloads.py).
        "gif": site_outputs.gif_view(out, state, run, dataset, frames),
        "video": site_outputs.video_view(out, state, run, dataset, frames),
        "figure": site_outputs.figure_view(out, state, run, dataset),
        # An MP4 or figure that could not be made says so, with its fix (reporter/outputs/publish.py).
        # It takes the place of the output's section (whose view is None then), under the same heading.
        "output_problems": [{"section": name, "title": title, "id": f"{name}-problem", "line": made.error}
                            for name, title, made in (("video", "The video", state.video),
                                                      ("figure", "The paper figure", state.figure))
                            if made is not None and made.error],
        "final": _final_view(out, state),
        # With a final cut the map has two panels in step: the live frames and the cut's.
        "map_panels": [{"title": name} for name, _ in map_panels] if map_panels else None,
        "frames": frame_views,
        "latest": frame_views[-1] if frame_views else None,
        "loss_chart": loss,
        "quality_chart": quality,
        "table": _with_gaps(_table_rows(frames, [v["label"] for v in frame_views]), state.skipped),
        "reconstruction": _recon_view(out, recon_step, class_names, dataset,
                                      frame_views[-1]["label"] if frame_views else None),
        "palette": palette,
        "alerts": [_alert_view(a) for a in alerts if isinstance(a, dict)],
        "inventory": [_inventory_row(t) for t in state.tensors_inventory],
        "downloads": _downloads(out, state, run),
        "config": _config_rows(run.get("config")),
        "run_facts": _run_facts(state, run),
        "trial_notes": site_notes(state.trial),
        "recon_missing": state.trial.get("no_reconstructions"),
        "error": redact_text(state.reason) if state.reason else None,
        "skipped": [_skipped_view(s) for s in state.skipped],
        "written": _when(now),
        "version": __version__,
        "explore": _explore_view(out, palette, frame_views),
        "data_json": script_json(
            {"live": live, "refresh": REFRESH_SECONDS, "updated": _epoch(state.updated),
             "silentAfter": SILENT_AFTER_SECONDS, "frames": [
                {k: v[k] for k in ("number", "step", "label", "png", "alt", "cursor_x", "explore", "gap")}
                for v in frame_views
            ], "probes": explore.PROBES_JS if (out / explore.PROBES_JS).is_file() else None,
             "panels": [{"frames": paths, "name": name} for name, paths in map_panels] if map_panels else None,
             "colours": list(CLASS_COLOURS)}
        ),
    }


def _header(state, run, frames, status, dataset, now):
    progress = run.get("progress") or {}
    config = run.get("config") or {}
    since = parse_time(state.status_since)
    text = {"running": "Running", "finished": "Finished", "stalled": "Stalled", "failed": "Failed",
            "stopped": "Stopped", "waiting": "Waiting for the trainer",
            "finishing": "Finishing: the live outputs are complete, the final cut is being made"}
    status_text = text.get(status, status.capitalize())
    if status == "stalled" and since:
        minutes = max(0, int((now - since).total_seconds() // 60))
        status_text = f"Stalled since {_when(since)} ({minutes} min without new data)"
    elif since and status in FINAL_STATUSES:
        status_text = f"{status_text} at {_when(since)}"
    ips = progress.get("images_per_second")
    step = progress.get("step", frame_train_step(frames[-1], run) if frames else None)
    return {
        "dataset": dataset,
        "parameters": f"{run['parameters']:,}" if isinstance(run.get("parameters"), int) else "unknown",
        "step": "none yet" if step is None else f"{int(step):,}",
        "total_steps": _total_steps(run, config),
        "images_per_second": f"{float(ips):,.0f}" if isinstance(ips, (int, float)) else "unknown",
        "frames": len(frames),
        "expected_frames": run.get("expected_frames"),
        "status": status,
        "status_text": status_text,
        "updated": _when(parse_time(state.updated)),
        "skipped": len(state.skipped),
        "checked": _checked_text(frames),
    }


def _checked_text(frames):
    """Whether the frames' data was checked against the trainer's digests, in words."""
    known = [f.get("checked") for f in frames if f.get("checked") is not None]
    if not known:
        return None
    n = sum(1 for c in known if c)
    if n == len(frames):
        return "every frame matches the trainer's digests"
    if n == 0:
        return "not checked: the store has no digests"
    return f"{n} of {len(frames)} frames match the trainer's digests"


def _total_steps(run, config):
    total = total_steps(run)
    return f"{total:,}" if total is not None else None


def gap_texts(skipped, n_frames: int) -> list[str | None]:
    """Per frame, the words for the EVAL steps skipped just before it (and, on the last, after it).

    The frame-by-frame view shows them at their place in the sequence.
    """
    before: dict[int, list] = {}
    for s in skipped:
        at = n_frames if s.position is None else min(max(int(s.position), 0), n_frames)
        before.setdefault(at, []).append(s)

    def words(group, where):
        steps = ", ".join(str(s.step) for s in group)
        reasons = "; ".join(f"step {s.step}: {redact_text(s.reason)}" for s in group)
        return f"EVAL step{'s' if len(group) > 1 else ''} {steps} skipped {where} ({reasons})"

    texts = []
    for i in range(n_frames):
        parts = [words(before[i], "before this frame")] if i in before else []
        if i == n_frames - 1 and n_frames in before:
            parts.append(words(before[n_frames], "after this frame"))
        texts.append(" · ".join(parts) or None)
    return texts


def _with_gaps(rows, skipped):
    """Table rows with one row per skipped step at its place."""
    out = list(rows)
    for s in sorted(skipped, key=lambda s: (s.position if s.position is not None else len(rows)), reverse=True):
        at = len(rows) if s.position is None else min(max(int(s.position), 0), len(rows))
        out.insert(at, {"gap": f"EVAL step {s.step} skipped: {redact_text(s.reason)}"})
    return out


def _frame_view(out, frame, i, n, step, loss_chart, label):
    png = str(frame.get("png") or layout.frame_stem(i) + ".png")
    eval_loss = frame.get("eval_loss")
    loss = f"; eval loss {eval_loss:.4g}" if isinstance(eval_loss, (int, float)) else ""
    return {
        "number": i + 1,
        "index": frame.get("index", i),
        "step": step,
        "label": label,  # the training step: "step 925 of 937"
        "png": png,
        "csv": _if_exists(out, frame.get("csv")),
        "npz": _if_exists(out, frame.get("npz")),
        "png_exists": (out / png).is_file(),
        "alt": f"Frame {i + 1} of {n} at {label}: the 2-D embedding of the probe set coloured by class, "
        f"an example of each class and its reconstruction{loss}",
        "cursor_x": loss_chart["x_of"](step),
        "explore": _if_exists(out, explore.frame_files(frame.get("index", i))["js"]),
    }


def _map_panels(out, state, frame_views):
    """[(title, map data per frame)] of the live frames and the final cut's, where the cut was made
    of these frames and its map data is whole; else None (the live map alone)."""
    made = state.final
    if made is None or made.status != "made" or made.frames != len(frame_views) or not frame_views:
        return None
    if not all(v["explore"] for v in frame_views):
        return None
    cut = [f"{layout.FINAL}/{v['explore']}" for v in frame_views]  # the cut's files keep the live names
    if not all((out / path).is_file() for path in cut):
        return None
    return [("live", [v["explore"] for v in frame_views]), ("final cut", cut)]


def _explore_view(out, palette, frame_views):
    """Whether the interactive view has data: the probes' file and at least one frame's."""
    if not (out / explore.PROBES_JS).is_file() or not any(v["explore"] for v in frame_views):
        return None
    return {"frames": sum(1 for v in frame_views if v["explore"]), "palette": palette}


def _loss_series(frames, run=None):
    # TRAIN points are kept at their global step: drawn at their training step, as the frames.
    batch_step = batch_steps(frames, run)
    train = {}
    for f in frames:
        for p in f.get("train_losses") or []:
            if len(p) > 1 and p[0] is not None:
                train[batch_step(p[0])] = p[1]
        if not f.get("train_losses") and f.get("train_loss") is not None:
            train.setdefault(frame_train_step(f, run), f["train_loss"])
    evals = [(frame_train_step(f, run), f.get("eval_loss")) for f in frames]
    return [
        {"key": "train", "label": "train loss (per saved batch)", "points": sorted(train.items()), "markers": False},
        {"key": "eval", "label": "eval loss (probe set)", "points": evals, "markers": True},
    ]


def _quality_series(frames, run=None):
    series = [
        ("knn_latent", "10-NN accuracy, latent space"),
        ("knn_2d", "10-NN accuracy, 2-D map"),
        ("trustworthiness", "trustworthiness of the 2-D map"),
        ("neighbourhood_preservation", "2-D neighbourhoods kept from the last frame"),
    ]
    # A trial without labels has no label accuracy: leave those lines out rather than draw them empty.
    labelled = not frames or any(f.get("knn_latent") is not None for f in frames)
    return [
        {"key": key, "label": label, "points": [(frame_train_step(f, run), f.get(key)) for f in frames], "markers": True}
        for key, label in series if labelled or not key.startswith("knn")
    ]


def _table_rows(frames, steps):
    keys = ("eval_loss", "knn_latent", "knn_2d", "trustworthiness", "embed_seconds")
    train = rules.frame_train_losses(frames)
    rows = []
    for i, f in enumerate(frames):
        cells = [_fmt(f.get(k)) for k in keys]
        rows.append({"number": i + 1, "step": steps[i], "train": _fmt(train[i]), "cells": cells})
    return rows


def _recon_view(out, step, class_names, dataset, label=None):
    if not (out / RECONSTRUCTION_PNG).is_file():
        return None
    names = ", ".join(class_names) if class_names else "each class"
    at = label or "the latest step"  # the training step of the latest frame: "step 400 of 400"
    return {
        "src": f"{RECONSTRUCTION_PNG}?v={step}",
        "alt": f"Reconstructions at {at}: top row one {dataset} probe image per class ({names}), "
        "bottom row the autoencoder's output for each",
        "step": at,
    }


def class_palette(class_names):
    """The legend's colours: the frames' own (CLASS_COLOURS, hex), so the two always match."""
    return [{"name": n, "colour": CLASS_COLOURS[i % len(CLASS_COLOURS)]} for i, n in enumerate(class_names or [])]


def _skipped_view(s):
    where = f"after frame {s.position}" if s.position else ("before the first frame" if s.position == 0 else None)
    return {"step": s.step, "global_step": s.global_step, "where": where, "reason": redact_text(s.reason)}


def _alert_view(a):
    # Training steps; an alert saved before records had them keeps its global step, said as such.
    trained = "train_step" in a
    step = a.get("train_step") if trained else a.get("step")
    last = a.get("last_train_step") if trained else a.get("last_step")
    rule = str(a.get("rule", "alert"))
    return {
        "title": str(a.get("title") or rules.RULE_TITLES.get(rule, rule)),
        "kind": "step" if trained else "global step",
        "step": f"{int(step):,}" if isinstance(step, (int, float)) else "unknown",
        "until": f"{int(last):,}" if isinstance(last, (int, float)) and last != step else None,
        "active": bool(a.get("active", True)),
        "message": str(a.get("message", "")),
    }


def _inventory_row(t):
    shape = t.get("shape")
    return {
        "name": str(t.get("name", "")),
        "shape": " × ".join(str(s) for s in shape) if isinstance(shape, (list, tuple)) else str(shape or "?"),
        "modes": ", ".join(str(m) for m in t.get("modes") or []),
        "steps": t.get("steps", ""),
    }


def _final_view(out, state):
    """The final cut's section: its outputs beside the live ones, or one line on where it stands."""
    made = state.final
    if made is None or made.status == "off":
        return None
    info_path = out / layout.FINAL / layout.FINAL_INFO
    if made.status != "made" or not info_path.is_file():
        line = {"making": "The final cut is being made: all frames re-embedded together; the live outputs "
                          "are complete meanwhile.",
                "skipped": made.error, "failed": made.error, "stopped": made.error}.get(made.status) or f"The final cut: {made.status}."
        return {"made": False, "line": redact_text(line) if line else line}
    info = json.loads(info_path.read_text())
    final = f"{layout.FINAL}/"
    rows = [("the time-lapse GIF", layout.GIF), ("the video (MP4)", layout.MP4),
            *((f"the paper figure ({name.rsplit('.', 1)[1].upper()})", name) for name in layout.FIGURES)]
    quality = info.get("quality") or {}
    live_q, final_q = quality.get("live") or {}, quality.get("final") or {}
    gif_width = state.gif.width if state.gif else None
    return {
        "made": True, "frames": info.get("frames"), "gif": final + layout.GIF, "width": gif_width,
        "knn_final": final_q.get("knn_2d"), "knn_live": live_q.get("knn_2d"),
        "trust_final": final_q.get("trustworthiness"), "trust_live": live_q.get("trustworthiness"),
        "rows": [{"what": what, "final": final + name if (out / layout.FINAL / name).is_file() else None,
                  "live": name if (out / name).is_file() else None} for what, name in rows],
        "explore": final + layout.EXPLORE + "/", "frames_dir": final + layout.FRAMES + "/",
    }


def _downloads(out, state, run):
    gif = state.gif.path if state.gif else layout.GIF
    files = [
        (gif, "the animated GIF"),
        *site_outputs.downloads(out, state),
        (METRICS_CSV, "losses and quality per frame (CSV)"),
        (RUN_JSON, "run metadata, secrets removed (JSON)"),
    ]
    return [
        {"href": rel, "label": label, "size": site_outputs.size_text((out / rel).stat().st_size)}
        for rel, label in files
        if (out / rel).is_file()
    ]


def _config_rows(config):
    if not isinstance(config, dict):
        return []
    return [
        {"key": str(k), "value": v if isinstance(v, str) else json.dumps(v, default=str)}
        for k, v in sorted(config.items(), key=lambda kv: str(kv[0]))
    ]


def _run_facts(state, run):
    versions = run.get("versions") or {}
    facts = [
        ("tensor store", redact_text(state.tensors) if state.tensors else None),
        ("data source", run.get("data_source")),
        ("probe set", f"{run['probe_size']:,} images" if isinstance(run.get("probe_size"), int) else None),
        ("started", _when(parse_time(run.get("started"))) if run.get("started") else None),
        ("finished", _when(parse_time(run.get("finished"))) if run.get("finished") else None),
        ("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or None),
        *role_rows(state.trial),
    ]
    return [{"key": k, "value": str(v)} for k, v in facts if v]


# -- small helpers --------------------------------------------------------------------------


def _metrics_csv(frames) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = ["eval_loss", "knn_latent", "knn_2d", "trustworthiness", "nonfinite", "embed_seconds",
            "neighbourhood_preservation"]
    w.writerow(["frame", "step", "global_step", "train_loss", *keys])
    for i, (f, train) in enumerate(zip(frames, rules.frame_train_losses(frames))):
        w.writerow([i, f.get("step"), f.get("global_step"), train, *[f.get(k) for k in keys]])
    return buf.getvalue()


def copy_assets(src: Path, dst: Path) -> dict:
    """Copy static files when their bytes changed; return a short content hash per file."""
    versions = {}
    for f in sorted(src.iterdir()):
        if f.is_file():
            data = f.read_bytes()
            target = dst / f.name
            if not target.is_file() or target.read_bytes() != data:
                atomic.write_bytes(target, data)
            versions[f.name] = hashlib.sha256(data).hexdigest()[:12]
    return versions


def write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic.write_text(path, text)


def script_json(obj) -> Markup:
    # Inline JSON must not close its <script>: <, >, & (and U+2028/9) as JSON unicode escapes.
    return Markup(explore.json_for_script(obj))


def _if_exists(out, rel):
    return str(rel) if rel and (out / str(rel)).is_file() else None


def _epoch(value) -> float | None:
    """Seconds since 1970 of an ISO time (for the page's clock), None if unknown."""
    t = epoch(value)
    return round(t, 3) if t is not None else None


def _when(t) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "unknown"


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
