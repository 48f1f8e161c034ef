"""The sample's convolutional autoencoder: 28x28 image -> 20 numbers -> 28x28 image (73,909 parameters)."""

from __future__ import annotations

from mxnet.gluon import nn

LATENT_DIM = 20


def _upsample(scale: int) -> nn.HybridLambda:
    return nn.HybridLambda(lambda F, x: F.UpSampling(x, scale=scale, sample_type="nearest"))


class Float64Conv2DTranspose(nn.Conv2DTranspose):
    """A Conv2DTranspose whose arithmetic runs in float64; parameters, input and output stay float32.

    MXNet's MKLDNN kernels make the model's convolutions about 1.5x faster on a CPU, but MKLDNN's
    backward of the one-filter Conv2DTranspose(1, 5) fails ("could not create a primitive descriptor
    for a reorder primitive"). MKLDNN takes float32 only, so this one layer runs on MXNet's own
    kernels in float64 while every other layer keeps MKLDNN's; it is the cheapest layer, so the cost
    is small. Names, parameters (float32), initialisation and results (to float32 rounding) are
    those of ``nn.Conv2DTranspose``.
    """

    def hybrid_forward(self, F, x, weight, bias=None):
        args = [F.cast(x, "float64"), F.cast(weight, "float64")]
        if bias is not None:
            args.append(F.cast(bias, "float64"))
        out = F.cast(F.Deconvolution(*args, name="fwd", **self._kwargs), "float32")
        return self.act(out) if self.act is not None else out


class ConvolutionalAutoencoder(nn.HybridBlock):
    """Encoder Conv(32,5)-Pool-Conv(32,5)-Pool-Dense(20); decoder mirrors it with transposed convolutions.

    The network takes the labels as a second input and ignores them, as the sample did: the smdebug
    hook then saves them next to the latents (``..._input_1``), so a reader needs no other file.
    """

    def __init__(self, latent_dim: int = LATENT_DIM, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.encoder = nn.HybridSequential()
            with self.encoder.name_scope():
                self.encoder.add(
                    nn.Conv2D(32, kernel_size=5, activation="relu"),
                    nn.MaxPool2D(2),
                    nn.Conv2D(32, kernel_size=5, activation="relu"),
                    nn.MaxPool2D(2),
                    nn.Dense(latent_dim),  # the bottleneck
                )
            self.decoder = nn.HybridSequential()
            with self.decoder.name_scope():
                self.decoder.add(
                    nn.Dense(512, activation="relu"),
                    nn.HybridLambda(lambda F, x: F.reshape(x, shape=(0, 32, 4, 4))),
                    _upsample(2),
                    nn.Conv2DTranspose(32, kernel_size=5, activation="relu"),
                    _upsample(2),
                    Float64Conv2DTranspose(1, kernel_size=5, activation="sigmoid"),
                )

    def hybridize_leaves(self) -> None:
        """Hybridize each layer, not the whole network: a hybridized whole hides the bottleneck from the hook."""
        for sequential in (self.encoder, self.decoder):
            for layer in sequential:
                layer.hybridize()

    def hybrid_forward(self, F, x, labels=None):
        return self.decoder(self.encoder(x))


def parameter_count(net: nn.Block) -> int:
    """Number of scalar parameters of an initialised network."""
    return sum(int(p.data().size) for p in net.collect_params().values())
