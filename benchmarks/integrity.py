"""What the end-to-end check costs: the trainer's digests and the reporter's check, against a step and a frame.

One run:

1. trains a real run (``python -m trainer``, default model and batch 64, probe set of 1,000
   images, an EVAL pass every 25 steps) and reads its training step time from the run file
   (images/s, measured by the trainer over the whole run, EVAL passes included);
2. trainer side: for every EVAL step of that store, the arrays the hook wrote (read back: the
   same bytes) are digested and their file written as the trainer does (``tensor_digest`` +
   ``write_beside``), median wall ms of repeated calls; per training step that is the cost of an
   EVAL step divided by the steps between EVAL passes;
3. reporter side: the reporter reports the store in one pass; its frame time is the median gap
   between two frames' publication times (read, embed, draw, files, state, site); the check is
   ``DigestCheck.check`` of every tensor a frame reads, with a cold cache (its digest file read too).

Absolute times on a loaded machine are inflated; the ratios compare like with like (same load,
same process for 2 and 3).

    .venv/bin/python benchmarks/integrity.py             # ~3 min on 2 shared cores
    .venv/bin/python benchmarks/integrity.py --steps 50 --probe-size 200   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from latentlapse.contract import RUN_FILE  # noqa: E402


def median_ms(call, repeats: int = 7) -> float:
    """Median wall ms of ``repeats`` calls after one untimed call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def train(store: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAINER_THREADS": "1"}
    cmd = [sys.executable, "-m", "trainer", "--out", str(store), "--steps", str(args.steps),
           "--eval-every", str(args.eval_every), "--probe-size", str(args.probe_size), "--no-progress"]
    if args.cache_dir:
        cmd += ["--cache-dir", args.cache_dir]
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True)
    return json.loads((store / RUN_FILE).read_text())


def eval_arrays(store: Path) -> dict[int, dict]:
    """{EVAL step: {tensor name: array}} of every tensor the hook wrote at each EVAL step."""
    import numpy as np
    from smdebug import modes
    from smdebug.trials import create_trial

    trial = create_trial(str(store))
    arrays = {}
    for step in trial.steps(mode=modes.EVAL):
        arrays[step] = {n: np.asarray(trial.tensor(n).value(step, mode=modes.EVAL)) for n in trial.tensor_names()
                        if step in trial.tensor(n).steps(mode=modes.EVAL)}
    return arrays


def trainer_cost(store: Path, arrays: dict[int, dict]) -> list[float]:
    from latentlapse.digests import digest_file, step_digests, tensor_digest
    from latentlapse.contract import DIGEST_DIR
    from trainer.train import write_beside

    scratch = store.parent / "scratch"
    costs = []
    for step, tensors in arrays.items():
        def record():
            digests = {name: tensor_digest(a) for name, a in tensors.items()}
            write_beside(str(scratch), digest_file(DIGEST_DIR, step), step_digests("EVAL", step, digests))
        costs.append(median_ms(record))
    return costs


def reporter_cost(store: Path, out: Path, arrays: dict[int, dict], info: dict) -> tuple[list[float], list[float]]:
    from reporter.config import from_args
    from reporter.trial.integrity import DigestCheck
    from reporter.pipeline import run

    assert run(from_args(["--tensors", str(store), "--out", str(out)], environ={})) == 0
    state = json.loads((out / "state.json").read_text())
    assert all(f["checked"] for f in state["frames"]), "the report did not check its frames"
    published = [f["published"] for f in state["frames"]]
    frame_ms = [1000 * (b - a) for a, b in zip(published, published[1:])]
    check_ms = []
    for step, tensors in arrays.items():
        # Each step's own tensors: the probe images only at the step that saved them (the first).
        def check():
            checker = DigestCheck(str(store))  # a cold cache: its digest file is read too
            checker.follow_run_info(info)
            assert checker.check(step, tensors)  # noqa: B023
        check_ms.append(median_ms(check))
    return frame_ms, check_ms


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--probe-size", type=int, default=1000)
    p.add_argument("--cache-dir", default=os.environ.get("TRAINER_CACHE_DIR"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "tensors"
        info = train(store, args)
        step_ms = 1000 * 64 / info["progress"]["images_per_second"]
        arrays = eval_arrays(store)
        hook_ms = trainer_cost(store, arrays)
        frame_ms, check_ms = reporter_cost(store, Path(tmp) / "site", arrays, info)
    per_step = statistics.median(hook_ms) / args.eval_every
    rows = [
        ("trainer step (batch 64), from its images/s", f"{step_ms:.1f} ms", ""),
        ("digests + file per EVAL step, median (max)", f"{statistics.median(hook_ms):.2f} ms "
         f"({max(hook_ms):.2f})", ""),
        (f"  per training step (/ {args.eval_every})", f"{per_step:.3f} ms", f"{100 * per_step / step_ms:.2f} %"),
        ("reporter frame, median gap between frames", f"{statistics.median(frame_ms):.0f} ms", ""),
        ("check of a frame's tensors, median (max)", f"{statistics.median(check_ms):.2f} ms ({max(check_ms):.2f})",
         f"{100 * statistics.median(check_ms) / statistics.median(frame_ms):.2f} % "
         f"({100 * max(check_ms) / statistics.median(frame_ms):.2f} %)"),
    ]
    print(f"{args.probe_size} probe images, {args.steps} steps, EVAL every {args.eval_every}: "
          f"{len(arrays)} EVAL steps, {len(frame_ms) + 1} frames; load average {os.getloadavg()[0]:.1f}")
    print("| what | time | share |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
