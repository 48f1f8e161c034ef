"""Training throughput with and without the smdebug hook, the PyTorch peer, and whether a default run learns.

``throughput``: images/s of the trainer's step (trainer.model, trainer.data, trainer.train.to_batch,
trainer.hook.create_hook; Adam + L2Loss, batch 64, an EVAL pass over the 1,000-image probe set
after every 25th step, as trainer/train.py does) for these variants, interleaved in one run:

    no hook            the same model and steps, no hook registered
    default hook       create_hook(out, 10): TRAIN saved every 10 steps, every EVAL pass saved
    save every step    create_hook(out, 1)
    pytorch            benchmarks/torch_peer.py under --torch-python (skipped without it)
    option: ...        with --options: images and reconstructions saved on EVAL only

Each round runs one block of ``--block-steps`` steps of every variant, the order rotating from
round to round; each variant keeps its model, optimizer and tensor store across rounds. Medians
over rounds, and per-round ratios against "no hook" (paired, so a load change hits both sides).

``learning``: runs the real trainer CLI for the default one-epoch run, then reads the probe loss
of every EVAL step from the store (smdebug) and compares it with constant-image baselines.

    .venv/bin/python benchmarks/training.py throughput --threads 1 --torch-python /work/torchvenv/bin/python
    .venv/bin/python benchmarks/training.py learning
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
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NO_HOOK, DEFAULT_HOOK, EVERY_STEP, PYTORCH = "no hook", "default hook", "save every step", "pytorch"
EVAL_ONLY_IMAGES = "option: images on EVAL only"


def set_threads(threads: int) -> None:
    """What trainer/cli.py does before MXNet is imported (OMP threads are fixed at import)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MXNET_MKLDNN_ENABLED"] = "0"
    os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


# ---------------------------------------------------------------------------------------------
# MXNet variants


class TrainerVariant:
    """The trainer's model, loss, optimizer, batch order and (optionally) hook, run in timed blocks.

    The step is trainer/train.py's loop body; train.run() cannot run without a hook, so it is
    restated here once and shared by every variant, hooked or not.
    """

    def __init__(self, name: str, dataset, probe_x, probe_y, args, hook_interval: int | None = None,
                 out_dir: str | None = None, hook_factory=None):
        import mxnet as mx
        from mxnet import gluon

        from trainer.hook import create_hook
        from trainer.model import ConvolutionalAutoencoder

        self.name, self.dataset, self.probe_x, self.probe_y = name, dataset, probe_x, probe_y
        self.batch_size, self.eval_every = args.batch_size, args.eval_every
        mx.random.seed(args.seed)
        self.rng = np.random.RandomState(args.seed)
        self.net = ConvolutionalAutoencoder()
        self.net.initialize(mx.init.Xavier())
        self.net.hybridize_leaves()
        self.loss_fn = gluon.loss.L2Loss()
        self.optimizer = gluon.Trainer(self.net.collect_params(), "adam", {"learning_rate": args.lr})
        self.hook = None
        if hook_interval is not None or hook_factory is not None:
            factory = hook_factory or (lambda out: create_hook(out, hook_interval))
            self.hook = factory(out_dir)
            self.hook.register_block(self.net)
            self.hook.register_block(self.loss_fn)
        self.order, self.position, self.step = self.rng.permutation(len(dataset.train_labels)), 0, 0

    def evaluate(self) -> float:
        from smdebug.mxnet import modes

        if self.hook is not None:
            self.hook.set_mode(modes.EVAL)
        recon = self.net(self.probe_x, self.probe_y)
        loss = float(self.loss_fn(recon, self.probe_x).mean().asscalar())
        if self.hook is not None:
            self.hook.set_mode(modes.TRAIN)
        return loss

    def train_step(self) -> float:
        import mxnet as mx
        from mxnet import autograd

        from trainer.train import to_batch

        n = len(self.dataset.train_labels)
        if self.position + self.batch_size > n:
            self.order, self.position = self.rng.permutation(n), 0
        index = np.sort(self.order[self.position:self.position + self.batch_size])
        self.position += self.batch_size
        x = to_batch(self.dataset.train_images[index])
        y = mx.nd.array(self.dataset.train_labels[index].astype(np.float32))
        with autograd.record():
            loss = self.loss_fn(self.net(x, y), x)
        loss.backward()
        self.optimizer.step(self.batch_size)
        self.step += 1
        return float(loss.mean().asscalar())

    def run_block(self, steps: int) -> dict:
        """Train ``steps`` steps with an EVAL pass after every ``eval_every``-th step; time both."""
        return timed_block(self, steps)

    def close(self) -> None:
        if self.hook is not None:
            self.hook.close()


class TorchVariant:
    """benchmarks/torch_peer.py in a child process with its own Python, driven one block at a time."""

    def __init__(self, python: str, data_file: str, args):
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        cmd = [python, str(ROOT / "benchmarks" / "torch_peer.py"), "--data", data_file,
               "--threads", str(args.threads), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
               "--eval-every", str(args.eval_every), "--seed", str(args.seed)]
        self.name = PYTORCH
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the PyTorch peer exited (code {self.process.wait()}): see its error above")
        return json.loads(line)

    def run_block(self, steps: int) -> dict:
        self.process.stdin.write(json.dumps({"steps": steps}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.write(json.dumps({"quit": True}) + "\n")
        self.process.stdin.close()
        self.process.wait(timeout=60)


def timed_block(variant, steps: int) -> dict:
    """Run ``steps`` train steps with an EVAL pass after every ``eval_every``-th one; wall and CPU time.

    CPU seconds (every thread of the process, smdebug's writer thread included) move less than
    wall time when other jobs share the cores.
    """
    train_seconds = eval_seconds = 0.0
    evals, loss = 0, float("nan")
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = variant.train_step()
        t1 = time.perf_counter()
        train_seconds += t1 - t0
        if variant.step % variant.eval_every == 0:
            variant.evaluate()
            eval_seconds += time.perf_counter() - t1
            evals += 1
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start,
            "train_seconds": train_seconds, "eval_seconds": eval_seconds, "evals": evals, "loss": loss}


def summarise(name: str, blocks: list[dict], batch_size: int) -> dict:
    rates = [b["steps"] * batch_size / b["seconds"] for b in blocks]
    train_rates = [b["steps"] * batch_size / b["train_seconds"] for b in blocks]
    eval_each = [b["eval_seconds"] / b["evals"] for b in blocks if b["evals"]]
    return {"variant": name, "images_per_second": statistics.median(rates), "min": min(rates),
            "max": max(rates), "train_step_images_per_second": statistics.median(train_rates),
            "eval_pass_seconds": statistics.median(eval_each) if eval_each else None,
            "images_per_cpu_second": statistics.median(b["steps"] * batch_size / b["cpu_seconds"] for b in blocks)}


def paired_ratio(base: list[dict], other: list[dict], key: str) -> float:
    """Median over rounds of (base time / other time): the other's speed relative to the base."""
    return statistics.median(b[key] / o[key] for b, o in zip(base, other))


def eval_only_images_hook(out_dir: str):
    """An option for the trainer: images and reconstructions saved on EVAL only, TRAIN keeps the rest.

    Two collections: the probe-set tensors the frames need (every EVAL step, never TRAIN) and the
    small ones (latents, labels, per-sample loss) at the trainer's default TRAIN interval.
    """
    from smdebug.core.save_config import SaveConfigMode
    from smdebug.mxnet import modes

    from trainer.hook import COLLECTION, DEFAULT_TRAIN_SAVE_INTERVAL, create_hook

    hook = create_hook(out_dir, DEFAULT_TRAIN_SAVE_INTERVAL)
    pictures = [r"convolutionalautoencoder\d+_input_0", r"l2loss\d+_input_0"]
    hook.get_collection(COLLECTION).include_regex = [
        r"convolutionalautoencoder\d+_hybridsequential0_dense0_output_0",
        r"convolutionalautoencoder\d+_input_1",
        r"l2loss\d+_output_0",
    ]
    hook.include_collections.append("pictures")
    hook.get_collection("pictures").include(pictures)
    hook.get_collection("pictures").save_config = {modes.TRAIN: SaveConfigMode(end_step=0),  # never
                                                   modes.EVAL: SaveConfigMode(save_interval=1)}
    return hook


def throughput(args) -> int:
    set_threads(args.threads)
    from trainer import data
    from trainer.train import choose_probe_set, to_batch

    import mxnet as mx

    dataset = data.load("mnist")
    probe_index = choose_probe_set(dataset.test_labels, args.probe_size, len(dataset.class_names))
    probe_x = to_batch(dataset.test_images[probe_index])
    probe_y = mx.nd.array(dataset.test_labels[probe_index].astype(np.float32))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="latentlapse-bench-") as tmp:
        variants = [TrainerVariant(NO_HOOK, dataset, probe_x, probe_y, args)]
        variants.append(TrainerVariant(DEFAULT_HOOK, dataset, probe_x, probe_y, args, hook_interval=10,
                                       out_dir=os.path.join(tmp, "default-hook")))
        variants.append(TrainerVariant(EVERY_STEP, dataset, probe_x, probe_y, args, hook_interval=1,
                                       out_dir=os.path.join(tmp, "every-step")))
        if args.options:
            variants.append(TrainerVariant(EVAL_ONLY_IMAGES, dataset, probe_x, probe_y, args,
                                           out_dir=os.path.join(tmp, "eval-only-images"),
                                           hook_factory=eval_only_images_hook))
        if args.torch_python:
            data_file = os.path.join(tmp, "mnist.npz")
            np.savez(data_file, train_images=dataset.train_images,
                     probe_images=dataset.test_images[probe_index])
            variants.append(TorchVariant(args.torch_python, data_file, args))
            print(f"pytorch peer: torch {variants[-1].info['torch']}, {variants[-1].info['threads']} thread(s), "
                  f"{variants[-1].info['parameters']:,} parameters", file=sys.stderr)
        else:
            print("pytorch peer skipped: pass --torch-python PATH (a Python with torch and numpy)", file=sys.stderr)
        for v in variants:  # step-0 EVAL pass and warm-up steps, untimed (first calls build the kernels)
            if isinstance(v, TrainerVariant):
                v.evaluate()
            if args.warmup_steps:
                v.run_block(args.warmup_steps)
        blocks = {v.name: [] for v in variants}
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for v in order:
                block = v.run_block(args.block_steps)
                block.update(steps=args.block_steps, round=r)
                blocks[v.name].append(block)
                print(f"round {r + 1}/{args.rounds} {v.name:>16}: "
                      f"{args.block_steps * args.batch_size / block['seconds']:7.1f} img/s "
                      f"(train steps {args.block_steps * args.batch_size / block['train_seconds']:.1f} img/s, "
                      f"{block['evals']} EVAL passes {block['eval_seconds']:.2f} s, loss {block['loss']:.4f})",
                      file=sys.stderr, flush=True)
        for v in variants:
            v.close()
    load_after = os.getloadavg()
    report = {"threads": args.threads, "rounds": args.rounds, "block_steps": args.block_steps,
              "batch_size": args.batch_size, "eval_every": args.eval_every, "probe_size": args.probe_size,
              "load_before": load_before, "load_after": load_after,
              "summary": [summarise(name, b, args.batch_size) for name, b in blocks.items()],
              "ratios": {}, "blocks": blocks}
    for name, b in blocks.items():
        report["ratios"][name] = {"wall": paired_ratio(blocks[NO_HOOK], b, "seconds"),
                                  "cpu": paired_ratio(blocks[NO_HOOK], b, "cpu_seconds")}
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def print_report(report: dict) -> None:
    print(f"\n{report['threads']} thread(s), {report['rounds']} rounds x {report['block_steps']} steps "
          f"(batch {report['batch_size']}, EVAL pass over {report['probe_size']} probe images every "
          f"{report['eval_every']} steps); load average {report['load_before'][0]:.1f} before, "
          f"{report['load_after'][0]:.1f} after\n")
    print("| variant | images/s (median) | min-max | vs no hook | train steps only, images/s "
          "| one EVAL pass | images per CPU-second | vs no hook (CPU) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in report["summary"]:
        ratio = report["ratios"][s["variant"]]
        eval_pass = f"{s['eval_pass_seconds']:.2f} s" if s["eval_pass_seconds"] else "-"
        print(f"| {s['variant']} | {s['images_per_second']:.1f} | {s['min']:.0f}-{s['max']:.0f} | "
              f"{ratio['wall']:.3f} | {s['train_step_images_per_second']:.1f} | {eval_pass} | "
              f"{s['images_per_cpu_second']:.1f} | {ratio['cpu']:.3f} |")


# ---------------------------------------------------------------------------------------------
# Does a default run learn?


def learning(args) -> int:
    from smdebug import modes
    from smdebug.trials import create_trial

    from trainer import data

    set_threads(1)
    with tempfile.TemporaryDirectory(prefix="latentlapse-learn-") as tmp:
        out = os.path.join(tmp, "tensors")
        cmd = [sys.executable, "-m", "trainer", "--out", out, "--steps", str(args.steps),
               "--eval-every", str(args.eval_every), "--no-progress"]
        print("running:", " ".join(cmd), file=sys.stderr, flush=True)
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True)
        seconds = time.perf_counter() - start
        run = json.loads(Path(out, "latentlapse-run.json").read_text())
        trial = create_trial(out)
        steps = trial.steps(mode=modes.EVAL)
        inputs = trial.tensor("convolutionalautoencoder0_input_0").value(steps[0], mode=modes.EVAL)
        x = inputs.reshape(len(inputs), -1).astype(np.float64)
        # The best single grey is the mean pixel: its L2Loss (0.5 * MSE) is half the pixel variance.
        grey = 0.5 * float(x.var())
        train = data.load("mnist").train_images.reshape(60000, -1).astype(np.float64) / 255.0
        mean_image = 0.5 * float(((x - train.mean(axis=0)) ** 2).mean())
        rows = []
        for k, step in enumerate(steps):
            loss = float(trial.tensor("l2loss0_output_0").value(step, mode=modes.EVAL).mean())
            recon = trial.tensor("l2loss0_input_0").value(step, mode=modes.EVAL).reshape(len(x), -1)
            rows.append((run["eval_steps"][k], loss, own_nearest_fraction(recon.astype(np.float64), x)))
    print(f"\ntrainer CLI: {run['steps']} steps in {seconds:.0f} s "
          f"({run['progress']['images_per_second']} img/s by its own count), load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print(f"constant grey (probe pixel mean) {grey:.4f}; mean training image {mean_image:.4f}\n")
    print("| train step | probe loss | / best grey | reconstruction nearest to own input |")
    print("| --- | --- | --- | --- |")
    for step, loss, own in rows:
        print(f"| {step} | {loss:.4f} | {loss / grey:.2f} | {own:.1%} |")
    return 0


def own_nearest_fraction(recon: np.ndarray, inputs: np.ndarray) -> float:
    """Fraction of images whose reconstruction is nearer to its own input than to any other probe input.

    A collapsed model (one picture for every input) scores about 1/N; a useful one close to 1.
    """
    d = (recon ** 2).sum(1)[:, None] - 2 * recon @ inputs.T + (inputs ** 2).sum(1)[None, :]
    return float((d.argmin(axis=1) == np.arange(len(recon))).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("throughput", help="images/s: no hook, default hook, save every step, PyTorch peer")
    t.add_argument("--threads", type=int, default=1, help="MXNet and torch threads (default 1, the trainer's)")
    t.add_argument("--rounds", type=int, default=6)
    t.add_argument("--block-steps", type=int, default=100, help="train steps per variant per round")
    t.add_argument("--warmup-steps", type=int, default=25)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--eval-every", type=int, default=25)
    t.add_argument("--probe-size", type=int, default=1000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--torch-python", help="a Python with torch and numpy; without it the peer is skipped")
    t.add_argument("--json", help="also write every block's timings here")
    t.add_argument("--options", action="store_true",
                   help="also time a hook option: images and reconstructions saved on EVAL only")
    l_ = sub.add_parser("learning", help="run the trainer CLI once and report the probe loss per EVAL step")
    l_.add_argument("--steps", type=int, default=938)
    l_.add_argument("--eval-every", type=int, default=100)
    args = p.parse_args(argv)
    return throughput(args) if args.command == "throughput" else learning(args)


if __name__ == "__main__":
    sys.exit(main())
