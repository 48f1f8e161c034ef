"""``python -m reporter``: follow a tensor store; ``python -m reporter tensors PATH``: list its tensors;
``python -m reporter figure --report DIR``: re-make a report's paper figure."""

from __future__ import annotations

import logging
import os
import sys

from latentlapse.options import OptionError
from reporter import ReporterError


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
    """Print every tensor of a trial with its shape, modes and number of steps."""
    from latentlapse.options import OneLineParser
    from reporter.store import TensorStore

    p = OneLineParser(prog="python -m reporter tensors",
                      description="List the tensors of a smdebug trial (a folder or s3:// URL).")
    p.add_argument("path")
    args = p.parse_args(argv)
    store = TensorStore(args.path)
    store.open(timeout=0)
    rows = store.inventory()
    width = max([len(r["name"]) for r in rows] + [6])
    print(f"{'tensor':<{width}}  {'shape':<18} {'modes':<12} steps")
    for r in rows:
        shape = "x".join(str(d) for d in r["shape"]) if r["shape"] is not None else "?"
        print(f"{r['name']:<{width}}  {shape:<18} {','.join(r['modes']):<12} {r['steps']}")
    return 0


def make_figure(argv: list[str]) -> int:
    """Re-make a report's paper figure from its frames (no tensor store needed)."""
    from latentlapse.options import OneLineParser
    from reporter.figure import DEFAULT_PANELS, FIGURE_FILES, parse_steps, write_figure

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
        from reporter.config import from_args

        config = from_args(argv)
        os.environ.setdefault("OMP_NUM_THREADS", str(config.threads))
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
