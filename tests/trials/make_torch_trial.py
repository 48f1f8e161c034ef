"""Write the committed PyTorch fixture trial ``tests/trials/torch-conv`` with smdebug's PyTorch hook.

Run once, in a virtual environment of its own (the project's has no torch):

    python3.11 -m venv /tmp/torch-venv
    /tmp/torch-venv/bin/pip install torch==2.13.0 smdebug==1.0.34 "numpy<2" pandas psutil requests
    /tmp/torch-venv/bin/python tests/trials/make_torch_trial.py .cache/test-data/mnist tests/trials/torch-conv

A small convolutional autoencoder trains on real MNIST (downsampled to 14 x 14 to keep the
fixture small) for 20 steps; every 10 steps an EVAL pass runs once over a fixed probe set of 60
test images (6 per class). The hook saves the model's input, the bottleneck (the encoder's output), the decoder's output, the
per-sample loss (a loss module registered with ``hook.register_loss``) and the labels
(``hook.save_tensor``), under the names the PyTorch hook gives them.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

PROBE_PER_CLASS = 6
STEPS, EVAL_EVERY, BATCH = 20, 10, 32


def read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def downsample(images: np.ndarray) -> np.ndarray:
    """28 x 28 uint8 -> 14 x 14 float32 in [0, 1] (mean of 2 x 2 blocks)."""
    x = images.astype(np.float32).reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    return x / 255.0


def main(mnist_dir: str, out_dir: str) -> None:
    import torch
    from torch import nn
    import smdebug.pytorch as smd
    from smdebug.core.save_config import SaveConfigMode

    torch.manual_seed(0)
    folder = Path(mnist_dir)
    train_x = downsample(read_idx(folder / "train-images-idx3-ubyte.gz")[:2000])
    test_x = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    test_y = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    probe = np.concatenate([np.flatnonzero(test_y == k)[:PROBE_PER_CLASS] for k in range(10)])
    probe_x = torch.from_numpy(downsample(test_x[probe])[:, None])
    probe_y = torch.from_numpy(test_y[probe].astype(np.int64))

    class ConvAutoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                nn.Flatten(), nn.Linear(16 * 4 * 4, 12))
            self.decoder = nn.Sequential(
                nn.Linear(12, 16 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (16, 7, 7)),
                nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), nn.Sigmoid())

        def forward(self, x):
            return self.decoder(self.encoder(x))

    class PerSampleMSE(nn.modules.loss._Loss):  # register_loss accepts only _Loss subclasses
        def forward(self, recon, target):
            return ((recon - target) ** 2).mean(dim=(1, 2, 3))

    model = ConvAutoencoder()
    loss_fn = PerSampleMSE()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    save_config = smd.SaveConfig(mode_save_configs={
        smd.modes.TRAIN: SaveConfigMode(save_interval=10),
        smd.modes.EVAL: SaveConfigMode(save_interval=1),
    })
    hook = smd.Hook(out_dir=out_dir, save_config=save_config,
                    include_regex=[r"^encoder_output_0$", r"^decoder_output_0$", r"^ConvAutoencoder_input_0$",
                                   r"^labels$", r"^PerSampleMSE_output_0$"])
    hook.register_module(model)
    hook.register_loss(loss_fn)

    def evaluate():
        hook.set_mode(smd.modes.EVAL)
        model.eval()
        with torch.no_grad():
            # Written by the next module's forward hook: save it before the pass, so it lands in this step.
            hook.save_tensor("labels", probe_y)
            loss_fn(model(probe_x), probe_x)  # one forward call: one EVAL step is the whole probe set
        model.train()
        hook.set_mode(smd.modes.TRAIN)

    rng = np.random.RandomState(0)
    evaluate()
    for step in range(1, STEPS + 1):
        batch = torch.from_numpy(train_x[rng.choice(len(train_x), BATCH, replace=False)][:, None])
        optimizer.zero_grad()
        loss_fn(model(batch), batch).mean().backward()
        optimizer.step()
        if step % EVAL_EVERY == 0:
            evaluate()
    hook.close()
    print(f"torch {torch.__version__}: wrote {out_dir}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
