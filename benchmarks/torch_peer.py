"""The trainer's autoencoder in PyTorch: the reference peer that benchmarks/hook_throughput.py times.

torch is not a dependency of latentlapse. This script runs under a separate Python that has torch
and numpy (``--torch-python`` of benchmarks/hook_throughput.py and layer_times.py) and imports nothing from the project
but benchmarks/timing.py beside it (standard library only).
It is driven over stdin/stdout, one JSON object per line, so its blocks of steps interleave
with the MXNet variants in the same benchmark run:

    -> {"steps": 100}          train 100 more steps (EVAL passes included), reply with timings
    <- {"seconds": ..., "cpu_seconds": ..., "train_seconds": ..., "eval_seconds": ..., "evals": 4, "loss": ...}
    -> {"quit": true}

The first line it writes says it is ready, with the parameter count and the torch version.
With ``--layers`` it prints the forward + backward time of each layer alone instead, and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from timing import median_call_ms, timed_block  # benchmarks/timing.py: standard library only


def build_model():
    """Conv(32,5)-Pool-Conv(32,5)-Pool-Dense(20) | Dense(512)-(32,4,4)-Up-ConvT(32,5)-Up-ConvT(1,5)."""
    import torch
    from torch import nn

    class ConvolutionalAutoencoder(nn.Module):
        def __init__(self, latent_dim: int = 20):
            super().__init__()
            # One entry per layer of trainer/model.py (activations folded in as MXNet does), so the
            # per-layer timings of both line up.
            self.encoder = nn.Sequential(
                nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU()), nn.MaxPool2d(2),
                nn.Sequential(nn.Conv2d(32, 32, 5), nn.ReLU()), nn.MaxPool2d(2),
                nn.Sequential(nn.Flatten(), nn.Linear(512, latent_dim)),
            )
            self.decoder = nn.Sequential(
                nn.Sequential(nn.Linear(latent_dim, 512), nn.ReLU()), nn.Unflatten(1, (32, 4, 4)),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Sequential(nn.ConvTranspose2d(32, 32, 5), nn.ReLU()),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Sequential(nn.ConvTranspose2d(32, 1, 5), nn.Sigmoid()),
            )
            # Same start as the trainer's mx.init.Xavier() (uniform, averaged fans, magnitude 3 =
            # Glorot uniform) with zero biases, so both models learn alike while being timed.
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)

        def forward(self, x):
            return self.decoder(self.encoder(x))

    return ConvolutionalAutoencoder(), torch


class Peer:
    """One model, optimizer and batch order that live across all the blocks of a benchmark run."""

    def __init__(self, train_images: np.ndarray, probe_images: np.ndarray, batch_size: int,
                 lr: float, eval_every: int, seed: int, lr_warmup: int = 0):
        import torch

        torch.manual_seed(seed)  # before the model: its initial weights come from this seed
        self.net, self.torch = build_model()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        # The trainer's warm-up (trainer.train.adam_settings): lr x n / lr_warmup at update n.
        self.schedule = None if lr_warmup <= 0 else torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda done: min(1.0, (done + 1) / lr_warmup))
        self.train_images, self.batch_size, self.eval_every = train_images, batch_size, eval_every
        self.probe_x = self._to_batch(probe_images)
        self.rng = np.random.RandomState(seed)
        self.order, self.position, self.step = self.rng.permutation(len(train_images)), 0, 0

    def _to_batch(self, images: np.ndarray):
        # The same work as trainer.train.to_batch: uint8 -> float32 in [0, 1], channel axis added.
        return self.torch.from_numpy(images[:, None, :, :].astype(np.float32) / 255.0)

    @staticmethod
    def _loss(recon, x):
        # gluon.loss.L2Loss is 0.5 * squared error, averaged per sample; Trainer.step(batch) averages
        # over the batch: together 0.5 * MSE.
        return 0.5 * ((recon - x) ** 2).mean()

    def evaluate(self) -> float:
        with self.torch.no_grad():
            return float(self._loss(self.net(self.probe_x), self.probe_x))

    def train_step(self) -> float:
        n = len(self.train_images)
        if self.position + self.batch_size > n:
            self.order, self.position = self.rng.permutation(n), 0
        index = np.sort(self.order[self.position:self.position + self.batch_size])
        self.position += self.batch_size
        x = self._to_batch(self.train_images[index])
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(self.net(x), x)
        loss.backward()
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
        self.step += 1
        return loss.item()  # like the trainer's asscalar(): waits for the step to finish

    def run_block(self, steps: int) -> dict:
        """Train ``steps`` steps, with an EVAL pass after every ``eval_every``-th step, timed."""
        return timed_block(self, steps)


def layer_times(peer: Peer, repeats: int = 20, groups: int = 3) -> list[dict]:
    """CPU milliseconds of forward + backward of each layer alone, on a random input of its shape,
    then of a whole train step (batch, forward, loss, backward, Adam)."""
    torch = peer.torch
    x = torch.rand(peer.batch_size, 1, 28, 28)
    rows = []
    for layer in [*peer.net.encoder, *peer.net.decoder]:
        inp = x.clone().requires_grad_(True)

        def call():
            layer(inp).sum().backward()

        main = layer  # a stage is named after its layer with weights (Linear, not the Flatten before it)
        if isinstance(layer, torch.nn.Sequential):
            main = next(m for m in layer if list(m.parameters()))
        rows.append({"layer": type(main).__name__, "input": list(x.shape), "ms": median_call_ms(call, repeats, groups)})
        with torch.no_grad():
            x = layer(x)
    rows.append({"layer": "whole train step", "input": [peer.batch_size, 1, 28, 28],
                 "ms": median_call_ms(peer.train_step, repeats, groups)})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Load the data the benchmark wrote, build the peer, then answer block requests until told to quit."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help=".npz with train_images and probe_images (uint8); not used by --layers")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr-warmup", type=int, default=0, help="learning-rate warm-up steps, as the trainer's")
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", action="store_true", help="print per-layer timings as JSON and exit")
    args = p.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.layers:  # random pictures will do for timing
        images = np.random.RandomState(args.seed).randint(0, 256, (1000, 28, 28)).astype(np.uint8)
        arrays = {"train_images": images, "probe_images": images}
    elif args.data:
        arrays = np.load(args.data)
    else:
        p.error("--data is required (except with --layers)")
    peer = Peer(arrays["train_images"], arrays["probe_images"], args.batch_size, args.lr,
                args.eval_every, args.seed, args.lr_warmup)
    if args.layers:
        print(json.dumps(layer_times(peer)), flush=True)
        return 0
    peer.evaluate()  # step-0 EVAL pass, as in the trainer (and a warm-up)
    parameters = sum(p.numel() for p in peer.net.parameters())
    reply = {"ready": True, "parameters": parameters, "torch": torch.__version__,
             "threads": torch.get_num_threads()}
    print(json.dumps(reply), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        print(json.dumps(peer.run_block(int(request["steps"]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
