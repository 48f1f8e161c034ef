"""The reporter's options: one object, settable from the command line and from REPORTER_* variables."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields

from reporter import ReporterError
from reporter.store import DEFAULT_NAMES

ENV_PREFIX = "REPORTER_"


@dataclass
class ReporterConfig:
    tensors: str = ""
    out: str = ""
    training_job: str | None = None
    runs_index: str | None = None
    follow: bool = False
    wait_timeout: float = 600.0
    stall_after: float = 120.0
    poll_interval: float = 1.0
    seed: int = 0
    threads: int = 1
    retries: int = 5
    retry_delay: float = 1.0
    gif_delay_ms: int = 250
    gif_budget_mib: float = 5.0
    mp4_every: int = 25
    figure_frames: int = 6
    figure_width: str = "single"
    latent_regex: str = DEFAULT_NAMES["latent"]
    labels_regex: str = DEFAULT_NAMES["labels"]
    inputs_regex: str = DEFAULT_NAMES["inputs"]
    recon_regex: str = DEFAULT_NAMES["recon"]
    loss_regex: str = DEFAULT_NAMES["loss"]

    def names(self) -> dict[str, str]:
        """The tensor-name regexes by role."""
        return {role: getattr(self, f"{role}_regex") for role in DEFAULT_NAMES}


HELP = {
    "tensors": "the trainer's tensor store: a folder or s3://bucket/prefix",
    "out": "folder for the site, GIF and frames (default: 'site' beside a local store)",
    "training_job": "a SageMaker training job whose debugger output to follow (instead of --tensors)",
    "runs_index": "also keep this index.html of every report in its folder up to date (e.g. out/index.html)",
    "follow": "keep reading until training ends, then finish the last frame and exit",
    "wait_timeout": "seconds to wait for a trial to appear, and for a silent store before giving up (exit 3)",
    "stall_after": "seconds without new steps before the site says the run has stalled",
    "poll_interval": "seconds between two looks at the store",
    "seed": "seed of the embedding (equal inputs give equal frames)",
    "threads": "threads for the embedding",
    "retries": "tries to read a listed step before it is skipped with a note",
    "retry_delay": "seconds between those tries",
    "gif_delay_ms": "display time of each GIF frame (>= 20 ms)",
    "gif_budget_mib": "size the GIF must stay under (GitHub hot-links up to 5 MiB)",
    "mp4_every": "rewrite latentlapse.mp4 every N frames (and when the run ends); each update encodes N frames",
    "figure_frames": "frames in the paper figure (figure.pdf/.svg/.png), evenly spaced in training steps",
    "figure_width": "width of the paper figure: single (3.5 in, one column) or double (7 in)",
    "latent_regex": "regex of the bottleneck tensor",
    "labels_regex": "regex of the labels tensor",
    "inputs_regex": "regex of the input images tensor",
    "recon_regex": "regex of the reconstructions tensor",
    "loss_regex": "regex of the per-sample loss tensor",
}


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m reporter",
        description="Follow a smdebug tensor store and keep a time-lapse of its latent space: frames, "
                    "an animated GIF and a static site. 'python -m reporter tensors PATH' lists the tensors.",
        epilog="Every option can also be set by an environment variable, e.g. REPORTER_FOLLOW=1.",
    )
    for f in fields(ReporterConfig):
        flag = "--" + f.name.replace("_", "-")
        helptext = f"{HELP[f.name]} [{env_name(f.name)}]"
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        else:
            p.add_argument(flag, default=None, metavar=f.name.split("_")[0].upper(), help=helptext)
    return p


def _convert(kind: str, raw, source: str):
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ReporterError(f"{source}={raw!r} is not a boolean: use 1 or 0")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ReporterError(f"{source}={raw!r} is not a number") from None
    return str(raw)


def from_args(argv: list[str] | None = None, environ: dict | None = None) -> ReporterConfig:
    """Build and check a config: command line first, then REPORTER_* variables, then defaults."""
    environ = os.environ if environ is None else environ
    args = vars(parser().parse_args(argv))
    values = {}
    for f in fields(ReporterConfig):
        raw, source = args[f.name], "--" + f.name.replace("_", "-")
        if raw is None and env_name(f.name) in environ:
            raw, source = environ[env_name(f.name)], env_name(f.name)
        if raw is not None:
            values[f.name] = _convert(str(f.type).replace(" | None", ""), raw, source)
    config = ReporterConfig(**values)
    if config.training_job and not config.tensors:
        from reporter.sagemaker_job import debugger_path

        config.tensors = debugger_path(config.training_job)
    if not config.tensors:
        raise ReporterError("no tensor store given: pass --tensors PATH (the trainer's --out) "
                            "or set REPORTER_TENSORS")
    if not config.out:
        if config.tensors.startswith("s3://"):
            raise ReporterError("--out is needed for an s3:// store: pass the folder to write the site into")
        config.out = os.path.join(os.path.dirname(os.path.abspath(config.tensors)), "site")
    for name in ("wait_timeout", "stall_after", "poll_interval", "threads", "retries", "gif_delay_ms",
                 "gif_budget_mib", "mp4_every", "figure_frames"):
        if getattr(config, name) <= 0:
            raise ReporterError(f"--{name.replace('_', '-')} must be positive, got {getattr(config, name)}")
    if config.runs_index:
        from reporter.runs_index import check_path

        config.runs_index = check_path(config.runs_index)
    from reporter.figure import check_width

    check_width(config.figure_width)
    if config.retry_delay < 0:
        raise ReporterError(f"--retry-delay must not be negative, got {config.retry_delay}")
    if not config.tensors.startswith("s3://"):
        config.tensors = os.path.abspath(config.tensors)
    return config
