"""An MP4 or figure that cannot be made leaves the rest of the report whole.

Each failure is real: an ffmpeg binary that cannot run (a file in a temp folder, pointed at by
imageio-ffmpeg's own ``IMAGEIO_FFMPEG_EXE``) or a figure file that cannot be written. The
report ends as it would have (same status, same exit code); its state, site and log say why
the file is missing and what to do.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from reporter.config import from_args
from reporter.pipeline import run
from trial_writer import probe_arrays, write_trial

MP4_LINE = "the MP4 could not be made: cannot run {exe} (Exec format error): reinstall imageio-ffmpeg"


def report(tensors, out, *extra) -> int:
    return run(from_args(["--tensors", str(tensors), "--out", str(out), "--retry-delay", "0.1", *extra],
                         environ={}))


def state_of(out: Path) -> dict:
    return json.loads((out / "state.json").read_text())


@pytest.fixture
def broken_ffmpeg(tmp_path, monkeypatch) -> Path:
    """An "ffmpeg" that is no program: the kernel refuses to run it (ENOEXEC)."""
    exe = tmp_path / "bin" / "ffmpeg"
    exe.parent.mkdir()
    exe.write_bytes(b"\x7fELF but not really")
    exe.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(exe))
    return exe


def _errors(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and text in r.getMessage()]


def test_a_finished_run_without_ffmpeg_finishes_with_everything_else(tmp_path, broken_ffmpeg, caplog):
    trial = write_trial(tmp_path / "tensors", [probe_arrays(60, s) for s in range(3)])
    out = tmp_path / "site"
    assert report(trial, out, "--mp4-every", "1") == 0   # as with a working ffmpeg

    state = state_of(out)
    line = MP4_LINE.format(exe=broken_ffmpeg)
    assert state["status"] == "finished" and len(state["frames"]) == 3
    assert state["video"]["error"].startswith(line) and state["video"]["frames"] == 0
    assert not (out / "latentlapse.mp4").exists()
    assert state["figure"]["error"] is None and (out / "figure.pdf").is_file()   # the rest is made
    assert (out / "latentlapse.gif").is_file()
    html = (out / "index.html").read_text()
    assert 'id="video-problem"' in html and "could not be made: cannot run" in html
    assert 'id="video-player"' not in html and 'id="figure-img"' in html
    # The line stands in the video's section, under its heading, and the page's link leads to it.
    assert html.count('<section id="video"') == 1 and '<h2 id="video-h">The video</h2>' in html
    assert '<a href="#video">video</a>' in html
    assert len(_errors(caplog, "the MP4 could not be made")) == 1   # once, not once per frame


def test_a_figure_that_cannot_be_written_leaves_a_finished_report(tmp_path, caplog):
    trial = write_trial(tmp_path / "tensors", [probe_arrays(60, s) for s in range(2)])
    out = tmp_path / "site"
    (out / "figure.pdf").mkdir(parents=True)   # something in the way that is not a file
    assert report(trial, out) == 0

    state = state_of(out)
    assert state["status"] == "finished"
    error = state["figure"]["error"]
    assert error.startswith("the paper figure could not be made: cannot write ") and "make it writable" in error
    assert state["video"]["error"] is None and (out / "latentlapse.mp4").stat().st_size > 0
    assert 'id="figure-problem"' in (out / "index.html").read_text()
    assert len(_errors(caplog, "the paper figure could not be made")) == 1

    (out / "figure.pdf").rmdir()   # the fix, then the same command again
    assert report(trial, out) == 0
    assert state_of(out)["figure"]["error"] is None and (out / "figure.pdf").is_file()
    assert 'id="figure-problem"' not in (out / "index.html").read_text()


@pytest.mark.parametrize("ending, extra, code, status", [
    ("one pass over the store", [], 0, "running"),
    ("the trainer stopped", ["--follow", "--wait-timeout", "1", "--poll-interval", "0.2"], 3, "failed"),
])
def test_every_ending_keeps_its_exit_code_without_ffmpeg(tmp_path, broken_ffmpeg, ending, extra, code, status):
    trial = write_trial(tmp_path / "tensors", [probe_arrays(60, s) for s in range(2)], end=False)
    out = tmp_path / "site"
    assert report(trial, out, *extra) == code
    state = state_of(out)
    assert state["status"] == status and len(state["frames"]) == 2
    assert state["video"]["error"].startswith(MP4_LINE.format(exe=broken_ffmpeg))
