"""The sample's convolutional autoencoder: 28x28 image -> 20 numbers -> 28x28 image (73,909 parameters)."""

from __future__ import annotations

from mxnet.gluon import nn

LATENT_DIM = 20


def _upsample(scale: int) -> nn.HybridLambda:
    return nn.HybridLambda(lambda F, x: F.UpSampling(x, scale=scale, sample_type="nearest"))


# Filters the one-filter transposed convolution is widened to (zeros) so that MKLDNN can run it.
PADDED_FILTERS = 8


class OneFilterConv2DTranspose(nn.Conv2DTranspose):
    """Conv2DTranspose(1, ...) as MKLDNN can run it: same parameters, names and results.

    MXNet's MKLDNN kernels make this model's convolutions about twice as fast on a CPU, but their
    backward of a one-filter transposed convolution fails ("could not create a primitive descriptor
    for a reorder primitive"; two filters fail too). Two ways round it, chosen by ``kernel``:

    - ``"padded"`` (default, the faster): the 1-filter weight is widened with zero filters to
      PADDED_FILTERS, which MKLDNN runs, and only the first output channel is kept;
    - ``"float64"``: the layer is computed in float64, which MKLDNN does not take, so MXNet's own
      kernels run it; slower, but it needs nothing from MKLDNN.

    :func:`choose_kernel` picks the first that works on the machine at hand. Parameters stay
    ``(in_channels, 1, k, k)`` and ``(1,)`` in float32, as in ``nn.Conv2DTranspose``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel = "padded"

    def hybrid_forward(self, F, x, weight, bias=None):
        if self.kernel == "float64":
            args = [F.cast(a, "float64") for a in (x, weight, bias) if a is not None]
            out = F.cast(F.Deconvolution(*args, name="fwd", **self._kwargs), "float32")
        else:
            extra = PADDED_FILTERS - 1
            args = [x, F.concat(weight, F.zeros_like(F.tile(weight, reps=(1, extra, 1, 1))), dim=1)]
            if bias is not None:
                args.append(F.concat(bias, F.zeros_like(F.tile(bias, reps=(extra,))), dim=0))
            out = F.Deconvolution(*args, name="fwd", **{**self._kwargs, "num_filter": PADDED_FILTERS})
            out = F.slice_axis(out, axis=1, begin=0, end=1)
        return self.act(out) if self.act is not None else out

    def choose_kernel(self, x) -> str:
        """Run a forward and backward on ``x``; fall back to float64 if the padded kernel fails here."""
        import os

        import mxnet as mx
        from mxnet import autograd

        # Without MKLDNN both run on MXNet's own kernels, where eight filters cost more than float64.
        candidates = ["float64"] if os.environ.get("MXNET_MKLDNN_ENABLED") == "0" else ["padded", "float64"]
        x = x.copy()
        x.attach_grad()
        while True:
            self.kernel = candidates.pop(0)
            self._clear_cached_op()
            try:
                with autograd.record():
                    out = self(x)
                out.backward()
                mx.nd.waitall()
                return self.kernel
            except mx.MXNetError:
                if not candidates:  # the last one failed too: nothing left to run this layer
                    raise


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
                    # in_channels given: the padded kernel's weights are computed, so not inferable.
                    OneFilterConv2DTranspose(1, kernel_size=5, activation="sigmoid", in_channels=32),
                )

    def hybridize_leaves(self) -> None:
        """Hybridize each layer, not the whole network: a hybridized whole hides the bottleneck from the hook."""
        for sequential in (self.encoder, self.decoder):
            for layer in sequential:
                layer.hybridize()

    def choose_last_kernel(self) -> str:
        """Pick the last layer's kernel that works on this machine (see OneFilterConv2DTranspose).

        Call after ``initialize()`` and before a hook is registered: it runs the network once on
        two blank images (which also completes the deferred initialisation, in layer order).
        """
        import mxnet as mx

        x = mx.nd.zeros((2, 1, 28, 28))
        for layer in [*self.encoder, *list(self.decoder)[:-1]]:
            x = layer(x)
        return self.decoder[-1].choose_kernel(x)

    def hybrid_forward(self, F, x, labels=None):
        return self.decoder(self.encoder(x))


def parameter_count(net: nn.Block) -> int:
    """Number of scalar parameters of an initialised network."""
    return sum(int(p.data().size) for p in net.collect_params().values())
