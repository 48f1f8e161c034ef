"""What ``state.json`` holds: the one definition, used by the reporter that writes it and the site.

The state is everything a restarted reporter needs besides the frame files themselves, and
everything the site shows about the report's progress. It is written last after each frame,
atomically, so every file it names is already on disk.

Reading is lenient (a missing key takes its default, so a state written by an older reporter,
or a hand-made one in a test, still loads); writing always writes every key.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar
from datetime import datetime, timezone
from pathlib import Path

from latentlapse import report_layout as layout
from latentlapse.report_layout import (FAILED, FINAL_STATUSES, FINISHED, FINISHING, LIVE_STATUSES, RUNNING, STALLED,
                                       STOPPED, WAITING)
from reporter import ReporterError

__all__ = ["FAILED", "FINAL_STATUSES", "FINISHED", "FINISHING", "LIVE_STATUSES", "RUNNING", "STALLED", "STOPPED",
           "WAITING"]

STATE_FILE = layout.STATE
STATE_FORMAT = 1

# A live reporter saves at least this often, even when nothing changed, so a page can tell a
# reporter that waits from one that was killed (SIGKILL writes nothing): after SILENT_AFTER_SECONDS
# without an update a "running" page, and the runs index, say so (the page stops reloading): one
# fact, the reporter's heartbeat missed, so one number for both. Frame 0 of a large probe set
# takes tens of seconds on a busy machine, hence the margin.
HEARTBEAT_SECONDS = 30
SILENT_AFTER_SECONDS = 180


def now_iso(t: float | None = None) -> str:
    """``t`` (default: now) as an ISO-8601 UTC timestamp to the second."""
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value) -> datetime | None:
    """An ISO-8601 time as ``now_iso`` writes it (UTC if it names no zone), or a datetime; None if unreadable."""
    if isinstance(value, datetime):
        return value
    try:
        t = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def epoch(value) -> float | None:
    """Seconds since 1970 of :func:`parse_time`'s time; None if unreadable."""
    t = parse_time(value)
    return t.timestamp() if t is not None else None


def silent_for(status: str, updated, now: float | None = None) -> float | None:
    """How long a live report has said nothing, if longer than SILENT_AFTER_SECONDS (its reporter missed
    its heartbeats: killed, or its machine stopped); None for a report that is final or heard from."""
    t = epoch(updated)
    if status not in LIVE_STATUSES or t is None:
        return None
    quiet = (time.time() if now is None else now) - t
    return quiet if quiet > SILENT_AFTER_SECONDS else None


def frame_paths(index: int) -> dict[str, str]:
    """The files of frame ``index``, relative to the output folder."""
    stem = layout.frame_stem(index)
    return {"png": stem + ".png", "csv": stem + ".csv", "npz": stem + ".npz"}


def _known(cls, obj: dict, what: str) -> dict:
    if not isinstance(obj, dict):
        raise ReporterError(f"the reporter state's {what} must be a JSON object, got {type(obj).__name__}")
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in obj.items() if k in names}


class _Record:
    """A part of state.json read back by name: unknown keys are dropped, missing ones get ``DEFAULTS``."""

    WHAT: ClassVar[str] = "record"           # the part's name, for the error of a value that is no object
    DEFAULTS: ClassVar[dict] = {}

    @classmethod
    def from_json(cls, obj: dict):
        values = _known(cls, obj, cls.WHAT)
        for key, value in cls.DEFAULTS.items():
            values.setdefault(key, value)
        return cls(**values)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class FrameRecord:
    """One published frame: which EVAL step it shows, its numbers, and its files."""

    index: int
    step: int                           # EVAL-mode step
    global_step: int                    # smdebug's: counts EVAL passes too
    train_step: int | None = None       # train steps done (what frames and captions say); reporter/trial/steps.py
    total_steps: int | None = None      # train steps of the whole run, when the run file says
    png: str = ""
    csv: str = ""
    npz: str = ""
    eval_loss: float | None = None      # mean per-sample loss over the probe set
    train_loss: float | None = None     # mean of the TRAIN losses saved since the last frame
    train_losses: list = field(default_factory=list)   # [[global step, mean loss], ...]
    nonfinite: bool = False             # latents or eval loss held NaN/Inf: the frame repeats the last map
    embed_seconds: float | None = None
    knn_latent: float | None = None
    knn_2d: float | None = None
    trustworthiness: float | None = None
    neighbourhood_preservation: float | None = None  # share of 2-D neighbourhoods kept from the last frame
    dead_units: list | None = None      # bottleneck units at zero for every probe image (finite frames only)
    published: float | None = None      # Unix time the frame's files were all written
    checked: bool | None = None         # its tensors matched the trainer's digests (False: none to check)

    @classmethod
    def from_json(cls, obj: dict) -> "FrameRecord":
        values = _known(cls, obj, "frame")
        index = values.get("index", 0)
        values.setdefault("index", index)
        values.setdefault("step", index)
        values.setdefault("global_step", values["step"])
        for key, rel in frame_paths(int(index)).items():
            values.setdefault(key, rel)
        return cls(**values)

    def to_json(self) -> dict:
        obj = asdict(self)
        if obj["dead_units"] is None:
            del obj["dead_units"]  # not measured (a frame of NaN latents): absent, as before
        for key in ("published", "checked"):
            if obj[key] is None:
                del obj[key]  # not known (reports written before it was recorded)
        return obj


@dataclass
class SkippedStep(_Record):
    """An EVAL step that has no frame, and why, in words.

    ``position`` is the number of frames published before it: the gap sits between frame
    ``position`` and frame ``position + 1`` (1-based), so the site and captions can show it in
    its place in the sequence.
    """

    step: int
    reason: str
    global_step: int | None = None
    position: int | None = None

    WHAT: ClassVar[str] = "skipped step"
    DEFAULTS: ClassVar[dict] = {"step": -1, "reason": "no reason recorded"}


@dataclass
class GifInfo(_Record):
    """The animated GIF as last published."""

    path: str = layout.GIF
    frames: int = 0                     # frames of the run it covers (M)
    bytes: int = 0
    scale: float = 1.0
    note: str | None = None
    kept: int | None = None             # frames in the GIF (N of M); None: all (older reports)
    width: int | None = None
    height: int | None = None

    WHAT: ClassVar[str] = "gif"


@dataclass
class OutputInfo(_Record):
    """A file made from the frames for people to take away (the MP4, the paper figure)."""

    path: str
    frames: int = 0                     # frames it shows
    bytes: int = 0
    steps: list | None = None           # the figure: training step of each panel
    width: str | None = None            # the figure: "single" or "double"
    error: str | None = None            # why it could not be made, with the fix (reporter/outputs/publish.py)

    WHAT: ClassVar[str] = "output"
    DEFAULTS: ClassVar[dict] = {"path": ""}


@dataclass
class FinalCutInfo(_Record):
    """The final cut of a finished report (reporter/final_cut.py): what was asked and how it went."""

    status: str = "off"                 # "off", "making", "made", "skipped", "failed" or "stopped"
    options: dict = field(default_factory=dict)  # the cut's settings (reporter.embedding.final_cut.CutSettings)
    error: str | None = None            # "failed" and "stopped": the one line; "skipped": why
    frames: int = 0                     # frames in the cut

    WHAT: ClassVar[str] = "final"


@dataclass
class ReportState:
    """The whole of ``state.json``.

    ``reason`` is the one line that says why a report failed or stopped (the same line the
    reporter prints on stderr); None while it runs and when it finished.
    """

    tensors: str = ""
    format: int = STATE_FORMAT
    status: str = WAITING
    status_since: str | None = None
    updated: str | None = None
    reason: str | None = None
    frames: list[FrameRecord] = field(default_factory=list)
    skipped: list[SkippedStep] = field(default_factory=list)
    gif: GifInfo | None = None
    video: OutputInfo | None = None                          # latentlapse.mp4 (reporter/outputs/video.py)
    figure: OutputInfo | None = None                         # figure.pdf/.svg/.png (reporter/outputs/figure.py)
    alerts: list | None = field(default_factory=list)        # reporter.rules.evaluate's records
    tensors_inventory: list = field(default_factory=list)    # reporter.trial.store.TensorStore.inventory rows
    trial: dict = field(default_factory=dict)                # where the frames come from: roles, mode, worker, notes
    final: FinalCutInfo | None = None                        # the final cut (reporter/final_cut.py)

    @classmethod
    def new(cls, tensors: str) -> "ReportState":
        """The state of a report that has not started: waiting, since now."""
        now = now_iso()
        return cls(tensors=tensors, status_since=now, updated=now)

    @classmethod
    def from_json(cls, obj: dict) -> "ReportState":
        """Read a parsed ``state.json``; missing keys take their defaults.

        Raises
        ------
        ReporterError
            If ``obj`` (or one of its parts) is not a JSON object.
        """
        values = _known(cls, obj, "top level")
        values["frames"] = [FrameRecord.from_json(f) for f in values.get("frames") or []]
        values["skipped"] = [SkippedStep.from_json(s) for s in values.get("skipped") or []]
        gif = values.get("gif")
        values["gif"] = GifInfo.from_json(gif) if gif else None
        for key in ("video", "figure"):
            values[key] = OutputInfo.from_json(values[key]) if values.get(key) else None
        if values.get("alerts") is not None and not isinstance(values["alerts"], list):
            values["alerts"] = None  # re-evaluated from the frames when the report is loaded (pipeline.load_state)
        values["tensors_inventory"] = list(values.get("tensors_inventory") or [])
        values["trial"] = dict(values.get("trial") or {})
        values["final"] = FinalCutInfo.from_json(values["final"]) if values.get("final") else None
        return cls(**values)

    def to_json(self) -> dict:
        return {
            "format": self.format, "tensors": self.tensors, "status": self.status,
            "status_since": self.status_since, "updated": self.updated, "reason": self.reason,
            "frames": [f.to_json() for f in self.frames],
            "skipped": [s.to_json() for s in self.skipped],
            "gif": self.gif.to_json() if self.gif else None,
            "video": self.video.to_json() if self.video else None,
            "figure": self.figure.to_json() if self.figure else None,
            "alerts": self.alerts, "tensors_inventory": self.tensors_inventory, "trial": self.trial,
            "final": self.final.to_json() if self.final else None,
        }

    # -- what the loop asks ----------------------------------------------------------------------

    def frame_dicts(self) -> list[dict]:
        """The frames as plain records (reporter.rules and the site's charts take these)."""
        return [f.to_json() for f in self.frames]

    def done_steps(self) -> set[int]:
        """EVAL steps with a frame or recorded as skipped: never read again."""
        return {f.step for f in self.frames} | {s.step for s in self.skipped}


def load(path: Path) -> ReportState | None:
    """The state saved at ``path``, None if there is none.

    Raises
    ------
    ReporterError
        If the file is not valid JSON: say to move the folder away.
    """
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except ValueError:
        raise ReporterError(f"{path} is not valid JSON: move the folder away and start a new report") from None
    return ReportState.from_json(obj)
