"""latentlapse trainer: the sample's convolutional autoencoder on MNIST, watched by smdebug."""

__version__ = "0.1.0"


class TrainerError(Exception):
    """The user asked for something impossible; the message says what to do instead."""

    exit_code = 1  # a bad option value exits 2 (see config.BadOption)
