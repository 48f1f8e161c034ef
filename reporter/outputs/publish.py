"""The MP4 and the paper figure of a report, brought up to date from its state.

Called by the loop after each frame (the MP4 every ``--mp4-every`` frames) and when the run
ends or a one-shot read is done (``complete``: the MP4 of every frame, and the figure). The
state records what was made, so a re-run on a finished report rewrites neither.

Neither is needed for the rest of the report: when one cannot be made (ffmpeg cannot run, its
file cannot be written, the disk is full) the report goes on and ends as it would have, with
the same status and exit code; the state records why, in one line with the fix, the site shows
that line where the file would be, and the log has it once.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from latentlapse.contract import RunInfo
from reporter import ReporterError
from reporter.outputs.figure import FIGURE_FILES, figure_steps, write_figure
from reporter.state import OutputInfo, ReportState
from reporter.outputs.video import VideoWriter

log = logging.getLogger("reporter.outputs")


def publish(out: Path, state: ReportState, video: VideoWriter, run_info: RunInfo | None, *,
            complete: bool, figure_frames: int, figure_width: str) -> None:
    """Update ``latentlapse.mp4`` (and with ``complete`` the figure) and record them in ``state``.

    A failure to make either is recorded in ``state`` (``OutputInfo.error``), not raised.
    """
    frames = state.frames
    if video.expected_frames is None and run_info:
        video.expected_frames = run_info.expected_frames  # sets the quality at the first segment
    try:
        if (video.update([f.png for f in frames], final=complete)
                or ((state.video is None or state.video.error) and video.frames)):
            state.video = OutputInfo(path=video.path.name, frames=video.frames, bytes=video.bytes)
    except Exception as exc:  # noqa: BLE001 - the MP4 is one output among several: the rest goes on
        state.video = _could_not_make(state.video, "the MP4", video.path.name, out, exc)
    if not (complete and frames):
        return
    records = state.frame_dicts()
    made = state.figure
    try:
        steps = figure_steps(out, records, run_info, k=figure_frames)
        if (made and made.steps == steps and made.width == figure_width and not made.error
                and all((out / name).is_file() for name in FIGURE_FILES)):
            return  # the same figure is there already
        write_figure(out, frames=records, run=run_info, steps=steps, width=figure_width)
        state.figure = OutputInfo(path=FIGURE_FILES[0], frames=len(steps), steps=steps, width=figure_width,
                                  bytes=(out / FIGURE_FILES[0]).stat().st_size)
    except Exception as exc:  # noqa: BLE001 - as for the MP4
        state.figure = _could_not_make(made, "the paper figure", FIGURE_FILES[0], out, exc)


def _could_not_make(before: OutputInfo | None, what: str, path: str, out: Path, exc: Exception) -> OutputInfo:
    """The record of an output that could not be made; logged once per new reason."""
    line = f"{what} could not be made: {cannot_make_reason(exc, out)}"
    if before is None or before.error != line:
        log.error("%s", line)
        log.debug("%s", what, exc_info=exc)  # the traceback, for a report of a bug
    return OutputInfo(path=path, error=line)


def cannot_make_reason(exc: Exception, out: Path) -> str:
    """Why an output could not be made, and what to do, in one line."""
    again = "then run the same command again to make it"
    if isinstance(exc, ReporterError):
        return " ".join(str(exc).split())  # already says what to do (e.g. imageio-ffmpeg missing)
    if isinstance(exc, OSError):
        name = str(exc.filename or "")
        if exc.errno == errno.ENOSPC:
            return f"the disk of {out} is full: free some space, {again}"
        if name and not name.startswith(str(out)):
            # Not our own file: the program we ran (ffmpeg) cannot be started.
            return (f"cannot run {name} ({exc.strerror}): reinstall imageio-ffmpeg or point "
                    f"IMAGEIO_FFMPEG_EXE at a working ffmpeg, {again}")
        if name:
            return f"cannot write {name} ({exc.strerror}): make it writable, {again}"
    return (f"{type(exc).__name__}: {' '.join(str(exc).split())} (run the same command again; if it happens again it is a bug: "
            "report it with the reporter's log)")
