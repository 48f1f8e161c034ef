"""``latentlapse compare REPORT REPORT [...]``: one comparison site of two to eight reports.

    latentlapse compare runs/A/site runs/B/site            # the demo's reports
    latentlapse compare out-seed-1 out-seed-2 --follow     # compose's, while one still trains

The comparison goes to ``--out``, by default ``compare/NAME`` in the folder that holds the runs
(``runs/compare/A-vs-B`` for the demo's), where the runs index (``runs/index.html``) lists it.
Exit codes: 0 done, 1 a report or folder that cannot be compared (one line says why), 2 a bad
option.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
import time
from pathlib import Path

from latentlapse import report_layout as layout
from latentlapse.options import OptionError
from reporter import ReporterError
from reporter.compare import site
from reporter.compare.comparison import MAX_RUNS, compare
from reporter.compare.outputs import write_outputs
from reporter.compare.reports import Report, display_name, read_report, run_folder
from reporter.config import COMPARE_OPTIONS
from reporter.site.runs_index import is_runs_index, write_runs_index
from reporter.state import HEARTBEAT_SECONDS

log = logging.getLogger("reporter.compare")
PROG = "latentlapse compare"
FOLDER = layout.COMPARISONS           # the comparisons' folder beside the runs
# Outputs (GIF, MP4, figure) are remade at most this often while following, and at the end.
OUTPUTS_EVERY = 30.0


def default_out(folders: list[Path], names: list[str]) -> Path:
    """``compare/<a>-vs-<b>`` in the folder that holds the runs, or in the working folder if they differ."""
    homes = {run_folder(f).parent for f in folders}
    home = homes.pop() if len(homes) == 1 else Path(".")
    name = "-vs-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", n).strip("._") or "run" for n in names)
    return home / FOLDER / name[:120]


def unique_names(folders: list[Path]) -> list[str]:
    """Each report's name (reports.display_name), made unique with " (2)", " (3)"..."""
    names, seen = [], {}
    for f in folders:
        name = display_name(f)
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def parse(argv: list[str]) -> tuple[dict, list[Path]]:
    p = COMPARE_OPTIONS.parser(prog=PROG, usage=f"{PROG} REPORT REPORT [REPORT ...] [options]",
                               description="Compare two to eight reports of one probe set: aligned maps side by "
                                           "side, in step, with their settings and quality curves.")
    p.add_argument("reports", nargs="*", metavar="REPORT", help="report folders (the reporter's --out)")
    args = p.parse_args(argv)
    options = {**COMPARE_OPTIONS.defaults(), **COMPARE_OPTIONS.values(args, environ={})}
    folders = [Path(r) for r in args.reports]
    if not 2 <= len(folders) <= MAX_RUNS:
        raise OptionError(f"{PROG} takes 2 to {MAX_RUNS} report folders, got {len(folders)}: "
                          f"e.g. {PROG} runs/A/site runs/B/site")
    return options, folders


def _read_all(folders, names, options) -> list[Report]:
    """Every report; while following, wait (up to --wait-timeout) for one that is not there or has no frame yet."""
    deadline = time.monotonic() + options["wait_timeout"]
    while True:
        waiting = options["follow"] and time.monotonic() < deadline
        try:
            reports = [read_report(f, n) for f, n in zip(folders, names)]
        except ReporterError:
            if not waiting:
                raise
        else:
            if not (waiting and any(not r.frames for r in reports)):
                return reports
        time.sleep(options["poll_interval"])


def run(options: dict, folders: list[Path], command: str) -> Path:
    names = unique_names(folders)
    out = Path(options["out"]) if options["out"] else default_out(folders, names)
    site.check_folder(out)
    reports = _read_all(folders, names, options)
    outputs_at = float("-inf")
    outputs = None
    while True:
        comparison = compare(reports, options["match"])
        following = options["follow"] and any(r.live and not site.is_silent(r) for r in reports)
        if not following or time.monotonic() - outputs_at >= OUTPUTS_EVERY:
            outputs = _outputs(out, comparison, options, final=not following)
            outputs_at = time.monotonic()
        site.write_site(out, comparison, live=following, outputs=outputs, command=command)
        _update_runs_index(out)
        if not following:
            return out
        saved = time.monotonic()
        while not any([r.refresh() for r in reports]) and time.monotonic() - saved < HEARTBEAT_SECONDS:
            time.sleep(options["poll_interval"])


def _outputs(out: Path, comparison, options, final: bool) -> dict:
    """The GIF and MP4 (reporter/compare/outputs.py), and the figure once nothing trains any more."""
    return write_outputs(out, comparison, site.titles(comparison), delay_ms=options["gif_delay_ms"],
                         threads=options["threads"], figure=final)


def _update_runs_index(out: Path) -> None:
    """Rebuild the runs index beside the comparisons' folder, if there is one, so it links this comparison."""
    index = out.resolve().parent.parent / layout.PAGE
    if out.resolve().parent.name == FOLDER and is_runs_index(index):
        try:
            write_runs_index(index)
        except (OSError, ReporterError) as exc:
            log.warning("the runs index %s was not updated: %s", index, exc)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        options, folders = parse(argv)
        os.environ.setdefault("OMP_NUM_THREADS", str(options["threads"]))
        command = " ".join(shlex.quote(a) for a in ["latentlapse", "compare", *argv])
        out = run(options, folders, command)
    except OptionError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except ReporterError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"{PROG}: site at {out / layout.PAGE}")
    return 0
