"""The index of runs: one ``index.html`` listing every report in a folder, newest first.

``docker compose`` writes each run's report to ``./out/<run>/`` and ``make demo`` to
``runs/<run>/site/``; a reporter given ``--runs-index PATH`` rewrites ``PATH`` (in the folder
holding those runs) whenever its own status changes, and otherwise at most every
:data:`REFRESH_EVERY` seconds. It is rebuilt from the folder listing every time, never patched,
so it is right whoever writes it last: two reporters that finish at once take turns under a
lock file (``flock``), and each writes its own ``state.json`` before taking the lock, so the
second one to write sees both final states. The file itself is replaced atomically.

A folder ``D`` is a report when ``D/state.json`` or ``D/site/state.json`` exists. Everything
shown comes from a trial or a user (run names, datasets) and goes through Jinja2's autoescape;
links are percent-encoded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from latentlapse import atomic
from latentlapse import report_layout as layout
from reporter import ReporterError
from reporter.compare.comparison import MAX_RUNS
from reporter.trial.steps import total_steps
from reporter.state import LIVE_STATUSES, STATE_FILE, ReportState, epoch, silent_for

# Where a report lives inside a run's folder: compose writes the report itself, the demo a site/.
REPORT_PLACES = ("", "site")
LOCK_FILE = ".latentlapse-index.lock"
log = logging.getLogger("reporter.site.runs_index")
RUN_METADATA = layout.RUN  # the site's redacted copy of the trainer's run file
# A live run's index also changes as frames arrive: refreshed at most this often (seconds).
REFRESH_EVERY = 30.0
# The page reloads itself this often while a run listed in it is live.
PAGE_REFRESH_SECONDS = 15
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
# The runs index says what it is in its first lines (runs.html.j2), so a rebuild never replaces someone else's page.
MARK = '<meta name="generator" content="latentlapse runs index">'



@dataclass
class RunRow:
    """One report as the index lists it."""

    name: str
    href: str
    status: str
    status_note: str
    dataset: str
    steps: str
    frames: int
    final_loss: str
    knn: str
    thumbnail: str | None
    started: float
    problem: str | None = None


@dataclass
class ComparisonRow:
    """One comparison (``latentlapse compare``) in the folder's ``compare/``."""

    name: str
    href: str
    runs: list[str]
    shared: int
    live: bool


@dataclass
class PickRow:
    """A run as the compare command names it: its report's path from the folder above the index."""

    name: str
    path: str


def find_comparisons(folder: Path) -> list[ComparisonRow]:
    """Every comparison under ``folder/compare/``, by name; one it cannot read is left out."""
    rows = []
    for info in sorted((folder / layout.COMPARISONS).glob(f"*/{layout.COMPARE_INFO}")):
        try:
            obj = json.loads(info.read_text(encoding="utf-8"))
            runs = [str(r.get("name")) for r in obj.get("runs") or []]
            shared = int(obj.get("shared_points") or 0)
        except (OSError, ValueError, TypeError, AttributeError):
            continue
        rel = info.parent.relative_to(folder).as_posix()
        rows.append(ComparisonRow(info.parent.name, quote(f"{rel}/{layout.PAGE}"), runs, shared, bool(obj.get("live"))))
    return rows


def pick_rows(folder: Path, rows: list[RunRow]) -> list[PickRow]:
    """The runs a person may pick for ``latentlapse compare``, newest first, with their report's path."""
    places = dict(find_reports(folder))
    picks = []
    for r in rows:
        report = places.get(r.name)
        if report is not None:
            picks.append(PickRow(r.name, f"{folder.name}/{report.relative_to(folder).as_posix()}".rstrip("/")))
    return picks


def find_reports(folder: Path) -> list[tuple[str, Path]]:
    """(run name, report folder) of every report directly under ``folder``."""
    found = []
    for child in sorted(folder.iterdir(), key=lambda p: p.name):
        if not child.is_dir() or child.name.startswith(".") or child.is_symlink():
            continue  # runs/latest is a link to a run listed anyway
        for place in REPORT_PLACES:
            report = child / place if place else child
            if (report / STATE_FILE).is_file():
                found.append((child.name, report))
                break
    return found


def read_row(name: str, report: Path, index_folder: Path, now: float) -> RunRow:
    """What the index shows of one report; a report it cannot read is listed with the reason."""
    rel = report.relative_to(index_folder).as_posix()
    href = quote(f"{rel}/index.html")
    try:
        state = ReportState.from_json(json.loads((report / STATE_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, ReporterError) as exc:
        return RunRow(name, href, "unreadable", "", "unknown", "–", 0, "–", "–", None,
                      _mtime(report / STATE_FILE), problem=f"state.json unreadable ({type(exc).__name__})")
    run = _run_metadata(report)
    frames = state.frames
    last = frames[-1] if frames else None
    thumb = None
    if last is not None and (report / last.png).is_file():
        thumb = quote(f"{rel}/{last.png}")
    return RunRow(
        name=name, href=href, status=state.status, status_note=_status_note(state, now),
        dataset=DATASET_NAMES.get(str(run.get("dataset", "")), str(run.get("dataset") or "unknown")),
        steps=_steps(run, last), frames=len(frames),
        final_loss=_number(last.eval_loss if last else None),
        knn=_number(last.knn_latent if last else None, digits=3),
        thumbnail=thumb, started=_started(run, report),
    )


def build_rows(index_folder: Path, now: float | None = None) -> list[RunRow]:
    """Every report under ``index_folder``, newest first."""
    now = time.time() if now is None else now
    rows = [read_row(name, report, index_folder, now) for name, report in find_reports(index_folder)]
    return sorted(rows, key=lambda r: (-r.started, r.name))


def render_index(rows: list[RunRow], *, written: datetime | None = None, comparisons=(), picks=()) -> str:
    """The page listing ``rows``, the ``comparisons`` and the compare command of ``picks`` (pure)."""
    from reporter.site.page import template_dir, templates_of

    templates = template_dir()
    css = (templates / "runs.css").read_text(encoding="utf-8")
    script = (templates / "runs.js").read_text(encoding="utf-8")
    # The page allows only its own inline style and its one inline script, by hash.
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    script_digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    written = written or datetime.now(timezone.utc)
    return templates_of(templates).get_template("runs.html.j2").render(
        rows=rows, css=css, style_hash=f"sha256-{digest}", script=script, script_hash=f"sha256-{script_digest}",
        comparisons=list(comparisons), picks=list(picks), compare_runs=MAX_RUNS,
        live=any(r.status in LIVE_STATUSES for r in rows), refresh_seconds=PAGE_REFRESH_SECONDS,
        written=written.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def is_runs_index(path) -> bool:
    """Whether ``path`` is a runs index this module wrote (so it may be rebuilt from its folder)."""
    try:
        with open(path, encoding="utf-8") as f:
            return MARK in f.read(4096)
    except (OSError, UnicodeDecodeError):
        return False


def write_runs_index(path) -> Path:
    """Rebuild the index at ``path`` from its folder's listing, under the folder's lock; atomically.

    Parameters
    ----------
    path : path
        The index file, e.g. ``out/index.html``; the reports are the folders beside it.
    """
    import fcntl

    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ReporterError(f"--runs-index {path}: the folder {folder} does not exist: create it or fix the path")
    if path.exists() and not path.is_file():
        raise ReporterError(f"--runs-index {path} is not a file: give the path of an index.html")
    with open(folder / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            rows = build_rows(folder)
            html = render_index(rows, comparisons=find_comparisons(folder), picks=pick_rows(folder, rows))
            atomic.write_text(path, html)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


class RunsIndex:
    """Keeps one runs index up to date from one reporter: on each status change, else now and then."""

    def __init__(self, path, refresh_every: float = REFRESH_EVERY):
        self.path = Path(path)
        self.refresh_every = refresh_every
        self.status: str | None = None
        self.written_at = float("-inf")
        self.problem: str | None = None  # why the index could not be written, said once

    def update(self, status: str) -> bool:
        """Rewrite the index if ``status`` changed or it is due; True when it was written.

        The index is a convenience beside the report: a folder this reporter may not write (another
        user's ``out/``) is said once in the log and the report goes on.
        """
        due = time.monotonic() - self.written_at >= self.refresh_every
        if status == self.status and not due:
            return False
        self.status, self.written_at = status, time.monotonic()
        try:
            write_runs_index(self.path)
        except (OSError, ReporterError) as exc:  # the folder went away, or another user's
            if self.problem is None:
                self.problem = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
                log.warning("cannot write the runs index %s (%s): the report goes on without it; "
                            "give --runs-index a folder this user can write", self.path, self.problem)
            return False
        self.problem = None
        return True


def check_path(path) -> str:
    """``--runs-index``'s value, checked: one line saying what to do when it cannot work."""
    p = Path(os.path.abspath(path))
    if p.suffix.lower() not in (".html", ".htm"):
        raise ReporterError(f"--runs-index {path}: give the path of the index page, e.g. out/index.html")
    if not p.parent.is_dir():
        raise ReporterError(f"--runs-index {path}: the folder {p.parent} does not exist: create it or fix the path")
    return str(p)


# -- small helpers --------------------------------------------------------------------------


def _run_metadata(report: Path) -> dict:
    try:
        run = json.loads((report / RUN_METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return run if isinstance(run, dict) else {}


def _status_note(state: ReportState, now: float) -> str:
    quiet = silent_for(state.status, state.updated, now)
    if quiet is not None:
        return f"no update for {_duration(quiet)}"
    since = epoch(state.status_since)
    return f"since {_clock(since)}" if since is not None else ""


def _steps(run: dict, last) -> str:
    progress = run.get("progress") if isinstance(run.get("progress"), dict) else {}
    done = progress.get("step", last.global_step if last is not None else None)
    total = total_steps(run)
    if not isinstance(done, int):
        return "–"
    return f"{done:,} of {total:,}" if isinstance(total, int) else f"{done:,}"


def _started(run: dict, report: Path) -> float:
    started = epoch(run.get("started"))
    return started if started is not None else _mtime(report / STATE_FILE)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // (24 * 60)} days"


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _number(value, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) else "–"
