"""The reporter's options: declared once, settable from the command line and from REPORTER_* variables."""

from __future__ import annotations

import os

from latentlapse.contract import ROLES
from latentlapse.options import MAX_SEED, Option, OptionError, Options
from latentlapse.s3 import is_s3
from reporter import ReporterError
from reporter.outputs import defaults

def _parsed_by(module: str, function: str):
    """The parse hook that hands a value to ``module.function``, whose ReporterError is the option's error.

    The module is imported when a value is given, not when the options are: --help and every
    start read this file, and those modules bring numpy (27 ms against 127, ``python -X importtime``).
    """
    def parse(value):
        import importlib

        try:
            return getattr(importlib.import_module(module), function)(value)
        except ReporterError as exc:
            raise BadOption(str(exc)) from None

    return parse


OPTIONS = Options("REPORTER_", [
    Option("tensors", str, "", "the trainer's tensor store: a folder or s3://bucket/prefix "
           "(required, unless --training-job names it)", metavar="PATH"),
    Option("out", str, "", "folder for the site, GIF and frames", metavar="DIR",
           default_text="'site' beside a local store; required for s3://"),
    Option("training_job", str, None, "a SageMaker training job whose debugger output to follow "
           "(instead of --tensors)", metavar="NAME"),
    Option("runs_index", str, None, "also keep this index.html of every report in its folder up to date "
           "(e.g. out/index.html)", metavar="PATH", parse=_parsed_by("reporter.site.runs_index", "check_path")),
    Option("follow", bool, False, "keep reading until training ends, then finish the last frame and exit"),
    Option("wait_timeout", float, 600.0, "seconds to wait for a trial to appear, and for a silent store "
           "before giving up (exit 3)", metavar="SECONDS", above=0),
    Option("stall_after", float, 120.0, "seconds without new steps before the site says the run has stalled",
           metavar="SECONDS", above=0),
    Option("poll_interval", float, 1.0, "seconds between two looks at the store", metavar="SECONDS", above=0),
    Option("seed", int, 0, "seed of the embedding (equal inputs give equal frames)", metavar="N",
           minimum=0, maximum=MAX_SEED),
    Option("threads", int, 1, "threads for the matrix products (BLAS) and x264; the t-SNE gradient uses one",
           metavar="N", minimum=1),
    Option("retries", int, 5, "tries to read a listed step before it is skipped with a note", metavar="N",
           minimum=1),
    Option("retry_delay", float, 1.0, "seconds between those tries", metavar="SECONDS", minimum=0),
    Option("gif_delay_ms", int, defaults.GIF_DELAY_MS, f"display time of each GIF frame (>= {defaults.GIF_MIN_DELAY_MS} ms)",
           metavar="MS", minimum=1),
    Option("gif_budget_mib", float, defaults.GIF_BUDGET / 2**20, "size the GIF must stay under (GitHub hot-links "
           "up to 5 MiB)", metavar="MIB", above=0),
    Option("mp4_every", int, defaults.MP4_EVERY, "rewrite latentlapse.mp4 every N frames (and when the run ends); each "
           "update encodes N frames", metavar="N", minimum=1),
    Option("figure_frames", int, defaults.FIGURE_PANELS, "frames in the paper figure (figure.pdf/.svg/.png), evenly spaced in "
           "training steps", metavar="N", minimum=1),
    Option("figure_width", str, "single", "width of the paper figure: "
           + " or ".join(f"{name} ({inches:g} in)" for name, inches in defaults.FIGURE_WIDTHS_INCHES.items()),
           metavar="WIDTH", choices=tuple(defaults.FIGURE_WIDTHS_INCHES)),
    Option("final_cut", str, "on", "when the run ends, re-embed all frames together (the final cut, in final/: "
           "as good as a fresh t-SNE per frame and steadier than the live frames, docs/benchmarks.md) and rebuild "
           "the GIF, MP4, figure and map from it; off: the report is done when the live frames are",
           metavar="on|off", choices=("on", "off")),
] + [Option(f"{role.name}_regex", str, role.pattern, f"regex of {role.help}", metavar="REGEX")
     for role in ROLES] + [
    Option("image_shape", str, None, "how to reshape each input/reconstruction to a picture: HxW, HxWxC "
           "(channels last) or CxHxW (channels first)", metavar="SHAPE",
           default_text="from the tensor's shape; a flat vector of square length is a square image",
           parse=_parsed_by("reporter.trial.images", "parse_image_shape")),
    Option("mode", str, "", "the smdebug mode whose steps become frames", metavar="MODE",
           choices=("", "eval", "train", "predict"), default_text="eval when the trial has EVAL steps"),
    Option("worker", str, "", "in a multi-worker trial, the worker whose points are shown", metavar="NAME",
           default_text="the first, e.g. worker_0"),
])


# ``python -m reporter tensors PATH``: the report's own role regexes (no variables: a listing reads
# only what it is given).
TENSORS_OPTIONS = Options(None, OPTIONS.pick([f"{role.name}_regex" for role in ROLES], env=False))

# ``python -m reporter figure --report DIR``: re-make a finished report's paper figure.
FIGURE_OPTIONS = Options(None, [
    Option("report", str, None, "the report folder (the reporter's --out)", metavar="DIR", required=True),
    Option("steps", str, None, "training steps to show, e.g. 0,200,500,937", metavar="LIST",
           default_text="evenly spaced", parse=_parsed_by("reporter.outputs.figure", "parse_steps")),
    Option("frames", int, defaults.FIGURE_PANELS, "how many evenly spaced frames when --steps is not given",
           minimum=1),
    *OPTIONS.pick(["figure_width"], env=False),
])


# ``latentlapse compare REPORT REPORT ...``: two to eight reports side by side (reporter/compare/).
COMPARE_OPTIONS = Options(None, [
    Option("out", str, None, "folder for the comparison", metavar="DIR",
           default_text="compare/NAME beside the runs' folders"),
    Option("match", str, "step", "how the runs' frames are put in step: by training step, or by the share of "
           "each run's training done (runs of different lengths)", metavar="HOW", choices=("step", "share")),
    Option("follow", bool, False, "keep the comparison up to date while a run still trains; end with the last run"),
    Option("poll_interval", float, 5.0, "seconds between two looks at the reports while following",
           metavar="SECONDS", above=0),
    Option("wait_timeout", float, 600.0, "seconds to wait, while following, for a report to have its first frame",
           metavar="SECONDS", minimum=0),
    *OPTIONS.pick(["gif_delay_ms", "threads"], env=False),
])


class ReporterConfig(OPTIONS.dataclass("ReporterOptions", __name__)):
    """The reporter's options as attributes (``config.follow``), declared in OPTIONS above."""

    def names(self) -> dict[str, str]:
        """The tensor-name regexes by role."""
        return {role.name: getattr(self, f"{role.name}_regex") for role in ROLES}


class BadOption(ReporterError, OptionError):
    """A bad option value: the command line exits 2 (other user errors exit 1)."""

    exit_code = 2


USAGE = ("%(prog)s (--tensors PATH | --training-job NAME) [options]\n"
         "       %(prog)s tensors PATH\n"
         "       %(prog)s figure --report DIR [--steps LIST]")


def parser():
    """The command line; ``--help`` shows every default and its REPORTER_* variable."""
    return OPTIONS.parser(
        prog="python -m reporter",
        usage=USAGE,
        description="Follow a smdebug tensor store and keep a time-lapse of its latent space: frames, "
                    "an animated GIF and a static site. 'python -m reporter tensors PATH' lists the "
                    "tensors of a store (to choose the --*-regex options); 'python -m reporter figure --report DIR' "
                    "re-makes a report's paper figure.",
        epilog="Every option can also be set by its environment variable (shown in brackets), e.g. "
               "REPORTER_FOLLOW=1; the command line wins. A bad option value exits 2, other errors 1; "
               "a run that failed or stalled exits 3.",
    )


def from_args(argv: list[str] | None = None, environ: dict | None = None) -> ReporterConfig:
    """Build and check a config: command line first, then REPORTER_* variables, then defaults.

    Raises
    ------
    BadOption
        One line naming the option (or variable) and what to pass.
    ReporterError
        If the training job named by --training-job cannot be read.
    """
    try:
        config = ReporterConfig(**OPTIONS.values(parser().parse_args(argv), environ))
    except OptionError as exc:
        raise BadOption(str(exc)) from None
    if config.training_job and not config.tensors:
        from reporter.trial.sagemaker_job import debugger_path

        config.tensors = debugger_path(config.training_job)
    if not config.tensors:
        raise BadOption("no tensor store given: pass --tensors PATH (the trainer's --out) "
                        "or set REPORTER_TENSORS")
    if not config.out:
        if is_s3(config.tensors):
            raise BadOption("--out is needed for an s3:// store: pass the folder to write the site into")
        config.out = os.path.join(os.path.dirname(os.path.abspath(config.tensors)), "site")
    if not is_s3(config.tensors):
        config.tensors = os.path.abspath(config.tensors)
    return config
