"""``python -m reporter``: follow a tensor store; ``python -m reporter tensors PATH``: list its tensors;
``python -m reporter figure --report DIR``: re-make a report's paper figure;
``python -m reporter cut --tensors STORE --out DIR``: make a finished report's final cut."""

from __future__ import annotations

import logging
import os
import sys

from latentlapse.options import OptionError
from reporter import ReporterError
from reporter.embedding import accelerator


def _quiet_third_parties() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")
    logging.getLogger("smdebug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found endpoint for s3" on every poll
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    logging.getLogger("PIL").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # a line per table when a PDF embeds a font


def list_tensors(argv: list[str]) -> int:
    """Print every tensor of a trial with its shape, modes and steps, then which tensor each role would take."""
    from latentlapse.options import OneLineParser
    from reporter.config import OPTIONS
    from reporter.trial.roles import ROLES, describe, resolve
    from reporter.trial.store import DEFAULT_NAMES, TensorStore

    p = OneLineParser(prog="python -m reporter tensors",
                      description="List the tensors of a smdebug trial (a folder or s3:// URL) and "
                                  "which tensor each role (latent, labels, ...) would take.")
    p.add_argument("path")
    for role in ROLES:
        p.add_argument(f"--{role}-regex", default=DEFAULT_NAMES[role], metavar="REGEX",
                       help=OPTIONS.by_name[f"{role}_regex"].help)
    args = p.parse_args(argv)
    store = TensorStore(args.path)
    store.open(timeout=0)
    rows = store.inventory()
    width = max([len(r["name"]) for r in rows] + [6])
    print(f"{'tensor':<{width}}  {'shape':<18} {'modes':<12} steps")
    for r in rows:
        print(f"{r['name']:<{width}}  {_shape(r['shape']):<18} {','.join(r['modes']):<12} {r['steps']}")
    workers = sorted(store.trial.workers())
    if len(workers) > 1:
        print(f"\nworkers: {', '.join(workers)} (the report shows {workers[0]} unless --worker says otherwise)")
    patterns = {role: getattr(args, f"{role}_regex") for role in ROLES}
    try:
        roles = resolve(patterns, DEFAULT_NAMES, rows)
    except ReporterError as exc:
        print(f"\nroles: {exc}")
        return 1
    print(f"\n{'role':<8} {'tensor':<{width}}  {'shape':<18} note")
    for r in describe(roles, rows):
        print(f"{r['role']:<8} {r['tensor'] or '-':<{width}}  {_shape(r['shape']) if r['tensor'] else '':<18} "
              f"{r['note']}")
    return 0


def make_figure(argv: list[str]) -> int:
    """Re-make a report's paper figure from its frames (no tensor store needed)."""
    from latentlapse.options import OneLineParser
    from reporter.outputs.figure import DEFAULT_PANELS, FIGURE_FILES, parse_steps, write_figure

    p = OneLineParser(prog="python -m reporter figure",
                      description="Re-make figure.pdf/.svg/.png of a report from its frames.")
    p.add_argument("--report", required=True, help="the report folder (the reporter's --out)")
    p.add_argument("--steps", help="training steps to show, e.g. 0,200,500,937 (default: evenly spaced)")
    p.add_argument("--frames", type=int, default=DEFAULT_PANELS,
                   help=f"how many evenly spaced frames when --steps is not given (default {DEFAULT_PANELS})")
    p.add_argument("--figure-width", default="single", help="single (3.5 in) or double (7 in)")
    args = p.parse_args(argv)
    steps = parse_steps(args.steps) if args.steps is not None else None
    shown = write_figure(args.report, steps=steps, k=args.frames, width=args.figure_width)
    print(f"reporter: figure of training steps {', '.join(map(str, shown))}: "
          + ", ".join(os.path.join(args.report, f) for f in FIGURE_FILES))
    return 0
def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape is not None else "?"


def _engine() -> None:
    """One line for an engine setting that cannot hold (LATENTLAPSE_ENGINE), else the engine in the log."""
    if accelerator.PROBLEM:
        raise ReporterError(accelerator.PROBLEM)
    logging.getLogger("reporter").info("embedding engine: %s", accelerator.engine())


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    _quiet_third_parties()
    try:
        if argv[:1] == ["tensors"]:
            return list_tensors(argv[1:])
        if argv[:1] == ["figure"]:
            return make_figure(argv[1:])
        if argv[:1] == ["cut"]:
            from reporter.final_cut import main as cut

            _engine()
            return cut(argv[1:])
        from reporter.config import from_args

        config = from_args(argv)
        os.environ.setdefault("OMP_NUM_THREADS", str(config.threads))
        _engine()
        from reporter.pipeline import run

        code = run(config)
        if code == 0:
            print(f"reporter: site at {os.path.join(config.out, 'index.html')}, "
                  f"GIF at {os.path.join(config.out, 'latentlapse.gif')}")
        return code
    except (ReporterError, OptionError) as exc:
        print(f"reporter: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug: its traceback, then the same line the site shows (exit 3)
        import traceback

        from reporter.pipeline import EXIT_FAILED, internal_error_line

        traceback.print_exc()
        print(f"reporter: error: {internal_error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("reporter: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
