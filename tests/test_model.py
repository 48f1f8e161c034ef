"""The model is the sample's: same layers, same shapes, 73,909 parameters."""

import os
import subprocess
import sys
import textwrap

import mxnet as mx
import pytest

from trainer.model import ConvolutionalAutoencoder, parameter_count


@pytest.fixture(scope="module")
def net():
    net = ConvolutionalAutoencoder()
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((2, 1, 28, 28)), mx.nd.zeros((2,)))
    return net


def test_total_parameters_match_the_sample(net):
    assert parameter_count(net) == 73_909


def test_layer_parameters_and_output_shapes(net):
    # (layer, parameters, output shape for a batch of 2) as in the sample's summary
    expected = [
        ("Conv2D", 832, (2, 32, 24, 24)),
        ("MaxPool2D", 0, (2, 32, 12, 12)),
        ("Conv2D", 25_632, (2, 32, 8, 8)),
        ("MaxPool2D", 0, (2, 32, 4, 4)),
        ("Dense", 10_260, (2, 20)),
        ("Dense", 10_752, (2, 512)),
        ("HybridLambda", 0, (2, 32, 4, 4)),
        ("HybridLambda", 0, (2, 32, 8, 8)),
        ("Conv2DTranspose", 25_632, (2, 32, 12, 12)),
        ("HybridLambda", 0, (2, 32, 24, 24)),
        ("Conv2DTranspose", 801, (2, 1, 28, 28)),
    ]
    x = mx.nd.zeros((2, 1, 28, 28))
    got = []
    for layer in [*net.encoder, *net.decoder]:
        x = layer(x)
        params = sum(int(p.data().size) for p in layer.collect_params().values())
        gluon_class = next(c for c in type(layer).__mro__ if c.__module__.startswith("mxnet."))
        got.append((gluon_class.__name__, params, x.shape))
    assert got == expected


def test_last_layer_kernels_compute_what_conv2dtranspose_does():
    # MKLDNN (on in this process) cannot run the plain layer's backward, so compare without it.
    script = textwrap.dedent("""
        import mxnet as mx
        import numpy as np
        from mxnet import autograd
        from mxnet.gluon import nn
        from trainer.model import OneFilterConv2DTranspose

        mx.random.seed(1)
        x = mx.nd.random.uniform(shape=(4, 32, 24, 24))
        layers = [nn.Conv2DTranspose(1, kernel_size=5, activation="sigmoid"),
                  OneFilterConv2DTranspose(1, kernel_size=5, activation="sigmoid", in_channels=32),
                  OneFilterConv2DTranspose(1, kernel_size=5, activation="sigmoid", in_channels=32)]
        layers[2].kernel = "float64"
        results = []
        for layer in layers:
            layer.initialize(mx.init.Xavier())
            layer(x)
            layer.weight.set_data(mx.nd.random.normal(scale=0.05, shape=layer.weight.shape, dtype="float32")
                                  if not results else layers[0].weight.data())
            layer.bias.set_data(mx.nd.array([0.1]))
            layer.hybridize()
            x.attach_grad()
            with autograd.record():
                out = layer(x)
            out.backward(mx.nd.ones_like(out) * 0.5)
            results.append((out, layer.weight.grad(), layer.bias.grad(), x.grad.copy()))
            assert out.dtype == layer.weight.data().dtype == np.float32
        for other in results[1:]:
            for a, b in zip(results[0], other):
                scale = max(float(mx.nd.abs(a).max().asscalar()), 1e-6)
                assert float(mx.nd.abs(a - b).max().asscalar()) / scale < 1e-5, (a.shape, scale)
        print("same")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MXNET_MKLDNN_ENABLED": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "same"


def test_padded_kernel_works_with_mkldnn_and_agrees_with_float64():
    net = ConvolutionalAutoencoder()
    net.initialize(mx.init.Xavier())
    net.hybridize_leaves()
    assert net.choose_last_kernel() == "padded"  # on this machine; float64 is the fallback
    x = mx.nd.random.uniform(shape=(4, 1, 28, 28))
    results = {}
    for kernel in ("padded", "float64"):
        net.decoder[-1].kernel = kernel
        net.decoder[-1]._clear_cached_op()
        with mx.autograd.record():
            loss = ((net(x) - x) ** 2).mean()
        loss.backward()
        results[kernel] = [p.grad().copy() for p in net.collect_params().values()] + [loss]
    for a, b in zip(results["padded"], results["float64"]):
        scale = max(float(mx.nd.abs(a).max().asscalar()), 1e-9)
        assert float(mx.nd.abs(a - b).max().asscalar()) / scale < 1e-4


def test_without_mkldnn_the_float64_kernel_is_chosen():
    script = ("from trainer.model import ConvolutionalAutoencoder\nimport mxnet as mx\n"
              "net = ConvolutionalAutoencoder(); net.initialize(mx.init.Xavier()); net.hybridize_leaves()\n"
              "print(net.choose_last_kernel())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MXNET_MKLDNN_ENABLED": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["float64"]


def test_bottleneck_keeps_the_name_the_reporter_looks_for(net):
    names = list(net.collect_params())
    prefix = net.prefix  # e.g. convolutionalautoencoder0_ (the index counts models per process)
    assert f"{prefix}hybridsequential0_dense0_weight" in names
    assert net.encoder[-1].params.get("weight").shape == (20, 512)


def test_leaf_hybridization_keeps_outputs(net):
    x = mx.nd.random.uniform(shape=(3, 1, 28, 28))
    before = net(x, mx.nd.zeros((3,))).asnumpy()
    net.hybridize_leaves()
    after = net(x, mx.nd.zeros((3,))).asnumpy()
    assert before.shape == (3, 1, 28, 28)
    assert abs(before - after).max() < 1e-5
    assert 0.0 <= after.min() and after.max() <= 1.0  # sigmoid output
