"""latentlapse reporter: follows a smdebug tensor store and keeps a time-lapse of its latent space.

The reporter never imports MXNet or the trainer: the tensor store is its only input.
"""

import signal

__version__ = "0.1.0"


class ReporterError(Exception):
    """The user asked for something impossible; the message says what to do instead."""

    exit_code = 1  # a bad option value exits 2 (see config.BadOption)


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived: end now, as "stopped" (a BaseException: no ``except Exception`` keeps it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
