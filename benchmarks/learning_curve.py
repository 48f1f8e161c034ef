"""Does the trainer learn: runs the trainer CLI once (the default one-epoch run) and reads the
probe loss of every EVAL step back from the store, against constant-image baselines (the best
single grey, the mean training image), with the share of reconstructions nearest their own input.

    .venv/bin/python benchmarks/learning_curve.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mxnet_setup import ROOT, set_threads  # benchmarks/mxnet_setup.py, beside this script

from latentlapse.contract import RUN_FILE
from probe_tensors import probe_images, tensor_name  # benchmarks/probe_tensors.py, beside this script

def run(args) -> int:
    set_threads(1)
    from smdebug import modes
    from smdebug.trials import create_trial

    from trainer import data

    with tempfile.TemporaryDirectory(prefix="latentlapse-learn-") as tmp:
        out = os.path.join(tmp, "tensors")
        cmd = [sys.executable, "-m", "trainer", "--out", out, "--steps", str(args.steps),
               "--eval-every", str(args.eval_every), "--no-progress"]
        print("running:", " ".join(cmd), file=sys.stderr, flush=True)
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True)
        seconds = time.perf_counter() - start
        run = json.loads(Path(out, RUN_FILE).read_text())
        trial = create_trial(out)
        steps = trial.steps(mode=modes.EVAL)
        x = probe_images(trial)
        x = x.reshape(len(x), -1).astype(np.float64)
        # The best single grey is the mean pixel: its L2Loss (0.5 * MSE) is half the pixel variance.
        grey = 0.5 * float(x.var())
        mean_train = data.load("mnist").train_images.reshape(60000, -1).mean(axis=0, dtype=np.float64) / 255
        mean_image = 0.5 * float(((x - mean_train) ** 2).mean())
        rows = []
        for k, step in enumerate(steps):
            loss = float(trial.tensor(tensor_name(trial, "loss")).value(step, mode=modes.EVAL).mean())
            recon = trial.tensor(tensor_name(trial, "recon")).value(step, mode=modes.EVAL).reshape(len(x), -1)
            rows.append((run["eval_steps"][k], loss, own_nearest_fraction(recon.astype(np.float64), x)))
    print(f"\ntrainer CLI: {run['steps']} steps in {seconds:.0f} s ({run['progress']['images_per_second']} "
          f"img/s by its own count); load average {os.getloadavg()[0]:.1f}\n")
    print(f"probe loss of the best constant grey {grey:.4f}; of the mean training image {mean_image:.4f}\n")
    print("| train step | probe loss | / best grey | / mean image | reconstruction nearest to its own input |")
    print("| --- | --- | --- | --- | --- |")
    for step, loss, own in rows:
        print(f"| {step} | {loss:.4f} | {loss / grey:.2f} | {loss / mean_image:.2f} | {own:.1%} |")
    return 0


def own_nearest_fraction(recon: np.ndarray, inputs: np.ndarray) -> float:
    """Fraction of reconstructions nearer to their own input than to any other probe input.

    A collapsed model (one picture for every input) scores about 1/N; a useful one close to 1.
    """
    d = (recon ** 2).sum(1)[:, None] - 2 * recon @ inputs.T + (inputs ** 2).sum(1)[None, :]
    return float((d.argmin(axis=1) == np.arange(len(recon))).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=938)
    p.add_argument("--eval-every", type=int, default=100)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
