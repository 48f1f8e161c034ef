"""``python -m trainer``: parse options, set up threads and logging, run, turn user errors into one line."""

from __future__ import annotations

import logging
import os
import sys

from trainer import TrainerError


def _quiet_third_parties() -> None:
    import warnings

    # smdebug and protobuf import with DeprecationWarnings that say nothing to our users.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("smdebug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found endpoint for s3" on every poll
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    from trainer.config import from_args

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        config = from_args(argv)
    except TrainerError as exc:
        print(f"trainer: error: {exc}", file=sys.stderr)
        return exc.exit_code
    # Set before MXNet is imported. MKLDNN stays on (MXNet's default, about twice as fast here): the
    # one layer whose MKLDNN backward fails is computed in a form it can run (trainer/model.py).
    os.environ["OMP_NUM_THREADS"] = str(config.threads)
    os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
    _quiet_third_parties()
    try:
        from trainer.train import run

        info = run(config)
    except TrainerError as exc:
        print(f"trainer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("trainer: interrupted", file=sys.stderr)
        return 130
    print(f"trainer: {info.expected_frames} EVAL steps of {info.probe_size} probe images "
          f"saved in {config.out}")
    return 0
