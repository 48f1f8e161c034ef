"""``python -m reporter``: follow a tensor store; ``python -m reporter tensors PATH``: list its tensors."""

from __future__ import annotations

import logging
import os
import sys

from reporter import ReporterError


def _quiet_third_parties() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")
    logging.getLogger("smdebug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found endpoint for s3" on every poll
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    logging.getLogger("PIL").setLevel(logging.WARNING)


def list_tensors(argv: list[str]) -> int:
    """Print every tensor of a trial with its shape, modes and number of steps."""
    import argparse

    from reporter.store import TensorStore

    p = argparse.ArgumentParser(prog="python -m reporter tensors",
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


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    _quiet_third_parties()
    try:
        if argv[:1] == ["tensors"]:
            return list_tensors(argv[1:])
        from reporter.config import from_args

        config = from_args(argv)
        os.environ.setdefault("OMP_NUM_THREADS", str(config.threads))
        from reporter.pipeline import run

        code = run(config)
        if code == 0:
            print(f"reporter: site at {os.path.join(config.out, 'index.html')}, "
                  f"GIF at {os.path.join(config.out, 'latentlapse.gif')}")
        return code
    except ReporterError as exc:
        print(f"reporter: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reporter: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
