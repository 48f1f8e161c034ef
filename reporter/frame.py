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
from latentlapse.contract import RunInfo
from latentlapse.report_layout import RECONSTRUCTION as RECONSTRUCTION_PNG
from reporter.embedding.embed import Embedder
from reporter.embedding.quality import FRAME_SAMPLE, knn_accuracy, neighbourhood_preservation, trustworthiness
from reporter.pictures.reconstruction import save_reconstruction_grid
from reporter.pictures.colours import CLASS_COLOURS
from reporter.pictures.png import save_png
from reporter.pictures.render import draw_frame
from reporter.rules import dead_units
from reporter.site.explore import write_frame as write_explore_frame
from reporter.state import FrameRecord, frame_paths
from reporter.trial.images import probe_pictures
from reporter.trial.labels import class_names
from reporter.trial.steps import step_text, total_steps, training_step
from reporter.trial.store import ProbeStep

log = logging.getLogger("reporter")


@dataclass
class Frame:
    """One frame, made but not yet written: its record, its picture and its exact embedding."""

    record: FrameRecord
    picture: np.ndarray         # RGB (H, W, 3) uint8
    embedding: np.ndarray       # (N, 2)
    latents_finite: bool        # False: the embedding repeats the last one (NaN/Inf latents)
    class_names: list[str]
    pictures: tuple = (None, None)  # reporter.trial.images.ImageView of the inputs and reconstructions, or None
    neighbours: np.ndarray | None = None  # the latents' nearest neighbours (the embedder's), finite frames only


def resume_embedder(out: Path, frames: list[FrameRecord], seed: int):
    """The embedding's memory of a report's recorded frames, as if it had never stopped."""
    return Embedder.resume([out / f.npz for f in frames], seed)


def class_names_of(run_info: RunInfo | None, labels: np.ndarray | None) -> list[str]:
    """The run's class names when they cover the labels, else the label numbers as names; [] without labels."""
    if labels is None:
        return []
    return class_names(int(labels.max()) + 1 if len(labels) else 0, (run_info.class_names or None) if run_info else None)


def make_frame(probe: ProbeStep, embedder, *, index: int, run_info: RunInfo | None,
               image_shape: tuple | None = None, independent: bool = False) -> Frame:
    """Embed, measure and draw one step.

    Parameters
    ----------
    probe : ProbeStep
        The probe set as the step saved it.
    embedder : reporter.embedding.embed.Embedder
        The embedding's memory of the last frame; it remembers this one.
    index : int
        The frame's number in the report, from 0.
    run_info : RunInfo or None
        The trainer's run metadata (class names, dataset name), if any.
    image_shape : tuple, optional
        ``--image-shape`` as :func:`reporter.trial.images.parse_image_shape` read it.
    independent : bool
        The points are not the last frame's (TRAIN batches): embed from scratch, not from its layout.
    """
    if independent:
        # Another set of points: the last layout and latents say nothing about these.
        embedder.layout = embedder.latents = embedder.neighbours = None
    started = time.perf_counter()
    layout = embedder.layout  # the last frame's, repeated if this one cannot be embedded
    layout_2d = embedder.layout_neighbours()  # its neighbours in the plane (the embedder needs them too)
    embedding = embedder.embed(probe.latents)
    embed_seconds = time.perf_counter() - started
    latents_finite = embedding is not None
    if not latents_finite:
        log.warning("step %d: latents hold NaN/Inf; the frame repeats the last embedding, marked", probe.step)
        embedding = layout if layout is not None else np.zeros((len(probe.latents), 2))
    class_names = class_names_of(run_info, probe.labels)
    eval_loss = float(np.mean(probe.losses)) if probe.losses is not None else None
    train_loss = float(np.mean([v for _, v in probe.train_losses])) if probe.train_losses else None
    train_step, total = training_step(probe.step, probe.global_step, run_info), total_steps(run_info)
    if independent:  # TRAIN mode: the frame's own step is the training step
        train_step = probe.step
    record = FrameRecord(
        index=index, step=probe.step, global_step=probe.global_step,
        train_step=train_step, total_steps=total,
        eval_loss=_finite_or_none(eval_loss), train_loss=_finite_or_none(train_loss),
        train_losses=[[g, _finite_or_none(v)] for g, v in probe.train_losses],
        nonfinite=bool(not latents_finite or (eval_loss is not None and not np.isfinite(eval_loss))),
        embed_seconds=round(embed_seconds, 4), checked=probe.checked, **frame_paths(index),
    )
    if latents_finite:
        record.dead_units = dead_units(probe.latents)
        # The embedder has just found the latents' nearest neighbours: the figures reuse them.
        near = embedder.neighbours
        near_2d = embedder.layout_neighbours()  # once for the three figures in the plane and the next frame
        if probe.labels is not None:
            record.knn_latent = round(float(knn_accuracy(probe.latents, probe.labels, neighbours=near)), 4)
        measure_layout(record, probe.latents, probe.labels, embedding, near=near, near_2d=near_2d,
                       previous=None if independent else layout, previous_2d=layout_2d)
    picture, pictures = draw_record(record, embedding, probe, run_info=run_info, image_shape=image_shape,
                                    nonfinite=not latents_finite)
    return Frame(record, picture, embedding, latents_finite, class_names, pictures,
                 embedder.neighbours if latents_finite else None)


def draw_record(record: FrameRecord, embedding: np.ndarray, probe: ProbeStep, *, run_info: RunInfo | None,
                image_shape: tuple | None = None, nonfinite: bool = False):
    """Draw a frame's picture from its record and an embedding of its probe set.

    The live frames and the final cut (reporter/final_cut.py) draw with this one function, so a
    cut frame differs from its live one only in where the points are.

    Returns
    -------
    (np.ndarray, tuple)
        The RGB picture (H, W, 3) uint8, and the probe step's (inputs, reconstructions) views
        (:func:`reporter.trial.images.probe_pictures`).
    """
    pictures = probe_pictures(probe.inputs, probe.reconstructions, len(probe.latents), image_shape)
    eval_loss = float(np.mean(probe.losses)) if probe.losses is not None else None
    train_loss = float(np.mean([v for _, v in probe.train_losses])) if probe.train_losses else None
    picture = draw_frame(embedding, probe.labels, class_names_of(run_info, probe.labels), pictures[0], pictures[1],
                         step=record.train_step, total_steps=record.total_steps, eval_loss=eval_loss,
                         train_loss=train_loss, nonfinite=nonfinite,
                         title=f"latentlapse · {(run_info.dataset if run_info and run_info.dataset else 'trial')}")
    return picture, pictures


def measure_layout(record: FrameRecord, latents, labels, embedding, *, near, near_2d,
                   previous=None, previous_2d=None) -> None:
    """The figures of a frame's 2-D layout, into ``record``: 10-NN in 2-D, trustworthiness, neighbourhood preservation.

    ``near`` and ``near_2d`` are the latents' and the layout's nearest neighbours (the searches
    are made once a frame); ``previous`` is the last frame's layout, with its own neighbours.
    The live frames and the final cut measure their layouts here, the same way.
    """
    if labels is not None:
        record.knn_2d = round(float(knn_accuracy(embedding, labels, neighbours=near_2d)), 4)
    record.trustworthiness = round(float(trustworthiness(latents, embedding, latent_neighbours=near,
                                                         sample=FRAME_SAMPLE, embedded_neighbours=near_2d)), 4)
    if previous is not None and np.isfinite(previous).all():
        record.neighbourhood_preservation = round(float(
            neighbourhood_preservation(previous, embedding, current_neighbours=near_2d,
                                       previous_neighbours=previous_2d)), 4)


def write_frame_files(out: Path, frame: Frame, probe: ProbeStep) -> None:
    """Write the frame's picture, coordinates, exact embedding and the reconstruction grid, atomically.

    Without labels the CSV's label column is empty and the npz holds -1 for every point; the
    grid is written only when both inputs and reconstructions are shown.
    """
    record = frame.record
    labels = probe.labels
    save_png(out / record.png, frame.picture)
    atomic.write_text(out / record.csv, _csv(frame.embedding, labels))
    saved_labels = labels if labels is not None else np.full(len(frame.embedding), -1, dtype=np.int64)
    atomic.write_bytes(out / record.npz, _npz(frame.embedding, saved_labels, probe, record.train_step))
    inputs, recon = frame.pictures
    if inputs is not None and inputs.shown and recon is not None and recon.shown:
        save_reconstruction_grid(out / RECONSTRUCTION_PNG, inputs, recon, labels, frame.class_names,
                                 colours=CLASS_COLOURS)
    # The interactive view's data for this frame (reporter/site/explore.py): the frame's own views of
    # the pictures (their scale measured once), only when they are images; a trial without labels
    # is one class.
    views = [v if v is not None and v.shown and v.kind == "image" else None for v in (inputs, recon)]
    views = (views[0], views[1] if views[0] is not None else None)
    write_explore_frame(out, record.index, frame.embedding,
                        labels if labels is not None else np.zeros(len(frame.embedding), dtype=np.int64),
                        frame.class_names if labels is not None else ["unlabelled"], step=probe.step,
                        global_step=probe.global_step, train_step=record.train_step,
                        label=step_text(record.train_step, record.total_steps) if record.train_step is not None else None,
                        latents=probe.latents, inputs=probe.inputs, losses=probe.losses,
                        neighbours=frame.neighbours, views=views)


def _csv(embedding: np.ndarray, labels: np.ndarray | None) -> str:
    # Python floats and ints (tolist), not NumPy scalars: the same text, half the time at 10,000 rows.
    points = embedding.tolist()
    if labels is None:
        rows = [f"{x:.6g},{y:.6g}," for x, y in points]
    else:
        rows = [f"{x:.6g},{y:.6g},{int(label)}" for (x, y), label in zip(points, np.asarray(labels).tolist())]
    return "x,y,label\n" + "".join(row + "\n" for row in rows)


def _npz(embedding: np.ndarray, labels: np.ndarray, probe: ProbeStep, train_step: int) -> bytes:
    # step: the EVAL step (as before); global_step: smdebug's; train_step: train steps done.
    buf = io.BytesIO()
    np.savez(buf, embedding=embedding, labels=labels, step=np.int64(probe.step),
             global_step=np.int64(probe.global_step), train_step=np.int64(train_step),
             latents=probe.latents)
    return buf.getvalue()


def _finite_or_none(value):
    return None if value is None or not np.isfinite(value) else float(value)
