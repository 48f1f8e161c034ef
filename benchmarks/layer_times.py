"""Forward + backward time of each layer of the trainer's model alone: MXNet without MKLDNN, MXNet
with MKLDNN (as the trainer runs it), PyTorch (benchmarks/torch_peer.py --layers under
--torch-python); and the plain float32 last layer the trainer's padded one replaces.

    .venv/bin/python benchmarks/layer_times.py --torch-python /work/torchvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from mxnet_setup import PEER, set_threads  # benchmarks/mxnet_setup.py, beside this script
from timing import median_call_ms  # benchmarks/timing.py, beside this script

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


def run(args) -> int:
    if args.engine:  # a child process: MXNet reads the MKLDNN switch once, at import
        set_threads(args.threads)
        os.environ["MXNET_MKLDNN_ENABLED"] = "1" if args.engine == "mkldnn" else "0"
        print(json.dumps(mxnet_layer_times(args.batch_size)))
        return 0
    common = ["--threads", str(args.threads), "--batch-size", str(args.batch_size)]
    commands = {f"MXNet {e}": [sys.executable, __file__, "--engine", e, *common]
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="MXNet and torch threads (default 1, the trainer's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--torch-python", help="a Python with torch and numpy; without it PyTorch is left out")
    p.add_argument("--engine", choices=["native", "mkldnn"], help=argparse.SUPPRESS)  # the child processes
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
