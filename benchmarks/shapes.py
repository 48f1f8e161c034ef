"""What reading any trial's shapes costs per frame, next to the frame itself (issue 11).

At 1,000 probe points of real MNIST test images: the work the reporter does per frame to accept
any layout (checking one step's tensors together, labels to classes, choosing the picture
layout and normalisation, converting the shown examples) for several layouts, timed side by side
with one whole warm frame (embedding, quality figures, drawing) on the same points.

    .venv/bin/python benchmarks/shapes.py [--points 1000]

Prints CPU ms (median of means) and the ratio to the frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import median_call_ms  # noqa: E402


def layouts(images: np.ndarray) -> dict[str, np.ndarray]:
    """The probe images (N, 28, 28) in [0, 1] in each layout the reporter reads."""
    rgb = images[..., None] * np.array([1.0, 0.4, 0.1], dtype=np.float32)
    return {
        "(N,1,28,28) [0,1]": images[:, None],
        "(N,784) flat [0,1]": images.reshape(len(images), -1),
        "(N,784) standardised": (images.reshape(len(images), -1) - 0.13) / 0.31,
        "(N,28,28,3) [0,255]": rgb * 255.0,
        "(N,3,28,28) [0,1]": rgb.transpose(0, 3, 1, 2).copy(),
    }


def shape_handling(values: dict, names: dict):
    """What a frame adds for any trial: tensors checked together, pictures chosen, examples taken."""
    from reporter.trial.images import probe_pictures
    from reporter.trial.roles import probe_arrays

    arrays = probe_arrays(values, names, where="EVAL step 1")
    inputs, recon = probe_pictures(arrays["inputs"], arrays["recon"], len(arrays["latent"]))
    picks = [int(np.flatnonzero(arrays["labels"] == k)[0]) for k in range(10)]
    return inputs.take(picks), recon.take(picks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args(argv)

    from reporter.embedding.embed import Embedder
    from reporter.frame import make_frame
    from reporter.trial.store import ProbeStep
    from trainer import data

    cache = Path(__file__).resolve().parent.parent / ".cache" / "test-data"
    mnist = data.load("mnist", cache_dir=cache, download=False)
    per_class = args.points // 10
    index = np.concatenate([np.flatnonzero(mnist.test_labels == k)[:per_class] for k in range(10)])
    images = mnist.test_images[index].astype(np.float32) / 255.0
    labels = mnist.test_labels[index].astype(np.float32)
    rng = np.random.default_rng(0)
    # Latents with class structure (a fixed random projection of the images), 20-d as our trainer's.
    latent = (images.reshape(len(images), -1) @ rng.normal(size=(784, 20))).astype(np.float32)
    names = {"latent": "z", "labels": "y", "inputs": "x", "recon": "r", "loss": "l"}

    embedder = Embedder(seed=0)
    embedder.embed(latent)  # frame 0: the frame timed below is a warm one, as most are
    layout, remembered = embedder.layout, embedder.latents

    def frame():
        embedder.layout, embedder.latents, embedder.neighbours = layout, remembered, None
        probe = ProbeStep(1, 11, latent, labels.astype(np.int64), images[:, None], images[:, None] * 0.9,
                          np.full(len(latent), 0.02), [])
        make_frame(probe, embedder, index=1, run_info=None)

    frame_ms = median_call_ms(frame, repeats=3, groups=3)
    print(f"points {len(latent)}; one warm frame (embed + quality + draw): {frame_ms:.1f} ms CPU")
    for name, x in layouts(images).items():
        values = {"latent": latent, "labels": labels, "inputs": x, "recon": x * 0.9,
                  "loss": np.full(len(latent), 0.02)}
        ms = median_call_ms(lambda: shape_handling(values, names), repeats=20, groups=3)
        print(f"  shape handling {name:<24} {ms:7.2f} ms CPU  = {ms / frame_ms:.2%} of the frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
