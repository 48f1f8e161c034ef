"""Training speed with and without the smdebug hook, against the same model in PyTorch.

Images/s of the trainer's step (trainer.model, trainer.data, trainer.train.to_batch,
trainer.hook.create_hook; Adam + L2Loss, batch 64, an EVAL pass over the 1,000-image probe set
after every 25th step as in trainer/train.py) for these variants, interleaved in one run:

    no hook            the same model and steps, no hook registered
    default hook       create_hook(out, 10): TRAIN saved every 10 steps, every EVAL pass saved
    save every step    create_hook(out, 1)
    option: ...        with --options: reconstructions saved on EVAL only (the probe images
                       are saved at the first EVAL step only by the default hook already)
    pytorch            benchmarks/torch_peer.py under --torch-python (left out without it)

Each round runs a block of ``--block-steps`` steps of every variant, the order rotating between
rounds; each variant keeps its model, optimizer and tensor store across rounds. Reported: medians
over rounds and per-round (paired) ratios against "no hook", in wall time and in process CPU time.

    .venv/bin/python benchmarks/hook_throughput.py --options --torch-python /work/torchvenv/bin/python
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mxnet_setup import PEER, set_threads  # benchmarks/mxnet_setup.py, beside this script
from timing import timed_block  # benchmarks/timing.py, beside this script

# ---------------------------------------------------------------------------------------------
# Variants: each runs blocks of steps and returns their timings


class HookMeter:
    """CPU seconds of the hook itself: its callbacks (main thread) plus smdebug's writer threads.

    Beside the process CPU time this gives the hook's share of a step directly, a figure far less
    shaken by other jobs than a difference of two throughputs. Only timers are put around
    smdebug's functions; what they do is unchanged.
    """

    writer_seconds = 0.0  # every writer thread of the process; variants save one at a time

    def __init__(self, hook):
        self.callback_seconds = 0.0
        for name in ("forward_pre_hook", "forward_hook"):  # before register_block takes them
            setattr(hook, name, self._timed(getattr(hook, name)))
        from smdebug.core.tfevent.event_file_writer import _EventLoggerThread as writer

        if not getattr(writer, "_metered", False):
            run = writer.run

            def metered_run(thread):
                start = time.thread_time()
                try:
                    run(thread)
                finally:
                    HookMeter.writer_seconds += time.thread_time() - start
            writer.run, writer._metered = metered_run, True

    def _timed(self, callback):
        def timed(*args):
            start = time.thread_time()
            try:
                return callback(*args)
            finally:
                self.callback_seconds += time.thread_time() - start
        return timed

    def seconds(self) -> float:
        return self.callback_seconds + HookMeter.writer_seconds


class TrainerVariant:
    """The trainer's model, loss, optimizer, batch order and (optionally) hook.

    ``train_step`` and ``evaluate`` are trainer/train.py's loop body and EVAL pass, restated once
    here because train.run() cannot run without a hook; every variant uses these same lines.
    """

    def __init__(self, name, dataset, probe_x, probe_y, args, hook_factory=None, out_dir=None):
        import mxnet as mx
        from mxnet import gluon

        from trainer.model import ConvolutionalAutoencoder

        self.name, self.dataset, self.probe_x, self.probe_y = name, dataset, probe_x, probe_y
        self.batch_size, self.eval_every = args.batch_size, args.eval_every
        mx.random.seed(args.seed)
        self.rng = np.random.RandomState(args.seed)
        self.net = ConvolutionalAutoencoder()
        self.net.initialize(mx.init.Xavier())
        self.net.hybridize_leaves()
        self.net.choose_last_kernel()
        self.loss_fn = gluon.loss.L2Loss()
        from trainer.train import adam_settings

        self.optimizer = gluon.Trainer(self.net.collect_params(), "adam",
                                       adam_settings(args.lr, getattr(args, "lr_warmup", 0)))
        self.hook = self.meter = None
        if hook_factory is not None:
            self.hook = hook_factory(out_dir)
            self.meter = HookMeter(self.hook)
            self.hook.register_block(self.net)
            self.hook.register_block(self.loss_fn)
        self.order, self.position, self.step = self.rng.permutation(len(dataset.train_labels)), 0, 0

    def evaluate(self) -> float:
        from smdebug.mxnet import modes

        if self.hook is not None:
            self.hook.set_mode(modes.EVAL)
        recon = self.net(self.probe_x, self.probe_y)  # one forward call: one EVAL step
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
        """``steps`` train steps, an EVAL pass after every ``eval_every``-th; wall, CPU and hook time.

        Process CPU time counts every thread (MXNet's engine, smdebug's writer) and moves less
        than wall time when other jobs share the cores.
        """
        hook_start = self.meter.seconds() if self.meter else 0.0
        block = timed_block(self, steps)
        block["hook_cpu_seconds"] = self.meter.seconds() - hook_start if self.meter else 0.0
        return block

    def close(self) -> None:
        if self.hook is not None:
            self.hook.close()


class TorchVariant:
    """benchmarks/torch_peer.py in a child process under its own Python, asked for one block at a time."""

    name = "pytorch"

    def __init__(self, python: str, data_file: str, args):
        cmd = [python, str(PEER), "--data", data_file, "--threads", str(args.threads),
               "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--lr-warmup", str(args.lr_warmup),
               "--eval-every", str(args.eval_every),
               "--seed", str(args.seed)]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._ask(None)

    def _ask(self, request: dict | None) -> dict:
        if request is not None:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the PyTorch peer exited (code {self.process.wait()}): see its error above")
        return json.loads(line)

    def run_block(self, steps: int) -> dict:
        return self._ask({"steps": steps})

    def close(self) -> None:
        self.process.stdin.write(json.dumps({"quit": True}) + "\n")
        self.process.stdin.close()
        self.process.wait(timeout=60)


def eval_only_images_hook(out_dir: str):
    """An option for the trainer: reconstructions saved on EVAL only, TRAIN keeps the rest.

    On top of the trainer's own collections (the probe images are already saved at the first
    EVAL step only): the reconstructions every EVAL step and never on TRAIN; the small tensors
    (latents, labels, per-sample loss) at the trainer's default TRAIN interval.
    """
    from smdebug.core.save_config import SaveConfigMode
    from smdebug.mxnet import modes

    from latentlapse.contract import TENSOR_NAMES
    from trainer.hook import COLLECTION, DEFAULT_TRAIN_SAVE_INTERVAL, create_hook

    hook = create_hook(out_dir, DEFAULT_TRAIN_SAVE_INTERVAL)
    hook.get_collection(COLLECTION).include_regex = [TENSOR_NAMES[r] for r in ("latent", "labels", "loss")]
    hook.include_collections.append("pictures")
    hook.get_collection("pictures").include([TENSOR_NAMES["recon"]])
    hook.get_collection("pictures").save_config = {modes.TRAIN: SaveConfigMode(end_step=0),  # never
                                                   modes.EVAL: SaveConfigMode(save_interval=1)}
    return hook


# ---------------------------------------------------------------------------------------------
# throughput


def run(args) -> int:
    set_threads(args.threads)
    import mxnet as mx

    from trainer import data
    from trainer.hook import create_hook
    from trainer.train import choose_probe_set, to_batch

    dataset = data.load("mnist")
    probe_index = choose_probe_set(dataset.test_labels, args.probe_size, len(dataset.class_names))
    probe = (to_batch(dataset.test_images[probe_index]),
             mx.nd.array(dataset.test_labels[probe_index].astype(np.float32)))
    hooks = {"no hook": None, "default hook": lambda out: create_hook(out, 10),
             "save every step": lambda out: create_hook(out, 1)}
    if args.options:
        hooks["option: reconstructions on EVAL only"] = eval_only_images_hook
    load_before = os.getloadavg()
    # Not a TemporaryDirectory: smdebug's exit handler writes each store's end marker once more,
    # after a with-block would have removed the folder. Handlers run last-registered first, so
    # this one, registered before the hooks', runs after theirs.
    tmp = tempfile.mkdtemp(prefix="latentlapse-bench-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    variants = [TrainerVariant(name, dataset, *probe, args, factory, os.path.join(tmp, f"store{i}"))
                for i, (name, factory) in enumerate(hooks.items())]  # a fresh store each
    if args.torch_python:
        np.savez(os.path.join(tmp, "mnist.npz"), train_images=dataset.train_images,
                 probe_images=dataset.test_images[probe_index])
        variants.append(TorchVariant(args.torch_python, os.path.join(tmp, "mnist.npz"), args))
        print("pytorch peer: torch {torch}, {threads} thread(s), {parameters:,} parameters"
              .format(**variants[-1].info), file=sys.stderr)
    else:
        print("pytorch peer left out: pass --torch-python PATH (a Python with torch and numpy)",
              file=sys.stderr)
    for v in variants:  # untimed: the step-0 EVAL pass, then warm-up steps (first calls build kernels)
        if isinstance(v, TrainerVariant):
            v.evaluate()
        v.run_block(args.warmup_steps)
    blocks = {v.name: [] for v in variants}
    for r in range(args.rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            block = dict(v.run_block(args.block_steps), steps=args.block_steps, round=r)
            blocks[v.name].append(block)
            print(f"round {r + 1}/{args.rounds} {v.name}: {block['seconds']:.1f} s, "
                  f"{block['cpu_seconds']:.1f} CPU-s, loss {block['loss']:.4f}", file=sys.stderr, flush=True)
    for v in variants:
        v.close()
    report = {k: getattr(args, k) for k in ("threads", "rounds", "block_steps", "batch_size", "eval_every",
                                            "probe_size")}
    report.update(load_before=load_before, load_after=os.getloadavg(), blocks=blocks,
                  summary=[summarise(name, b, blocks["no hook"], args.batch_size) for name, b in blocks.items()])
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def summarise(name: str, blocks: list[dict], base: list[dict], batch_size: int) -> dict:
    """Medians over rounds; ratios are per round against the no-hook block of the same round."""
    images = blocks[0]["steps"] * batch_size
    rates = [images / b["seconds"] for b in blocks]
    evals = [b["eval_seconds"] / b["evals"] for b in blocks if b["evals"]]
    return {"variant": name, "images_per_second": statistics.median(rates), "min": min(rates), "max": max(rates),
            "vs_no_hook": statistics.median(a["seconds"] / b["seconds"] for a, b in zip(base, blocks)),
            "train_images_per_second": statistics.median(images / b["train_seconds"] for b in blocks),
            "eval_pass_seconds": statistics.median(evals) if evals else None,
            "images_per_cpu_second": statistics.median(images / b["cpu_seconds"] for b in blocks),
            "vs_no_hook_cpu": statistics.median(a["cpu_seconds"] / b["cpu_seconds"] for a, b in zip(base, blocks)),
            # A ratio of sums over all rounds: the hook's CPU against the whole process's.
            "hook_cpu_share": sum(b.get("hook_cpu_seconds", 0.0) for b in blocks)
            / sum(b["cpu_seconds"] for b in blocks)}


def print_report(report: dict) -> None:
    print(f"\n{report['threads']} thread(s), {report['rounds']} rounds x {report['block_steps']} steps, batch "
          f"{report['batch_size']}, an EVAL pass over {report['probe_size']} probe images every "
          f"{report['eval_every']} steps; load average {report['load_before'][0]:.1f} before, "
          f"{report['load_after'][0]:.1f} after\n")
    print("| variant | images/s (median) | min-max | vs no hook | train steps only, images/s | one EVAL pass "
          "| images per CPU-second | vs no hook (CPU) | hook's share of CPU |")
    print("| --- |" + " --- |" * 8)
    for s in report["summary"]:
        print(f"| {s['variant']} | {s['images_per_second']:.1f} | {s['min']:.0f}-{s['max']:.0f} | "
              f"{s['vs_no_hook']:.3f} | {s['train_images_per_second']:.1f} | {s['eval_pass_seconds']:.2f} s | "
              f"{s['images_per_cpu_second']:.1f} | {s['vs_no_hook_cpu']:.3f} | {s['hook_cpu_share']:.1%} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="MXNet and torch threads (default 1, the trainer's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--torch-python", help="a Python with torch and numpy; without it PyTorch is left out")
    p.add_argument("--rounds", type=int, default=16)
    p.add_argument("--block-steps", type=int, default=25, help="train steps per variant per round")
    p.add_argument("--warmup-steps", type=int, default=25)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr-warmup", type=int, default=200,
                   help="learning-rate warm-up steps for every variant (the trainer's default)")
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--probe-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--options", action="store_true", help="also time a hook saving the reconstructions on EVAL only")
    p.add_argument("--json", help="also write every block's timings to this file")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
