"""Real smdebug trials from small MXNet autoencoders that are not ours: other names, shapes and roles.

Each is a real training run (MXNet 1.9.1, smdebug 1.0.34's MXNet hook, real data) small enough
to make at test time: ~100 probe points, 3 EVAL passes, 20 TRAIN steps, a few seconds each.

    python tests/trials/mxnet_trials.py KIND OUT [CACHE_DIR]

KIND is one of:

``mlp-flat``
    An MLP autoencoder on flat vectors (N, 64): real MNIST shrunk to 8 x 8 and standardised
    (mean 0, std 1), blocks named ``flatmlp_...``, labels as the network's second input.
``rgb-conv``
    A convolutional autoencoder on coloured MNIST digits, channels last (N, 28, 28, 3) in
    [0, 255]; 20 classes (digit x two tints) passed as one-hot rows (N, 20).
``unlabelled``
    An MLP autoencoder on flat MNIST (N, 784) in [0, 1] called without labels.
``no-images``
    A tabular autoencoder on scikit-learn's wine data (13 features); only the bottleneck and the
    labels (floats 0., 1., 2.) are saved: no inputs, reconstructions or loss.
``two-workers``
    Two processes train the ``mlp-flat`` model data-parallel style into one trial, each saving
    as its own worker (``worker_0``, ``worker_1``) and evaluating its own half of the probe set.
    smdebug's MXNet hook learns rank and size only from Horovod, which is not installed here:
    the hook is subclassed to take them from the command line, as Horovod would give them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("mlp-flat", "rgb-conv", "unlabelled", "no-images", "two-workers")
STEPS, EVAL_EVERY, BATCH, TRAIN_SAVE_INTERVAL = 20, 10, 32, 5
# Two tints of the coloured digits: class k < 10 is digit k in the first, k >= 10 digit k - 10 in the second.
TINTS = np.array([[1.0, 0.35, 0.1], [0.1, 0.55, 1.0]], dtype=np.float32)


# -- data ---------------------------------------------------------------------------------------


def mnist(cache_dir: str):
    sys.path.insert(0, str(ROOT))
    from trainer import data

    return data.load("mnist", cache_dir=cache_dir, download=False)


def probe_indices(labels: np.ndarray, per_class: int, offset: int = 0) -> np.ndarray:
    """The first ``per_class`` test images of each class after ``offset`` of them (ordered by class)."""
    return np.concatenate([np.flatnonzero(labels == k)[offset:offset + per_class] for k in range(10)])


def shrink_8x8(images: np.ndarray) -> np.ndarray:
    """28 x 28 -> 8 x 8 (pad to 32, mean of 4 x 4 blocks), flattened to 64 values."""
    padded = np.pad(images.astype(np.float32) / 255.0, ((0, 0), (2, 2), (2, 2)))
    return padded.reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(-1, 64)


def tint(images: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Grey digits (N, 28, 28) uint8 -> coloured (N, 28, 28, 3) float32 in [0, 255]."""
    return images.astype(np.float32)[..., None] * TINTS[which][:, None, None, :]


# -- models ---------------------------------------------------------------------------------------


def mlp(prefix: str, dim: int, latent: int):
    from mxnet.gluon import nn

    class FlatAutoencoder(nn.HybridBlock):
        def __init__(self):
            super().__init__(prefix=prefix)
            with self.name_scope():
                self.encoder = nn.HybridSequential(prefix="encoder_")
                self.encoder.add(nn.Dense(32, activation="relu"), nn.Dense(latent))
                self.decoder = nn.HybridSequential(prefix="decoder_")
                self.decoder.add(nn.Dense(32, activation="relu"), nn.Dense(dim))

        def hybrid_forward(self, F, x, *labels):
            return self.decoder(self.encoder(x))

    return FlatAutoencoder()


def rgb_conv():
    from mxnet.gluon import nn

    class ColourAutoencoder(nn.HybridBlock):
        """Channels-last RGB in [0, 255] -> 16 numbers -> channels-last RGB in [0, 255]."""

        def __init__(self):
            super().__init__(prefix="rgbconv_")
            with self.name_scope():
                self.encoder = nn.HybridSequential(prefix="encoder_")
                self.encoder.add(nn.Conv2D(8, 3, strides=2, padding=1, activation="relu"),
                                 nn.Conv2D(16, 3, strides=2, padding=1, activation="relu"), nn.Dense(16))
                self.expand = nn.Dense(16 * 7 * 7, prefix="expand_")
                # Up-sampling + convolution: MKLDNN's backward of a few-filter Conv2DTranspose fails here.
                self.conv1 = nn.Conv2D(8, 3, padding=1, activation="relu", prefix="up1_")
                self.conv2 = nn.Conv2D(3, 3, padding=1, prefix="up2_")

        def hybrid_forward(self, F, x, onehot):
            z = self.encoder(F.transpose(x, axes=(0, 3, 1, 2)) / 255.0)
            h = F.reshape(self.expand(z), shape=(0, 16, 7, 7))
            h = self.conv1(F.UpSampling(h, scale=2, sample_type="nearest"))
            h = self.conv2(F.UpSampling(h, scale=2, sample_type="nearest"))
            return F.transpose(F.sigmoid(h), axes=(0, 2, 3, 1)) * 255.0

    return ColourAutoencoder()


# -- one run ----------------------------------------------------------------------------------------


def make_hook(out: str, include: list[str], rank: int | None = None, size: int = 1):
    from smdebug.core.save_config import SaveConfigMode
    from smdebug.mxnet import Hook, SaveConfig, modes

    class RankedHook(Hook):
        """The MXNet hook told its data-parallel rank and size (Horovod's job, absent here)."""

        def _get_worker_name(self):
            return f"worker_{rank}"

        def _get_num_workers(self):
            return size

    save_config = SaveConfig(mode_save_configs={
        modes.TRAIN: SaveConfigMode(save_interval=TRAIN_SAVE_INTERVAL),
        modes.EVAL: SaveConfigMode(save_interval=1),
        modes.PREDICT: SaveConfigMode(save_interval=1),
        modes.GLOBAL: SaveConfigMode(save_interval=TRAIN_SAVE_INTERVAL),
    })
    if rank is None:
        return Hook(out_dir=out, save_config=save_config, include_regex=include)
    return RankedHook(out_dir=out, save_config=save_config, include_regex=include, include_workers="all")


def train(net, hook, loss_fn, train_x, train_y, probe_x, probe_y, seed=0, after_hook=None, lr=3e-3):
    """TRAIN steps with an EVAL pass (ONE forward call over the probe set) every EVAL_EVERY steps."""
    import mxnet as mx
    from mxnet import autograd, gluon
    from smdebug.mxnet import modes

    mx.random.seed(seed)
    net.initialize(mx.init.Xavier())
    hook.register_block(net)
    if loss_fn is not None:
        hook.register_block(loss_fn)
    if after_hook is not None:
        after_hook()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": lr})
    loss_fn = loss_fn or gluon.loss.L2Loss()
    rng = np.random.RandomState(seed)

    def call(x, y):
        return net(x) if y is None else net(x, y)

    def evaluate():
        hook.set_mode(modes.EVAL)
        x = mx.nd.array(probe_x)
        loss_fn(call(x, None if probe_y is None else mx.nd.array(probe_y)), x)
        hook.set_mode(modes.TRAIN)

    evaluate()
    for step in range(1, STEPS + 1):
        index = np.sort(rng.choice(len(train_x), BATCH, replace=False))
        x = mx.nd.array(train_x[index])
        y = None if train_y is None else mx.nd.array(train_y[index])
        with autograd.record():
            loss = loss_fn(call(x, y), x)
        loss.backward()
        trainer.step(BATCH)
        if step % EVAL_EVERY == 0:
            evaluate()
    hook.close()


def make(kind: str, out: str, cache_dir: str, rank: int | None = None, sync: str | None = None) -> None:
    from mxnet import gluon

    if kind == "no-images":
        from sklearn.datasets import load_wine

        wine = load_wine()
        x = ((wine.data - wine.data.mean(0)) / wine.data.std(0)).astype(np.float32)
        y = wine.target.astype(np.float32)
        probe = np.random.RandomState(0).choice(len(x), 120, replace=False)
        hook = make_hook(out, [r"^wineae_encoder_output_0$", r"^wineae_input_1$"])
        train(mlp("wineae_", 13, 4), hook, None, x, y, x[probe], y[probe])
        return

    data = mnist(cache_dir)
    if kind == "unlabelled":
        x = data.train_images[:3000].reshape(-1, 784).astype(np.float32) / 255.0
        probe = probe_indices(data.test_labels, 10)
        hook = make_hook(out, [r"^selfsup_encoder_output_0$", r"^selfsup_input_0$",
                               r"^pixel_loss_input_0$", r"^pixel_loss_output_0$"])
        train(mlp("selfsup_", 784, 10), hook, gluon.loss.L2Loss(prefix="pixel_loss_"), x, None,
              data.test_images[probe].reshape(-1, 784).astype(np.float32) / 255.0, None)
    elif kind == "rgb-conv":
        which = np.random.RandomState(1).randint(0, 2, size=len(data.train_images))
        x = tint(data.train_images[:3000], which[:3000])
        y = np.eye(20, dtype=np.float32)[data.train_labels[:3000] + 10 * which[:3000]]
        probe = probe_indices(data.test_labels, 10)
        pw = np.arange(len(probe)) % 2  # alternate tints: every class of the 20 is in the probe set
        hook = make_hook(out, [r"^rgbconv_encoder_output_0$", r"^rgbconv_input_[01]$",
                               r"^colour_loss_input_0$", r"^colour_loss_output_0$"])
        train(rgb_conv(), hook, gluon.loss.L2Loss(prefix="colour_loss_"), x, y,
              tint(data.test_images[probe], pw), np.eye(20, dtype=np.float32)[data.test_labels[probe] + 10 * pw],
              lr=1e-3)  # 3e-3 drives this model to an all-black output within the 20 steps
    elif kind in ("mlp-flat", "two-workers"):
        raw = shrink_8x8(data.train_images[:3000])
        mean, std = float(raw.mean()), float(raw.std())  # standardised with the training pixels' statistics
        x = (raw - mean) / std
        probe = probe_indices(data.test_labels, 10, offset=0 if rank is None else 10 * rank)
        include = [r"^flatmlp_encoder_output_0$", r"^flatmlp_input_[01]$",
                   r"^flat_loss_input_0$", r"^flat_loss_output_0$"]
        size = 2 if kind == "two-workers" else 1
        hook = make_hook(out, include, rank=rank, size=size)
        barrier = None if sync is None else (lambda: _barrier(Path(sync), rank, size))
        train(mlp("flatmlp_", 64, 8), hook, gluon.loss.L2Loss(prefix="flat_loss_"), x,
              data.train_labels[:3000].astype(np.float32),
              (shrink_8x8(data.test_images[probe]) - mean) / std, data.test_labels[probe].astype(np.float32),
              seed=rank or 0, after_hook=barrier)
    else:
        raise SystemExit(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")


def _barrier(folder: Path, rank: int, size: int, timeout: float = 120.0) -> None:
    """Wait until every worker has built its hook: the hook refuses a folder another one wrote into."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"ready-{rank}").write_text("1")
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("ready-*"))) < size:
        if time.monotonic() > deadline:
            raise SystemExit(f"worker {rank}: the other workers did not start")
        time.sleep(0.05)


def two_workers(out: str, cache_dir: str) -> None:
    """Two worker processes writing one trial, started together as a data-parallel launcher would."""
    sync = str(Path(out).parent / (Path(out).name + ".sync"))
    procs = [subprocess.Popen([sys.executable, __file__, "two-workers", out, cache_dir, str(rank), sync])
             for rank in range(2)]
    codes = [p.wait(timeout=600) for p in procs]
    for ready in Path(sync).glob("ready-*"):
        ready.unlink()
    Path(sync).rmdir()
    if any(codes):
        raise SystemExit(f"a worker failed: exit codes {codes}")


if __name__ == "__main__":
    os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
    kind, out = sys.argv[1], sys.argv[2]
    cache = sys.argv[3] if len(sys.argv) > 3 else str(ROOT / ".cache" / "test-data")
    if kind == "two-workers" and len(sys.argv) <= 4:
        two_workers(out, cache)
    else:
        make(kind, out, cache, rank=int(sys.argv[4]) if len(sys.argv) > 4 else None,
             sync=sys.argv[5] if len(sys.argv) > 5 else None)
