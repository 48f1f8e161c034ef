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
    from reporter.config import TENSORS_OPTIONS
    from reporter.trial.roles import ROLES, describe, resolve
    from reporter.trial.store import DEFAULT_NAMES, TensorStore

    p = TENSORS_OPTIONS.parser(prog="python -m reporter tensors", usage="%(prog)s PATH [options]",
                               description="List the tensors of a smdebug trial (a folder or s3:// URL) and "
                                           "which tensor each role (latent, labels, ...) would take.")
    p.add_argument("path", help="the tensor store: a folder or s3://bucket/prefix")
    args = p.parse_args(argv)
    options = {**TENSORS_OPTIONS.defaults(), **TENSORS_OPTIONS.values(args, environ={})}
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
    patterns = {role: options[f"{role}_regex"] for role in ROLES}
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
    from reporter.config import FIGURE_OPTIONS
    from reporter.outputs.figure import FIGURE_FILES, write_figure

    p = FIGURE_OPTIONS.parser(prog="python -m reporter figure",
                              description="Re-make figure.pdf/.svg/.png of a report from its frames.")
    options = {**FIGURE_OPTIONS.defaults(), **FIGURE_OPTIONS.values(p.parse_args(argv), environ={})}
    shown = write_figure(options["report"], steps=options["steps"], k=options["frames"],
                         width=options["figure_width"])
    print(f"reporter: figure of training steps {', '.join(map(str, shown))}: "
          + ", ".join(os.path.join(options["report"], f) for f in FIGURE_FILES))
    return 0


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape is not None else "?"


def limit_threads(threads: int) -> None:
    """--threads for the matrix products: the variable for libraries not loaded yet, threadpoolctl for
    those already loaded (a parse hook may have imported numpy, whose BLAS then started one thread
    per core: the frames' last digits depended on the machine)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]))


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
        if argv[:1] == ["compare"]:
            from reporter.compare.cli import main as compare

            return compare(argv[1:])
        if argv[:1] == ["cut"]:
            from reporter.final_cut import main as cut

            _engine()
            return cut(argv[1:])
        from reporter.config import from_args

        config = from_args(argv)
        limit_threads(config.threads)
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
