"""Making one frame: a probe step and the embedding's memory of the last frame in, a record and a picture out.

:func:`make_frame` computes (embedding, quality numbers, the drawn picture) and writes nothing;
:func:`write_frame_files` writes the frame's own files. The loop in reporter/pipeline.py decides
when, and publishes the frame (GIF, state) after its files are on disk.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlapse import atomic
from reporter.state import FrameRecord, frame_paths
from reporter.store import ProbeStep

log = logging.getLogger("reporter")


@dataclass
class Frame:
    """One frame, made but not yet written: its record, its picture and its exact embedding."""

    record: FrameRecord
    picture: np.ndarray         # RGB (H, W, 3) uint8
    embedding: np.ndarray       # (N, 2)
    latents_finite: bool        # False: the embedding repeats the last one (NaN/Inf latents)
    class_names: list[str]


def resume_embedder(out: Path, frames: list[FrameRecord], seed: int, threads: int):
    """The embedding's memory of a report's recorded frames, as if it had never stopped."""
    from reporter.embed import Embedder

    return Embedder.resume([out / f.npz for f in frames], seed, threads)


def class_names_of(run_info: dict | None, labels: np.ndarray) -> list[str]:
    """The run's class names when they cover the labels, else the label numbers as names."""
    names = (run_info or {}).get("class_names")
    n = int(labels.max()) + 1 if len(labels) else 0
    if isinstance(names, list) and len(names) >= n:
        return [str(x) for x in names]
    return [str(i) for i in range(max(n, 1))]


def make_frame(probe: ProbeStep, embedder, *, index: int, run_info: dict | None) -> Frame:
    """Embed, measure and draw one EVAL step.

    Parameters
    ----------
    probe : ProbeStep
        The probe set as the step saved it.
    embedder : reporter.embed.Embedder
        The embedding's memory of the last frame; it remembers this one.
    index : int
        The frame's number in the report, from 0.
    run_info : dict or None
        The trainer's run metadata (class names, dataset name), if any.
    """
    from reporter.quality import knn_accuracy, trustworthiness
    from reporter.render import draw_frame
    from reporter.rules import dead_units
    from reporter.steps import total_steps, training_step

    started = time.perf_counter()
    layout = embedder.layout  # the last frame's, repeated if this one cannot be embedded
    embedding = embedder.embed(probe.latents)
    embed_seconds = time.perf_counter() - started
    latents_finite = embedding is not None
    if not latents_finite:
        log.warning("EVAL step %d: latents hold NaN/Inf; the frame repeats the last embedding, marked",
                    probe.step)
        embedding = layout if layout is not None else np.zeros((len(probe.latents), 2))
    class_names = class_names_of(run_info, probe.labels)
    eval_loss = float(np.mean(probe.losses)) if probe.losses is not None else None
    train_loss = float(np.mean([v for _, v in probe.train_losses])) if probe.train_losses else None
    train_step, total = training_step(probe.step, probe.global_step, run_info), total_steps(run_info)
    record = FrameRecord(
        index=index, step=probe.step, global_step=probe.global_step,
        train_step=train_step, total_steps=total,
        eval_loss=_finite_or_none(eval_loss), train_loss=_finite_or_none(train_loss),
        train_losses=[[g, _finite_or_none(v)] for g, v in probe.train_losses],
        nonfinite=bool(not latents_finite or (eval_loss is not None and not np.isfinite(eval_loss))),
        embed_seconds=round(embed_seconds, 4), **frame_paths(index),
    )
    if latents_finite:
        record.dead_units = dead_units(probe.latents)
        record.knn_latent = round(float(knn_accuracy(probe.latents, probe.labels)), 4)
        record.knn_2d = round(float(knn_accuracy(embedding, probe.labels)), 4)
        record.trustworthiness = round(float(trustworthiness(probe.latents, embedding)), 4)
    picture = draw_frame(embedding, probe.labels, class_names, probe.inputs, probe.reconstructions,
                         step=train_step, total_steps=total, eval_loss=eval_loss,
                         train_loss=train_loss, nonfinite=not latents_finite,
                         title=f"latentlapse · {(run_info or {}).get('dataset', 'trial')}")
    return Frame(record, picture, embedding, latents_finite, class_names)


def write_frame_files(out: Path, frame: Frame, probe: ProbeStep) -> None:
    """Write the frame's picture, coordinates, exact embedding and the reconstruction grid, atomically."""
    from reporter.explore import write_frame as write_explore_frame
    from reporter.reconstruction import save_reconstruction_grid
    from reporter.render import CLASS_COLOURS, save_png
    from reporter.site import RECONSTRUCTION_PNG

    record = frame.record
    save_png(out / record.png, frame.picture)
    atomic.write_text(out / record.csv, _csv(frame.embedding, probe.labels))
    atomic.write_bytes(out / record.npz, _npz(frame.embedding, probe.labels, probe, record.train_step))
    save_reconstruction_grid(out / RECONSTRUCTION_PNG, probe.inputs, probe.reconstructions,
                             probe.labels, frame.class_names, colours=CLASS_COLOURS)
    # The interactive view's data for this frame (reporter/explore.py).
    write_explore_frame(out, record.index, frame.embedding, probe.labels, frame.class_names, step=probe.step,
                        global_step=probe.global_step, latents=probe.latents, inputs=probe.inputs,
                        reconstructions=probe.reconstructions, losses=probe.losses)


def _csv(embedding: np.ndarray, labels: np.ndarray) -> str:
    buf = io.StringIO()
    buf.write("x,y,label\n")
    for (x, y), label in zip(embedding, labels):
        buf.write(f"{x:.6g},{y:.6g},{int(label)}\n")
    return buf.getvalue()


def _npz(embedding: np.ndarray, labels: np.ndarray, probe: ProbeStep, train_step: int) -> bytes:
    # step: the EVAL step (as before); global_step: smdebug's; train_step: train steps done.
    buf = io.BytesIO()
    np.savez(buf, embedding=embedding, labels=labels, step=np.int64(probe.step),
             global_step=np.int64(probe.global_step), train_step=np.int64(train_step),
             latents=probe.latents)
    return buf.getvalue()


def _finite_or_none(value):
    return None if value is None or not np.isfinite(value) else float(value)
