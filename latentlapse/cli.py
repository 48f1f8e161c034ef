"""``latentlapse``: one command for the whole project.

    latentlapse report --tensors STORE --out SITE [--follow]   the reporter (python -m reporter)
    latentlapse train --out STORE [...]                        the trainer (python -m trainer)
    latentlapse tensors STORE                                  what a store holds, and each tensor's role
    latentlapse figure --report SITE [--steps ...]             re-make a report's paper figure
    latentlapse cut --tensors STORE --out SITE                 a finished report's final cut
    latentlapse compare SITE SITE [...] [--follow]             two to eight reports side by side, in step
    latentlapse --version

Each subcommand hands its arguments to the service's own command line, unchanged, so options,
environment variables, messages and exit codes are the ones ``--help`` of that service shows.
The services are imported only when asked for: the reporter's install has no MXNet, the trainer's
needs no openTSNE.
"""

from __future__ import annotations

import sys
from typing import List, Optional

# subcommand -> (module to import, what to prepend to the arguments, the extra that installs it)
COMMANDS = {
    "report": ("reporter.cli", [], "reporter"),
    "tensors": ("reporter.cli", ["tensors"], "reporter"),
    "figure": ("reporter.cli", ["figure"], "reporter"),
    "cut": ("reporter.cli", ["cut"], "reporter"),
    "compare": ("reporter.cli", ["compare"], "reporter"),
    "train": ("trainer.cli", [], "trainer"),
}
SUMMARY = {
    "report": "follow a tensor store and keep its time-lapse site up to date",
    "tensors": "list a store's tensors and the role each would take",
    "figure": "re-make a finished report's paper figure",
    "cut": "make a finished report's final cut (all frames re-embedded together, in final/)",
    "compare": "compare two to eight reports of one probe set: aligned maps side by side, in step",
    "train": "train the autoencoder and write its tensor store",
}
EXIT_USAGE = 2


def version() -> str:
    """The installed distribution's version, or ``unknown`` when run from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("latentlapse")
    except PackageNotFoundError:
        return "unknown (not installed)"


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: latentlapse COMMAND [options]   (latentlapse COMMAND --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {SUMMARY[name]}" for name in COMMANDS]
    lines += ["", "  --version  print the version"]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point; returns the exit code of the subcommand it runs."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        print(f"latentlapse {version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"latentlapse: error: unknown command {name!r}: use one of {', '.join(COMMANDS)} "
              "(latentlapse --help)", file=sys.stderr)
        return EXIT_USAGE
    module, prefix, extra = COMMANDS[name]
    try:
        service = __import__(module, fromlist=["main"])
    except ImportError as exc:
        print(f"latentlapse: error: `latentlapse {name}` needs the {extra} extra ({exc}): "
              f"pip install \"latentlapse[{extra}]\"", file=sys.stderr)
        return 1
    return service.main(prefix + rest)
