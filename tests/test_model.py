"""The model is the sample's: same layers, same shapes, 73,909 parameters."""

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
        got.append((type(layer).__name__, params, x.shape))
    assert got == expected


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
