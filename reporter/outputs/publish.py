"""The MP4 and the paper figure of a report, brought up to date from its state.

Called by the loop after each frame (the MP4 every ``--mp4-every`` frames) and when the run
ends or a one-shot read is done (``complete``: the MP4 of every frame, and the figure). The
state records what was made, so a re-run on a finished report rewrites neither.
"""

from __future__ import annotations

from pathlib import Path

from latentlapse.contract import RunInfo
from reporter.outputs.figure import FIGURE_FILES, figure_steps, write_figure
from reporter.state import OutputInfo, ReportState
from reporter.outputs.video import VideoWriter


def publish(out: Path, state: ReportState, video: VideoWriter, run_info: RunInfo | None, *,
            complete: bool, figure_frames: int, figure_width: str) -> None:
    """Update ``latentlapse.mp4`` (and with ``complete`` the figure) and record them in ``state``."""
    frames = state.frames
    if video.expected_frames is None and run_info:
        video.expected_frames = run_info.expected_frames  # sets the quality at the first segment
    if video.update([f.png for f in frames], final=complete) or (state.video is None and video.frames):
        state.video = OutputInfo(path=video.path.name, frames=video.frames, bytes=video.bytes)
    if not (complete and frames):
        return
    records = state.frame_dicts()
    steps = figure_steps(out, records, run_info, k=figure_frames)
    made = state.figure
    if (made and made.steps == steps and made.width == figure_width
            and all((out / name).is_file() for name in FIGURE_FILES)):
        return  # the same figure is there already
    write_figure(out, frames=records, run=run_info, steps=steps, width=figure_width)
    state.figure = OutputInfo(path=FIGURE_FILES[0], frames=len(steps), steps=steps, width=figure_width,
                              bytes=(out / FIGURE_FILES[0]).stat().st_size)
