"""One training run, top to bottom: data, probe set, model, hook, the loop, the EVAL passes.

Importing this module imports MXNet: the CLI sets the thread count and MKLDNN switch first.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from latentlapse import atomic
from latentlapse.contract import DIGEST_DIR, RUN_ENTRIES, RUN_FILE, RunInfo
from latentlapse.s3 import is_s3
from trainer import TrainerError, __version__, data
from trainer.config import TrainerConfig
from trainer.digests import write_step_digests
from trainer.hook import create_hook
from trainer.model import ConvolutionalAutoencoder, parameter_count

log = logging.getLogger("trainer")

# The probe set is the same images in every run of a dataset, whatever --seed is, so runs compare.
PROBE_SEED = 20200601


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# The tensor store


def prepare_store(out: str, overwrite: bool) -> None:
    """Refuse a store that already holds a run (unless ``overwrite``); make sure it can be written."""
    if is_s3(out):
        from trainer import s3

        s3.preflight(out)
        if s3.prefix_holds_run(out):
            if not overwrite:
                raise TrainerError(f"{out} already holds a run: choose a new prefix, "
                                   "or pass --overwrite to replace it")
            s3.delete_run(out)
        return
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise TrainerError(f"--out {out} is a file: choose a folder")
    if folder.is_dir():
        entries = sorted(p.name for p in folder.iterdir())
        run_entries = [e for e in entries if e in RUN_ENTRIES]
        others = [e for e in entries if e not in RUN_ENTRIES]
        if run_entries and not overwrite:
            raise TrainerError(f"{out} already holds a run: choose a new folder, "
                               "or pass --overwrite to replace it")
        if others:
            raise TrainerError(f"{out} holds files that are not a tensor store ({', '.join(others[:3])}): "
                               "choose an empty or new folder")
        for name in run_entries:
            path = folder / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-")
        probe.close()
    except OSError as exc:
        raise TrainerError(f"cannot write to {out} ({exc.strerror}): choose a folder you can write") from None


def write_run_file(out: str, info: RunInfo) -> None:
    """Write the run metadata beside the tensors, atomically (readers poll it)."""
    write_beside(out, RUN_FILE, info.to_json())


def write_beside(out: str, relative: str, info: dict) -> None:
    """Write JSON to ``relative`` inside the store (a folder or ``s3://``), atomically."""
    if is_s3(out):
        from trainer import s3

        s3.write_json(out.rstrip("/") + "/" + relative, info)
        return
    atomic.write_json(Path(out) / relative, info)


# ---------------------------------------------------------------------------------------------
# Data


def probe_quota(class_counts, size: int) -> np.ndarray:
    """Probe images per class: ``size`` split equally, or as equally as the test set allows.

    An equal split needs at most the smallest class's count per class (MNIST's test set has 892
    fives, so up to 8,920 images). Beyond that every class gets the same number, except those
    with fewer test images, which give all of theirs; the rest is shared out one by one in class
    order. The whole test set is the largest probe set.
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    if size <= counts.min() * len(counts):
        return np.full(len(counts), size // len(counts), dtype=np.int64)
    # The largest level q with sum(min(counts, q)) <= size, found by trying each class's count.
    level = 0
    for q in np.unique(counts):
        if np.minimum(counts, q).sum() <= size:
            level = int(q)
    below = (size - np.minimum(counts, level).sum()) // max(1, int((counts > level).sum()))
    quota = np.minimum(counts, level + below)
    for c in np.flatnonzero(counts > quota)[: size - quota.sum()]:
        quota[c] += 1
    return quota


def choose_probe_set(labels: np.ndarray, size: int, n_classes: int) -> np.ndarray:
    """Indices of the probe images (see :func:`probe_quota`), ordered by class, the same every time."""
    quota = probe_quota(np.bincount(labels, minlength=n_classes), size)
    rng = np.random.RandomState(PROBE_SEED)
    picked = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        picked.append(np.sort(rng.choice(members, quota[c], replace=False)))
    return np.concatenate(picked)


def check_probe_size(size: int, dataset: data.Dataset) -> None:
    n_classes = len(dataset.class_names)
    smallest = int(np.bincount(dataset.test_labels, minlength=n_classes).min())
    total = len(dataset.test_labels)
    if size > total:
        raise TrainerError(f"--probe-size {size} is larger than the test set ({total} images): "
                           f"choose at most {total}")
    if size <= smallest * n_classes and size % n_classes:
        raise TrainerError(f"--probe-size {size} is not a multiple of the {n_classes} classes: "
                           f"use e.g. {max(n_classes, size - size % n_classes)} (equal classes up to "
                           f"{smallest * n_classes}; beyond that as equal as the test set allows)")


def to_batch(images: np.ndarray) -> mx.nd.NDArray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return mx.nd.array(images[:, None, :, :].astype(np.float32) / 255.0)


# ---------------------------------------------------------------------------------------------
# The run


def adam_settings(lr: float, warmup_steps: int) -> dict:
    """Adam's options for gluon.Trainer: ``lr``, reached linearly over ``warmup_steps`` updates.

    Full-size first steps can push every pixel of the output sigmoid into saturation (an all-black
    image, where its gradient vanishes) before the decoder has learnt anything; ramping the
    learning rate up avoids that.
    """
    settings = {"learning_rate": lr}
    if warmup_steps > 0:
        # factor 1: constant after the warm-up (a step must be given; it never comes into play).
        settings["lr_scheduler"] = mx.lr_scheduler.FactorScheduler(
            step=2**31 - 1, factor=1.0, base_lr=lr, warmup_steps=warmup_steps, warmup_begin_lr=0.0)
    return settings


def run(config: TrainerConfig) -> RunInfo:
    """Train, saving tensors through the hook; return the final run metadata."""
    dataset = data.load(config.dataset, data_dir=config.data_dir, cache_dir=config.cache_dir,
                        mirrors=[config.mirror] if config.mirror else None)
    check_probe_size(config.probe_size, dataset)
    n_train = len(dataset.train_labels)
    batches_per_epoch = n_train // config.batch_size
    if batches_per_epoch == 0:
        raise TrainerError(f"--batch-size {config.batch_size} is larger than the {n_train} training images")
    steps = config.steps if config.steps is not None else max(1, int(round(config.epochs * batches_per_epoch)))
    eval_steps = sorted({0, steps, *range(config.eval_every, steps, config.eval_every)})

    prepare_store(config.out, config.overwrite)

    mx.random.seed(config.seed)
    rng = np.random.RandomState(config.seed)
    probe_index = choose_probe_set(dataset.test_labels, config.probe_size, len(dataset.class_names))
    probe_x = to_batch(dataset.test_images[probe_index])
    probe_y = mx.nd.array(dataset.test_labels[probe_index].astype(np.float32))

    net = ConvolutionalAutoencoder()
    net.initialize(mx.init.Xavier())
    net.hybridize_leaves()
    last_kernel = net.choose_last_kernel()
    log.info("last layer: %s kernel", last_kernel)
    loss_fn = gluon.loss.L2Loss()
    optimizer = gluon.Trainer(net.collect_params(), "adam", adam_settings(config.lr, config.warmup_steps))

    hook = create_hook(config.out, config.save_interval)
    hook.register_block(net)
    hook.register_block(loss_fn)
    from smdebug.mxnet import modes

    info = RunInfo(
        dataset=dataset.name,
        class_names=list(dataset.class_names),
        probe_size=config.probe_size,
        probe_indices_sha=_digest(probe_index),
        parameters=None,  # known once the first forward call has shaped the layers
        config={k: v for k, v in config.as_dict().items() if k != "progress"},
        steps=steps,
        eval_steps=eval_steps,
        expected_frames=len(eval_steps),
        versions={"python": platform.python_version(), "mxnet": mx.__version__,
                  "smdebug": _version("smdebug"), "latentlapse": __version__},
        data_source=dataset.source,
        digests=DIGEST_DIR,  # one file of tensor digests per EVAL step (trainer/digests.py)
        last_layer_kernel=last_kernel,
        started=_now(),
        progress={"step": 0, "images_per_second": None, "updated": _now()},
        finished=None,
    )

    def evaluate(step: int) -> float:
        hook.set_mode(modes.EVAL)
        recon = net(probe_x, probe_y)  # ONE forward call: one EVAL step holds the whole probe set
        loss = float(loss_fn(recon, probe_x).mean().asscalar())
        # What the hook wrote at this step, as digests beside the store: the reporter checks them.
        write_step_digests(hook, lambda relative, digests: write_beside(config.out, relative, digests))
        hook.set_mode(modes.TRAIN)
        return loss

    progress = Progress(steps, config.batch_size, enabled=config.progress)
    order = rng.permutation(n_train)
    position = 0
    eval_loss = evaluate(0)
    if info.parameters is None:
        info.parameters = parameter_count(net)
    write_run_file(config.out, info)
    progress.eval(0, eval_loss)
    for step in range(1, steps + 1):
        if position + config.batch_size > n_train:
            order, position = rng.permutation(n_train), 0
        index = np.sort(order[position:position + config.batch_size])
        position += config.batch_size
        x = to_batch(dataset.train_images[index])
        y = mx.nd.array(dataset.train_labels[index].astype(np.float32))
        with autograd.record():
            loss = loss_fn(net(x, y), x)
        loss.backward()
        optimizer.step(config.batch_size)
        train_loss = float(loss.mean().asscalar())
        if not np.isfinite(train_loss):
            log.warning("train loss is %s at step %d", train_loss, step)
        progress.train(step, train_loss)
        if step in eval_steps:
            eval_loss = evaluate(step)
            progress.eval(step, eval_loss)
            # JSON has no NaN: a diverged run's loss is written as null.
            info.progress = {"step": step, "images_per_second": progress.images_per_second(),
                                "eval_loss": eval_loss if np.isfinite(eval_loss) else None,
                                "updated": _now()}
            write_run_file(config.out, info)
    # close() writes the last step and the end marker; without it readers wait forever (S3 above all).
    hook.close()
    # smdebug also registered close() for interpreter exit; a second run then rewrites the end marker
    # while the exit path can no longer schedule uploads (an S3 traceback). Once is enough.
    import atexit

    atexit.unregister(hook._cleanup)
    info.finished = _now()
    write_run_file(config.out, info)
    progress.done()
    save_model(net)
    return info


def save_model(net) -> None:
    """Inside SageMaker, keep the final parameters where the job collects its model."""
    model_dir = os.environ.get("SM_MODEL_DIR")
    if model_dir:
        Path(model_dir).mkdir(parents=True, exist_ok=True)
        net.save_parameters(str(Path(model_dir) / "autoencoder.params"))


def _digest(array: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.int64).tobytes()).hexdigest()[:16]


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


class Progress:
    """A one-line progress report: step, loss, images/s (a bar on a terminal, a line per EVAL otherwise)."""

    def __init__(self, steps: int, batch_size: int, enabled: bool = True, stream=sys.stderr):
        self.steps, self.batch_size, self.enabled, self.stream = steps, batch_size, enabled, stream
        self.tty = enabled and stream.isatty()
        self.start = time.perf_counter()
        self.done_steps = 0
        self.loss = float("nan")
        self.eval_loss = float("nan")

    def images_per_second(self) -> float | None:
        elapsed = time.perf_counter() - self.start
        return round(self.done_steps * self.batch_size / elapsed, 1) if self.done_steps else None

    def _line(self, step: int) -> str:
        width = 24
        filled = int(width * step / self.steps)
        rate = self.images_per_second()
        return (f"[{'#' * filled}{'.' * (width - filled)}] step {step}/{self.steps} "
                f"loss {self.loss:.4f} eval {self.eval_loss:.4f} "
                f"{rate if rate is not None else '-'} img/s")

    def train(self, step: int, loss: float) -> None:
        self.done_steps, self.loss = step, loss
        if self.tty and (step % 5 == 0 or step == self.steps):
            self.stream.write("\r" + self._line(step))
            self.stream.flush()

    def eval(self, step: int, loss: float) -> None:
        self.eval_loss = loss
        if self.enabled and not self.tty:
            self.stream.write(self._line(step) + "\n")
            self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
