"""Training speed with and without the smdebug hook, against the same model in PyTorch; and does it learn.

``throughput``: images/s of the trainer's step (trainer.model, trainer.data, trainer.train.to_batch,
trainer.hook.create_hook; Adam + L2Loss, batch 64, an EVAL pass over the 1,000-image probe set
after every 25th step as in trainer/train.py) for these variants, interleaved in one run:

    no hook            the same model and steps, no hook registered
    default hook       create_hook(out, 10): TRAIN saved every 10 steps, every EVAL pass saved
    save every step    create_hook(out, 1)
    option: ...        with --options: images and reconstructions saved on EVAL only
    pytorch            benchmarks/torch_peer.py under --torch-python (left out without it)

Each round runs a block of ``--block-steps`` steps of every variant, the order rotating between
rounds; each variant keeps its model, optimizer and tensor store across rounds. Reported: medians
over rounds and per-round (paired) ratios against "no hook", in wall time and in process CPU time.

``layers``: forward + backward time of each layer alone: MXNet without MKLDNN, MXNet with MKLDNN
(as the trainer runs it), PyTorch. ``seeds``: the trainer CLI for seeds 0..N-1 with and without its
learning-rate warm-up, final probe loss against an all-black and the best grey image. ``learning``:
runs the trainer CLI once (the default one-epoch run) and reads the probe loss of every EVAL step
back from the store, against constant-image baselines.

    .venv/bin/python benchmarks/training.py throughput --options --torch-python /work/torchvenv/bin/python
    .venv/bin/python benchmarks/training.py layers --torch-python /work/torchvenv/bin/python
    .venv/bin/python benchmarks/training.py seeds
    .venv/bin/python benchmarks/training.py learning
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
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "benchmarks" / "torch_peer.py"
sys.path.insert(0, str(ROOT))

from timing import median_call_ms, timed_block  # noqa: E402  (benchmarks/timing.py, beside this script)


def set_threads(threads: int) -> None:
    """What trainer/cli.py does before MXNet is imported (the thread count is fixed at import).
    MKLDNN stays at MXNet's default (on), as in the trainer."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


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
    """An option for the trainer: images and reconstructions saved on EVAL only, TRAIN keeps the rest.

    Two collections: the pictures the frames need (every EVAL step, never TRAIN) and the small
    tensors (latents, labels, per-sample loss) at the trainer's default TRAIN interval.
    """
    from smdebug.core.save_config import SaveConfigMode
    from smdebug.mxnet import modes

    from trainer.hook import COLLECTION, DEFAULT_TRAIN_SAVE_INTERVAL, create_hook

    hook = create_hook(out_dir, DEFAULT_TRAIN_SAVE_INTERVAL)
    hook.get_collection(COLLECTION).include_regex = [
        r"convolutionalautoencoder\d+_hybridsequential0_dense0_output_0",
        r"convolutionalautoencoder\d+_input_1",
        r"l2loss\d+_output_0",
    ]
    hook.include_collections.append("pictures")
    hook.get_collection("pictures").include([r"convolutionalautoencoder\d+_input_0", r"l2loss\d+_input_0"])
    hook.get_collection("pictures").save_config = {modes.TRAIN: SaveConfigMode(end_step=0),  # never
                                                   modes.EVAL: SaveConfigMode(save_interval=1)}
    return hook


# ---------------------------------------------------------------------------------------------
# throughput


def throughput(args) -> int:
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
        hooks["option: images on EVAL only"] = eval_only_images_hook
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


# ---------------------------------------------------------------------------------------------
# layers


def mxnet_layer_times(batch_size: int) -> list[dict]:
    """CPU ms of forward + backward of each layer of the trainer's model alone (as torch_peer --layers),
    of the plain float32 Conv2DTranspose the trainer's float64 last layer replaces, and of a whole
    train step with either last layer."""
    import mxnet as mx
    from mxnet import autograd, gluon, nd
    from mxnet.gluon import nn

    from trainer.model import ConvolutionalAutoencoder

    def plain_last_layer():
        return nn.Conv2DTranspose(1, kernel_size=5, activation="sigmoid")

    def model(plain: bool):
        net = ConvolutionalAutoencoder()
        if plain:  # HybridSequential keeps its layers in _children; swap the last one
            net.decoder._children[str(len(net.decoder) - 1)] = plain_last_layer()
        net.initialize(mx.init.Xavier())
        net.hybridize_leaves()
        return net

    def timed(row, call):
        try:
            row["ms"] = median_call_ms(call)
        except mx.MXNetError as exc:
            row["ms"], row["error"] = None, str(exc).splitlines()[0][:80]
        return row

    def backward_of(layer, x):
        def call():
            with autograd.record():
                out = layer(x)
            out.backward()
            nd.waitall()
        return call

    def gluon_name(layer):
        return next(c for c in type(layer).__mro__ if c.__module__.startswith("mxnet.")).__name__

    net, rows, x = model(plain=False), [], nd.random.uniform(shape=(batch_size, 1, 28, 28))
    for layer in [*net.encoder, *net.decoder]:
        x.attach_grad()
        rows.append(timed({"layer": gluon_name(layer), "input": list(x.shape)}, backward_of(layer, x)))
        last, last_input, x = layer, x, layer(x)
    plain = plain_last_layer()
    plain.initialize()
    plain(last_input)
    plain.weight.set_data(last.weight.data())
    plain.bias.set_data(last.bias.data())
    plain.hybridize()
    row = {"layer": "plain Conv2DTranspose (the trainer's last layer replaces it)", "input": list(last_input.shape),
           "max_difference": float(nd.abs(plain(last_input) - last(last_input)).max().asscalar())}
    try:  # the gradients too, where the plain layer's backward runs
        grads = []
        for layer in (last, plain):
            backward_of(layer, last_input)()
            grads.append(layer.weight.grad())
        row["max_difference"] = max(row["max_difference"], float(nd.abs(grads[0] - grads[1]).max().asscalar()))
    except mx.MXNetError:
        pass
    rows.append(timed(row, backward_of(plain, last_input)))
    images = nd.random.uniform(shape=(batch_size, 1, 28, 28))
    for plain in (False, True):
        whole, loss_fn = model(plain), gluon.loss.L2Loss()
        optimizer = gluon.Trainer(whole.collect_params(), "adam", {"learning_rate": 3e-4})

        def step():
            with autograd.record():
                loss = loss_fn(whole(images), images)
            loss.backward()
            optimizer.step(batch_size)
            loss.mean().asscalar()

        name = "whole train step" + (", plain float32 last layer" if plain else "")
        rows.append(timed({"layer": name, "input": [batch_size, 1, 28, 28]}, step))
    return rows


def layers(args) -> int:
    if args.engine:  # a child process: MXNet reads the MKLDNN switch once, at import
        set_threads(args.threads)
        os.environ["MXNET_MKLDNN_ENABLED"] = "1" if args.engine == "mkldnn" else "0"
        print(json.dumps(mxnet_layer_times(args.batch_size)))
        return 0
    common = ["--threads", str(args.threads), "--batch-size", str(args.batch_size)]
    commands = {f"MXNet {e}": [sys.executable, __file__, "layers", "--engine", e, *common]
                for e in ("native", "mkldnn")}
    if args.torch_python:
        commands["PyTorch"] = [args.torch_python, str(PEER), "--layers", *common]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    columns = {name: json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env)
                                .stdout.splitlines()[-1]) for name, cmd in commands.items()}
    print(f"\nforward + backward of each layer alone, CPU ms, batch {args.batch_size}, "
          f"{args.threads} thread(s); load average {os.getloadavg()[0]:.1f}\n")
    print("| layer | input | " + " | ".join(columns) + " |\n| --- | --- |" + " --- |" * len(columns))
    for name in columns:  # torch_peer has no row for the plain layer: line its whole step up with MXNet's
        by_layer = {r["layer"]: r for r in columns[name]}
        columns[name] = [by_layer.get(r["layer"]) if i > 10 else columns[name][i]
                         for i, r in enumerate(columns["MXNet native"])]
    for i, row in enumerate(columns["MXNet native"]):
        if i == 11:
            totals = [None if any(c[k]["ms"] is None for k in range(11)) else sum(c[k]["ms"] for k in range(11))
                      for c in columns.values()]
            print("| sum of the model's 11 layers | | " + " | ".join(
                "-" if t is None else f"{t:.1f}" for t in totals) + " |")
        cells = [c[i] for c in columns.values()]
        print(f"| {row['layer']} | {'x'.join(map(str, row['input'][1:]))} | " + " | ".join(
            "-" if c is None else "fails" if c["ms"] is None else f"{c['ms']:.1f}" for c in cells) + " |")
    differences = [c[11]["max_difference"] for c in columns.values() if c[11] and "max_difference" in c[11]]
    print(f"\nthe trainer's last layer vs the plain one, same weights: largest difference of output "
          f"or weight gradient {max(differences):.1e}")
    return 0


# ---------------------------------------------------------------------------------------------
# learning


def learning(args) -> int:
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
        run = json.loads(Path(out, "latentlapse-run.json").read_text())
        trial = create_trial(out)
        steps = trial.steps(mode=modes.EVAL)
        x = trial.tensor("convolutionalautoencoder0_input_0").value(steps[0], mode=modes.EVAL)
        x = x.reshape(len(x), -1).astype(np.float64)
        # The best single grey is the mean pixel: its L2Loss (0.5 * MSE) is half the pixel variance.
        grey = 0.5 * float(x.var())
        mean_train = data.load("mnist").train_images.reshape(60000, -1).mean(axis=0, dtype=np.float64) / 255
        mean_image = 0.5 * float(((x - mean_train) ** 2).mean())
        rows = []
        for k, step in enumerate(steps):
            loss = float(trial.tensor("l2loss0_output_0").value(step, mode=modes.EVAL).mean())
            recon = trial.tensor("l2loss0_input_0").value(step, mode=modes.EVAL).reshape(len(x), -1)
            rows.append((run["eval_steps"][k], loss, own_nearest_fraction(recon.astype(np.float64), x)))
    print(f"\ntrainer CLI: {run['steps']} steps in {seconds:.0f} s ({run['progress']['images_per_second']} "
          f"img/s by its own count); load average {os.getloadavg()[0]:.1f}\n")
    print(f"probe loss of the best constant grey {grey:.4f}; of the mean training image {mean_image:.4f}\n")
    print("| train step | probe loss | / best grey | / mean image | reconstruction nearest to its own input |")
    print("| --- | --- | --- | --- | --- |")
    for step, loss, own in rows:
        print(f"| {step} | {loss:.4f} | {loss / grey:.2f} | {loss / mean_image:.2f} | {own:.1%} |")
    return 0


def seeds(args) -> int:
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
        x = trial.tensor("convolutionalautoencoder0_input_0").value(last, mode=modes.EVAL).astype(np.float64)
        loss = float(trial.tensor("l2loss0_output_0").value(last, mode=modes.EVAL).mean())
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


def own_nearest_fraction(recon: np.ndarray, inputs: np.ndarray) -> float:
    """Fraction of reconstructions nearer to their own input than to any other probe input.

    A collapsed model (one picture for every input) scores about 1/N; a useful one close to 1.
    """
    d = (recon ** 2).sum(1)[:, None] - 2 * recon @ inputs.T + (inputs ** 2).sum(1)[None, :]
    return float((d.argmin(axis=1) == np.arange(len(recon))).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("throughput", help="images/s: no hook, default hook, save every step, PyTorch peer")
    y = sub.add_parser("layers", help="forward + backward time per layer: MXNet native and MKLDNN, PyTorch")
    for q in (t, y):
        q.add_argument("--threads", type=int, default=1, help="MXNet and torch threads (default 1, the trainer's)")
        q.add_argument("--batch-size", type=int, default=64)
        q.add_argument("--torch-python", help="a Python with torch and numpy; without it PyTorch is left out")
    t.add_argument("--rounds", type=int, default=16)
    t.add_argument("--block-steps", type=int, default=25, help="train steps per variant per round")
    t.add_argument("--warmup-steps", type=int, default=25)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--lr-warmup", type=int, default=200,
                   help="learning-rate warm-up steps for every variant (the trainer's default)")
    t.add_argument("--eval-every", type=int, default=25)
    t.add_argument("--probe-size", type=int, default=1000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--options", action="store_true", help="also time a hook saving the pictures on EVAL only")
    t.add_argument("--json", help="also write every block's timings to this file")
    y.add_argument("--engine", choices=["native", "mkldnn"], help=argparse.SUPPRESS)
    s = sub.add_parser("seeds", help="trainer CLI per seed, with and without the learning-rate warm-up")
    s.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1")
    s.add_argument("--steps", type=int, default=300)
    s.add_argument("--warmup", type=int, default=200, help="the trainer's --warmup-steps to compare with none")
    s.add_argument("--parallel", type=int, default=2, help="runs at a time (each one MXNet thread)")
    g = sub.add_parser("learning", help="run the trainer CLI once; probe loss per EVAL step against baselines")
    g.add_argument("--steps", type=int, default=938)
    g.add_argument("--eval-every", type=int, default=100)
    args = p.parse_args(argv)
    return {"throughput": throughput, "layers": layers, "seeds": seeds, "learning": learning}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
