"""A report folder's layout: the name of every file and folder the reporter writes, and its status words.

The one home of these names: the reporter's modules, the compose entrypoint and the docs take
them from here. Standard library only, so every image (the S3 server's too) can import it.
"""

from __future__ import annotations

import json

# -- files at the top of a report folder ---------------------------------------------------------
STATE = "state.json"                 # everything a restart needs (reporter/state.py), written last
PAGE = "index.html"                  # the site
RUN = "run.json"                     # the site's redacted copy of the trainer's run file
METRICS = "metrics.csv"              # losses and quality per frame
GIF = "latentlapse.gif"
MP4 = "latentlapse.mp4"
RECONSTRUCTION = "reconstruction.png"  # the last frame's inputs beside their reconstructions
FIGURE_STEM = "figure"
FIGURES = tuple(f"{FIGURE_STEM}.{ext}" for ext in ("pdf", "svg", "png"))  # the paper figure, PDF first

# -- folders at the top of a report folder -------------------------------------------------------
FRAMES = "frames"                    # frame-NNNN.png/.csv/.npz: every frame, exact
EXPLORE = "explore"                  # the site's data files for point inspection
ASSETS = "assets"                    # the site's styles and script
FINAL = "final"                      # the final cut (reporter/final_cut.py): its GIF, MP4, figure, frames, explore/
FINAL_INFO = "cut.json"              # inside FINAL: the cut's settings, steps and quality beside the live frames'

# -- work files: hidden, never part of what people take away -------------------------------------
RESERVE = ".latentlapse-reserve"     # space kept for the final "failed" state (reporter/reserve.py)
VIDEO_WORK = ".video"                # the MP4's encoded segments while the run grows (reporter/outputs/video.py)
FINAL_PARTIAL = ".final.partial"     # the final cut being made; renamed to FINAL when complete
FINAL_OLD = ".final.old"             # a previous FINAL moved aside while the new one takes its place

# Entries the reporter writes at the top of its folder; any other (visible) one means the folder
# is not a report.
OWN_ENTRIES = frozenset({STATE, PAGE, RUN, METRICS, GIF, MP4, RECONSTRUCTION, *FIGURES, FRAMES, EXPLORE, ASSETS, FINAL})
# What one save rewrites (the reserve holds at least twice their size).
SAVED_EACH_FRAME = (STATE, PAGE, METRICS, RUN)


# -- a comparison's folder (latentlapse compare, reporter/compare/) --------------------------------
COMPARISONS = "compare"               # beside the runs: compare/<name>/ is one comparison (the runs index lists them)
COMPARE_INFO = "compare.json"         # what was compared and how: runs, shared points, timeline, residuals
COMPARE_GIF = "comparison.gif"        # every run side by side, in step
COMPARE_MP4 = "comparison.mp4"
COMPARE_DATA = "data"                 # the map's data: probes.js/png, run-K/frame-NNNN.js (aligned)
# A comparison's figure is FIGURES (runs as rows, training steps as columns); its page is PAGE
# and its styles and scripts ASSETS.


def frame_stem(index: int) -> str:
    """Frame ``index``'s files without their extension, relative to the report folder."""
    return f"{FRAMES}/frame-{index:04d}"


# -- the report's status (state.json's "status") --------------------------------------------------
# "waiting" and "running"/"stalled"/"finishing" are live; the rest are final. "finishing": training
# has ended and every live output is complete; the final cut is being made.
WAITING, RUNNING, STALLED, FINISHING = "waiting", "running", "stalled", "finishing"
FINISHED, FAILED, STOPPED = "finished", "failed", "stopped"
LIVE_STATUSES = (RUNNING, STALLED, FINISHING)
FINAL_STATUSES = (FINISHED, FAILED, STOPPED)
# Statuses a healthcheck reports as unhealthy.
UNHEALTHY_STATUSES = (STALLED, FAILED)


# -- what a process without the reporter reads of state.json --------------------------------------
class Summary:
    """The few facts of a saved ``state.json`` that the compose entrypoint prints and checks.

    reporter/state.py's ``ReportState`` is the definition of the file; this reads its keys
    ``status``, ``frames`` and ``gif`` as that class writes them, for images that have only this
    package (tests/test_contract.py checks the two agree on a real report).
    """

    def __init__(self, obj: dict):
        if not isinstance(obj, dict):
            raise ValueError(f"the top level is a JSON {type(obj).__name__}, not an object")
        gif = obj.get("gif") or {}
        self.status: str = str(obj.get("status") or WAITING)
        self.frames: int = len(obj.get("frames") or [])
        self.gif: str = str(gif.get("path") or GIF)
        self.gif_bytes: int = int(gif.get("bytes") or 0)


def read_summary(folder) -> Summary | None:
    """The summary of the report in ``folder``, None if it has no ``state.json`` yet.

    Raises OSError if the file cannot be read, ValueError if it is not a report's state.
    """
    path = f"{folder}/{STATE}"
    try:
        with open(path, encoding="utf-8") as f:
            return Summary(json.load(f))
    except FileNotFoundError:
        return None
