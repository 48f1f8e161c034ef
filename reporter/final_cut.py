"""The final cut of a finished report: every frame re-embedded together, and what people take away rebuilt.

When a run has ended the reporter (reporter/pipeline.py) and ``python -m reporter cut`` call the
one function :func:`make_final_cut`. It re-embeds the frames with dynamic t-SNE
(:mod:`reporter.embedding.final_cut`), starting from the live layouts; redraws each frame with the
live frames' own drawing (:func:`reporter.frame.draw_record`, the probe images read from the
tensor store again); and writes, in ``final/``, the frames, the GIF, the MP4, the paper figure,
the interactive map's data and ``cut.json``. The live outputs are not touched: they stay the
record of what was shown during training, and the site links both.

Kill-safe: everything is built in the hidden ``.final.partial/`` (removed first if a killed cut
left one) and renamed to ``final/`` when complete; an old ``final/`` is moved aside to
``.final.old/`` first, then removed. A kill therefore leaves either the old cut or the new one,
never half of one, and a rerun makes the same bytes. Nothing in ``final/`` depends on the clock.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from latentlapse import atomic
from latentlapse import report_layout as layout
from reporter import ReporterError, Stopped
from reporter.config import from_args
from reporter.embedding.affinity import PERPLEXITY, neighbour_count
from reporter.embedding.embed import finite_rows
from reporter.embedding.final_cut import CutSettings, final_cut
from reporter.embedding.neighbours import nearest_neighbours, plane_neighbours
from reporter.frame import Frame, class_names_of, draw_record, measure_layout, write_frame_files
from reporter.outputs.figure import FIGURE_FILES, figure_steps, write_figure
from reporter.outputs.gif import GifWriter
from reporter.outputs.video import VideoWriter
from reporter.state import FINISHED, FINISHING, HEARTBEAT_SECONDS, FinalCutInfo, ReportState

log = logging.getLogger("reporter")

ON, OFF = "on", "off"
# state.final.status
MAKING, MADE, SKIPPED, FAILED, CUT_STOPPED = "making", "made", "skipped", "failed", "stopped"
EXIT_CUT_FAILED = 3


def _load_frames(out: Path, state: ReportState):
    latents, live = [], []
    for record in state.frames:
        with np.load(out / record.npz) as saved:
            if "latents" not in saved.files:
                raise ReporterError(f"{out / record.npz} holds no latents (a report made before they were "
                                    "kept): the final cut needs them; make the report again")
            latents.append(np.asarray(saved["latents"], dtype=np.float64))
            live.append(np.asarray(saved["embedding"], dtype=np.float64))
    return latents, live


def _measured(record, probe, embedding, near, before):
    """The record of a cut frame: the live one with the 2-D figures measured on the cut layout."""
    record = replace(record)
    if near is not None:
        measure_layout(record, probe.latents, probe.labels, embedding, near=near,
                       near_2d=plane_neighbours(embedding, 10), previous=before)
    return record


def make_final_cut(out, state: ReportState, store, run_info, config, *, heartbeat=None) -> dict:
    """Make ``out/final/`` from the finished report in ``out``; return what ``cut.json`` says.

    Parameters
    ----------
    out : path
        The report folder, its live outputs complete.
    state : ReportState
        Its state (the frames' records); not changed here.
    store : reporter.trial.store.TensorStore
        The tensor store, open and its names resolved: the probe images are read again from it.
    run_info : latentlapse.contract.RunInfo or None
    config : reporter.config.ReporterConfig
        The GIF's delay and budget, the MP4's threads, the figure's frames and width, the seed.
    heartbeat : callable, optional
        Called between windows of the cut and between frames (the caller saves its state now and
        then, so a long cut does not look like a dead reporter).

    Raises
    ------
    Exception
        Anything: the caller keeps the live report and records the line.
    """
    beat = heartbeat or (lambda: None)
    out = Path(out)
    settings = CutSettings()
    partial, final, old = out / layout.FINAL_PARTIAL, out / layout.FINAL, out / layout.FINAL_OLD
    shutil.rmtree(partial, ignore_errors=True)  # a killed cut's leftovers: start again
    shutil.rmtree(old, ignore_errors=True)
    latents, live = _load_frames(out, state)
    cut = final_cut(latents, live, settings, on_window=lambda done, total: beat())
    (partial / layout.FRAMES).mkdir(parents=True)

    gif = GifWriter(partial / layout.GIF, delay_ms=config.gif_delay_ms,
                    budget_bytes=int(config.gif_budget_mib * 1024 * 1024),
                    expected_frames=run_info.expected_frames if run_info else None)
    records, before, last_global = [], None, None
    for record, x, embedding in zip(state.frames, latents, cut):
        probe = store.read_probe_step(record.step, since_global_step=last_global)
        probe = replace(probe, latents=x)  # the latents the live frame was embedded from, exactly
        last_global = record.global_step
        finite = bool(finite_rows(x).all())
        # One latent search a frame, for its trustworthiness and the map's pinned points.
        near = nearest_neighbours(np.ascontiguousarray(x), neighbour_count(len(x), PERPLEXITY))[0] if finite else None
        cut_record = _measured(record, probe, embedding, near, before)
        picture, pictures = draw_record(cut_record, embedding, probe, run_info=run_info,
                                        image_shape=config.image_shape, nonfinite=not finite)
        write_frame_files(partial, Frame(cut_record, picture, embedding, finite,
                                         class_names_of(run_info, probe.labels), pictures, near), probe)
        gif.append(picture)
        records.append(cut_record)
        before = embedding
        beat()

    video = VideoWriter(partial, fps=1000.0 / config.gif_delay_ms, every=config.mp4_every, threads=config.threads,
                        expected_frames=run_info.expected_frames if run_info else None)
    video.update([r.png for r in records], final=True)
    video.discard_segments()
    dicts = [r.to_json() for r in records]
    # What the live frames' records hold of the clock (when each was published, how long it took)
    # is left out of cut.json: the cut of a store is the same bytes whenever it is made.
    timeless = [{k: v for k, v in d.items() if k not in ("published", "embed_seconds")} for d in dicts]
    live_figure = state.figure
    steps = (live_figure.steps if live_figure and live_figure.steps and not live_figure.error
             else figure_steps(partial, dicts, run_info, k=config.figure_frames))
    shown = write_figure(partial, frames=dicts, run=run_info, steps=steps, width=config.figure_width)
    beat()

    info = {
        "method": "dynamic t-SNE (Rauber et al. 2016) over all frames: each a t-SNE from scratch grown from its "
                  "live layout, under a pseudo-Huber spring between neighbouring frames",
        "settings": asdict(settings),
        "frames": len(records),
        "steps": [r.step for r in records],
        "gif": {"path": layout.GIF, "frames": gif.frames, "kept": gif.kept, "bytes": gif.bytes},
        "video": {"path": layout.MP4, "frames": video.frames, "bytes": video.bytes},
        "figure": {"path": FIGURE_FILES[0], "steps": shown},
        "quality": {"live": _medians(state.frames), "final": _medians(records)},
        "frame_records": timeless,
    }
    atomic.write_json(partial / layout.FINAL_INFO, info)
    # The swap: the old cut aside, the new one in, the old one gone. A kill between the two
    # renames leaves no final/ (the live outputs are whole), and the next cut makes it again.
    if final.exists():
        final.rename(old)
    partial.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return info


def _medians(records) -> dict:
    """Median 10-NN accuracy in 2-D and trustworthiness over the frames that have them."""
    def median(name):
        values = [getattr(r, name) for r in records if getattr(r, name) is not None]
        return round(float(np.median(values)), 4) if values else None

    return {"knn_2d": median("knn_2d"), "trustworthiness": median("trustworthiness")}


def options_of(config) -> dict:
    """What state.final records of the options the cut was made with."""
    return {"final_cut": config.final_cut, "seed": config.seed, **asdict(CutSettings())}


def plan_final_cut(report, again: bool = False) -> bool:
    """Whether a finished :class:`reporter.pipeline.Report` gets its final cut; ``state.final`` says so.

    A rerun of a finished report keeps the cut it has, unless ``again`` (the ``cut`` subcommand).
    """
    state, config = report.state, report.config
    if config.final_cut == OFF:
        state.final = FinalCutInfo(status=OFF, options=options_of(config))
        return False
    if report.store.frames.independent or len(state.frames) < 2:
        why = ("the frames are independent batches (no point is in two frames)" if state.frames
               else "fewer than two frames")
        state.final = FinalCutInfo(status=SKIPPED, options=options_of(config), error=f"no final cut: {why}")
        return False
    made = state.final
    if (not again and made is not None and made.status == MADE and made.options == options_of(config)
            and made.frames == len(state.frames) and (report.out / layout.FINAL / layout.FINAL_INFO).is_file()):
        return False  # a rerun of a finished report: its cut is there already
    state.final = FinalCutInfo(status=MAKING, options=options_of(config), frames=len(state.frames))
    return True


def run_final_cut(report) -> int | None:
    """Make the final cut of a report whose live outputs are complete, its status "finishing" meanwhile
    and "finished" afterwards (then saved by the caller).

    Any failure keeps the finished live report: ``state.final`` records the line, and stderr has it.
    So does a stop signal (``docker compose down``): the cut is abandoned, its partial folder
    removed, and the number of the signal returned (None otherwise); the next run makes the cut.
    """
    state, config = report.state, report.config
    if report.state.status != FINISHING:
        report.set_status(FINISHING)
        report.save()

    def heartbeat():
        if time.monotonic() - report.saved_at >= HEARTBEAT_SECONDS:
            report.save()  # "finishing", with a fresh "updated": alive (SILENT_AFTER_SECONDS)

    started, stopped, line = time.perf_counter(), None, None
    report.cutting = True  # a stop signal now raises Stopped here (reporter/pipeline.py)
    try:
        try:
            make_final_cut(report.out, state, report.store, report.run_info, config, heartbeat=heartbeat)
        finally:
            report.cutting = False  # before the clean-up below: a second signal must not cut it short
    except Stopped as stop:
        stopped, status = stop.signum, CUT_STOPPED
        line = (f"the final cut was stopped by {stop} before it was complete, the live outputs are kept: "
                "run the reporter on this store again, or `latentlapse cut --tensors STORE --out SITE`, to make it")
    except Exception as exc:  # noqa: BLE001 - the live report is finished and whole: keep it
        status, line = FAILED, f"the final cut failed, the live outputs are kept: {_error_line(exc)}"
        log.debug("final cut", exc_info=exc)
    else:
        log.info("final cut: %d frames in %.1f s, in %s", len(state.frames), time.perf_counter() - started,
                 report.out / layout.FINAL)
        state.final = FinalCutInfo(status=MADE, options=options_of(config), frames=len(state.frames))
    if line is not None:
        print(f"reporter: {line}", file=sys.stderr, flush=True)
        shutil.rmtree(report.out / layout.FINAL_PARTIAL, ignore_errors=True)
        state.final = FinalCutInfo(status=status, options=options_of(config), error=line, frames=len(state.frames))
    report.set_status(FINISHED)
    return stopped


def _error_line(exc: Exception) -> str:
    if isinstance(exc, ReporterError):
        return " ".join(str(exc).split())
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def cut_report(config) -> int:
    """``python -m reporter cut``: the final cut of an existing finished report; the exit code."""
    from reporter.pipeline import Report
    report = Report(config)
    if report.state.status not in (FINISHED, FINISHING):
        raise ReporterError(f"{config.out} is {report.state.status}, not finished: the final cut is made "
                            "from a finished report (run the reporter until training ends)")
    report.store.open(timeout=0)
    if not report.store.resolve_names():
        raise ReporterError(f"{config.tensors}: the tensor names cannot be resolved; check the --*-regex options")
    report.run_info = report.store.run_info()
    report._ending = True  # noqa: SLF001 - a finished report keeps no reserve of space
    config.final_cut = ON
    if plan_final_cut(report, again=True):
        run_final_cut(report)
    report.save()
    report.reserve.release()
    final = report.state.final
    if final.status == SKIPPED:
        raise ReporterError(f"{config.out}: {final.error}")
    return 0 if final.status == MADE else EXIT_CUT_FAILED


def main(argv: list[str]) -> int:
    """``python -m reporter cut --tensors STORE --out SITE [the report's options]``."""
    return cut_report(from_args(argv))
