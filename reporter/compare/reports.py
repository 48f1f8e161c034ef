"""Read a finished or live report folder for a comparison: its frames' maps, losses and probe digests.

A comparison reads only what the reporter already wrote (latentlapse/report_layout.py names it):
``state.json`` for the frames and their numbers, ``run.json`` for the run's settings,
``explore/probes.js`` for the labels, classes, sprite sheet and the probe inputs' digests, each
frame's ``.npz`` for its exact 2-D map and ``explore/frame-NNNN.js`` for its per-point losses and
latent neighbours. Frame files are written once, so a live report is re-read only for its new
frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentlapse import report_layout as layout
from reporter import ReporterError
from reporter.site import explore
from reporter.state import FINAL_STATUSES, FrameRecord, ReportState, load as load_state


@dataclass
class FrameData:
    """One frame of a report: what the comparison draws and shows of it."""

    record: FrameRecord
    embedding: np.ndarray              # (N, 2), as the frame's .npz holds it
    losses: np.ndarray | None          # (N,) per-sample loss, None if not saved
    neighbours: np.ndarray | None      # (N, k) latent neighbours, -1 for none; None if not saved


@dataclass
class Report:
    """A report folder as a comparison sees it."""

    folder: Path
    name: str
    state: ReportState
    run_file: dict | None
    labels: np.ndarray                 # (N,) class index per probe point
    classes: list[str]
    digests: list[str]                 # one per probe point (reporter/site/explore.py: probe_digests)
    sprite: dict | None                # probes.js's sprite layout; its "src" relative to the folder
    frames: list[FrameData] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.state.status not in FINAL_STATUSES

    @property
    def n(self) -> int:
        return len(self.labels)

    def refresh(self) -> bool:
        """Read the state again and any frame not read yet; True if something changed."""
        state = _state(self.folder)
        before = (self.state.status, len(self.frames))
        self.state = state
        run_file = _run_file(self.folder)
        if run_file is not None:
            self.run_file = run_file
        for record in state.frames[len(self.frames):]:
            self.frames.append(_frame(self.folder, record, self.n))
        return before != (state.status, len(self.frames))


def run_folder(folder: Path) -> Path:
    """The run a report belongs to: the demo's ``runs/<run>/site`` is ``runs/<run>``; compose's ``out/<run>`` itself."""
    folder = Path(folder).resolve()
    return folder.parent if folder.name == "site" and folder.parent.name else folder


def display_name(folder: Path) -> str:
    """What a report is called: its run's folder name."""
    return run_folder(folder).name


def read_report(folder, name: str | None = None) -> Report:
    """The report in ``folder``, every frame it has published so far.

    Raises
    ------
    ReporterError
        One line that says what is wrong and what to pass instead: no report there, a report
        without probe inputs (its probe set cannot be checked by content), or one made before
        the inputs' digests were recorded.
    """
    folder = Path(folder)
    state = _state(folder)
    probes_file = folder / explore.PROBES_JS
    if not probes_file.is_file():
        raise ReporterError(f"{folder} has no {explore.PROBES_JS} yet: wait for its first frame, "
                            "or pass --follow to wait for it")
    try:
        probes = explore.read_data_script(probes_file)
    except (OSError, ValueError) as exc:
        raise ReporterError(f"{probes_file} cannot be read ({exc}): remake the report") from None
    n = int(probes.get("n") or 0)
    digests = probes.get("digests")
    if not isinstance(digests, list) or len(digests) != n:
        why = ("the report was made before probe digests were recorded: make it again with this version "
               "(latentlapse report --tensors STORE --out NEW_FOLDER)") if "digests" not in probes else \
              "its trial saved no probe inputs, so its probe set cannot be checked by content"
        raise ReporterError(f"{folder}: {why}")
    labels = np.asarray(probes.get("labels") or [], dtype=np.int64)
    if len(labels) != n:
        raise ReporterError(f"{probes_file} holds {len(labels)} labels for {n} points: remake the report")
    report = Report(folder=folder, name=name or display_name(folder), state=state, run_file=_run_file(folder),
                    labels=labels, classes=[str(c) for c in probes.get("classes") or []],
                    digests=[str(d) for d in digests], sprite=probes.get("sprite"))
    for record in state.frames:
        report.frames.append(_frame(folder, record, n))
    return report


def _state(folder: Path) -> ReportState:
    if not folder.is_dir():
        raise ReporterError(f"{folder} is not a folder: pass report folders (the reporter's --out, "
                            "compose's ./out, or the demo's runs/NAME/site)")
    state = load_state(folder / layout.STATE)
    if state is None:
        raise ReporterError(f"{folder} is not a report (no {layout.STATE}): pass the reporter's --out folder")
    return state


def _run_file(folder: Path) -> dict | None:
    try:
        obj = json.loads((folder / layout.RUN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _frame(folder: Path, record: FrameRecord, n: int) -> FrameData:
    try:
        with np.load(folder / record.npz) as saved:
            embedding = np.asarray(saved["embedding"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise ReporterError(f"{folder / record.npz} cannot be read ({exc}): remake the report") from None
    if embedding.shape != (n, 2):
        raise ReporterError(f"{folder / record.npz} holds {embedding.shape[0]} points, the report {n}: "
                            "remake the report")
    losses = neighbours = None
    try:
        payload = explore.read_data_script(folder / explore.frame_files(record.index)["js"])
    except (OSError, ValueError):
        payload = {}
    if payload.get("loss"):
        losses = explore.unpack(payload["loss"], "<f4").astype(np.float64)
    if payload.get("nn") and payload.get("k"):
        wide = payload.get("nn_bytes") == 4
        raw = explore.unpack(payload["nn"], "<u4" if wide else "<u2").astype(np.int64)
        raw[raw == (0xFFFFFFFF if wide else 0xFFFF)] = -1
        neighbours = raw.reshape(n, int(payload["k"]))
    return FrameData(record=record, embedding=embedding,
                     losses=losses if losses is not None and len(losses) == n else None,
                     neighbours=neighbours)
