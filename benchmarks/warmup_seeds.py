"""The trainer CLI for seeds 0..N-1 with and without its learning-rate warm-up: the final probe loss
of each, against an all-black and the best grey image (a run stuck at grey learnt nothing).

    .venv/bin/python benchmarks/warmup_seeds.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from mxnet_setup import ROOT  # benchmarks/mxnet_setup.py, beside this script

from probe_tensors import probe_images, tensor_name  # benchmarks/probe_tensors.py, beside this script

def run(args) -> int:
    """The trainer CLI for several seeds, with and without the learning-rate warm-up: final probe loss."""
    from concurrent.futures import ThreadPoolExecutor

    from smdebug import modes
    from smdebug.trials import create_trial

    def one(seed: int, warmup: int, tmp: str) -> float:
        out = os.path.join(tmp, f"seed{seed}-warmup{warmup}")
        cmd = [sys.executable, "-m", "trainer", "--out", out, "--steps", str(args.steps), "--eval-every",
               str(args.steps), "--seed", str(seed), "--warmup-steps", str(warmup), "--no-progress"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        trial = create_trial(out)
        last = trial.steps(mode=modes.EVAL)[-1]
        x = probe_images(trial).astype(np.float64)
        loss = float(trial.tensor(tensor_name(trial, "loss")).value(last, mode=modes.EVAL).mean())
        print(f"seed {seed} warm-up {warmup}: probe loss {loss:.4f}", file=sys.stderr, flush=True)
        return loss, 0.5 * float(x.var()), 0.5 * float((x ** 2).mean())

    jobs = [(seed, warmup) for seed in range(args.seeds) for warmup in (0, args.warmup)]
    with tempfile.TemporaryDirectory(prefix="latentlapse-seeds-") as tmp, \
            ThreadPoolExecutor(args.parallel) as pool:
        results = dict(zip(jobs, pool.map(lambda job: one(*job, tmp), jobs)))
    _, grey, black = next(iter(results.values()))
    print(f"\ntrainer CLI, {args.steps} steps, {args.parallel} run(s) at a time; probe loss of the best constant "
          f"grey {grey:.4f}, of an all-black image {black:.4f}; load average {os.getloadavg()[0]:.1f}\n")
    print(f"| seed | no warm-up | warm-up {args.warmup} steps |\n| --- | --- | --- |")
    for seed in range(args.seeds):
        cells = [results[(seed, w)][0] for w in (0, args.warmup)]
        print(f"| {seed} | " + " | ".join(f"{c:.4f}" + (" (stuck)" if c > 0.9 * grey else "") for c in cells) + " |")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=200, help="the trainer's --warmup-steps to compare with none")
    p.add_argument("--parallel", type=int, default=2, help="runs at a time (each one MXNet thread)")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
