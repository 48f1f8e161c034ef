"""latentlapse reporter: follows a smdebug tensor store and keeps a time-lapse of its latent space.

The reporter never imports MXNet or the trainer: the tensor store is its only input.
"""

__version__ = "0.1.0"


class ReporterError(Exception):
    """The user asked for something impossible; the message says what to do instead."""

    exit_code = 1  # a bad option value exits 2 (see config.BadOption)
