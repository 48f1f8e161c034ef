"""The trainer's options: one object, settable from the command line and from TRAINER_* variables."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone

from trainer import TrainerError

ENV_PREFIX = "TRAINER_"


@dataclass
class TrainerConfig:
    out: str = ""                 # tensor store: a folder or s3://bucket/prefix; default runs/<time>/tensors
    dataset: str = "mnist"
    data_dir: str | None = None
    cache_dir: str | None = None
    mirror: str | None = None     # base URL to download the dataset from instead of the public mirrors
    steps: int | None = None      # train steps; default: --epochs worth of full batches
    epochs: float = 1.0
    batch_size: int = 64
    lr: float = 3e-4              # Adam at 1e-3 collapses this model to a constant grey image on MNIST
    # Without a warm-up, 3 of 8 seeds saturated the output sigmoid (an all-black image) in the
    # first steps and stayed there; with 200 steps none did (docs/benchmarks.md, "Learning-rate warm-up").
    warmup_steps: int = 200
    eval_every: int = 25
    probe_size: int = 1000
    save_interval: int = 10
    seed: int = 0
    # One thread each for trainer and reporter shares 2 cores well; all cores for MXNet collapsed
    # 5x when another busy process ran beside it (see README, "Threads").
    threads: int = 1
    overwrite: bool = False
    progress: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


HELP = {
    "out": "tensor store: a folder or s3://bucket/prefix (default: runs/<UTC time>/tensors)",
    "dataset": "mnist or fashion-mnist",
    "data_dir": "folder holding the four IDX files (gz or raw); default: cache, offline package, download",
    "cache_dir": "where checked dataset files are kept (default ~/.cache/latentlapse)",
    "mirror": "base URL to download the IDX .gz files from (default: the public mirrors)",
    "steps": "number of train steps (overrides --epochs)",
    "epochs": "number of passes over the 60,000 training images",
    "batch_size": "images per train step",
    "lr": "Adam learning rate",
    "warmup_steps": "raise the learning rate linearly from 0 to --lr over the first N steps (0: no warm-up)",
    "eval_every": "train steps between two EVAL passes over the probe set (one frame each)",
    "probe_size": "probe images, the same at every EVAL step (equal per class: a multiple of 10 up to "
                  "10 x the smallest test class, 8,920 for MNIST; beyond that as equal as the test set "
                  "allows, up to all 10,000)",
    "save_interval": "save TRAIN tensors every N steps (every EVAL step is saved)",
    "seed": "random seed (weights, batch order)",
    "threads": "CPU threads for MXNet (OMP_NUM_THREADS)",
    "overwrite": "replace the run already in --out (deletes only that run's files)",
    "progress": "print a progress line",
}


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _parse_bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise TrainerError(f"{name}={text!r} is not a boolean: use 1 or 0")


def parser() -> argparse.ArgumentParser:
    """The command line; every option's default comes from its TRAINER_* variable when set."""
    p = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Train the convolutional autoencoder on MNIST with a smdebug hook writing a tensor store.",
        epilog="Every option can also be set by an environment variable, e.g. TRAINER_STEPS=200.",
    )
    for f in fields(TrainerConfig):
        flag = "--" + f.name.replace("_", "-")
        env = _env_name(f.name)
        if f.type in ("bool", bool):
            # A --x / --no-x pair by hand: argparse only has an action for it from Python 3.9, and the
            # SageMaker MXNet 1.9 image runs this package on Python 3.8.
            p.add_argument(flag, dest=f.name, action="store_const", const=True, default=None,
                           help=f"{HELP[f.name]} [{env}]")
            p.add_argument("--no-" + flag[2:], dest=f.name, action="store_const", const=False,
                           help=argparse.SUPPRESS)
        else:
            p.add_argument(flag, default=None, metavar=f.name.upper(), help=f"{HELP[f.name]} [{env}]")
    return p


def from_args(argv: list[str] | None = None, environ: dict | None = None) -> TrainerConfig:
    """Build and check a config: command line first, then TRAINER_* variables, then defaults."""
    environ = os.environ if environ is None else environ
    args = vars(parser().parse_args(argv))
    values = {}
    for f in fields(TrainerConfig):
        raw = args[f.name]
        source = "--" + f.name.replace("_", "-")
        if raw is None and _env_name(f.name) in environ:
            raw, source = environ[_env_name(f.name)], _env_name(f.name)
        if raw is None:
            continue
        kind = f.type
        try:
            if kind in ("bool", bool):
                values[f.name] = raw if isinstance(raw, bool) else _parse_bool(raw, source)
            elif kind in ("int", "int | None"):
                values[f.name] = int(raw)
            elif kind in ("float", "float | None"):
                values[f.name] = float(raw)
            else:
                values[f.name] = str(raw)
        except ValueError:
            raise TrainerError(f"{source}={raw!r} is not a number") from None
    config = TrainerConfig(**values)
    validate(config)
    if not config.out:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        config.out = os.path.join("runs", stamp, "tensors")
    return config


def validate(config: TrainerConfig) -> None:
    """Raise TrainerError for an option no run can use (dataset-dependent checks come later)."""
    for name in ("batch_size", "eval_every", "save_interval", "probe_size", "threads"):
        if getattr(config, name) <= 0:
            raise TrainerError(f"--{name.replace('_', '-')} must be a positive integer, "
                               f"got {getattr(config, name)}")
    if config.steps is not None and config.steps <= 0:
        raise TrainerError(f"--steps must be a positive integer, got {config.steps}")
    if config.steps is None and config.epochs <= 0:
        raise TrainerError(f"--epochs must be positive, got {config.epochs}")
    if not config.lr > 0:
        raise TrainerError(f"--lr must be positive, got {config.lr}")
    if config.warmup_steps < 0:
        raise TrainerError(f"--warmup-steps must be 0 or a positive integer, got {config.warmup_steps}")
