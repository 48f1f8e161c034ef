"""``latentlapse.mp4``: every frame at full scale, H.264, kept up to date while the run goes on.

Pull requests play MP4 (up to 10 MB) at a fraction of a GIF's size. The video is made with
imageio's ffmpeg plugin and the ffmpeg binary that the imageio-ffmpeg wheel ships, so it needs
nothing from the system (Docker images, ``make demo``).

Bounded cost. Frames are encoded once, in segments of ``every`` frames (hidden files in
``.video/`` beside the report): each time ``every`` new frames are recorded, one segment is
encoded from their PNGs and the segments are joined, without re-encoding, into the published
file (ffmpeg's concat demuxer, stream copy, ``+faststart``). An update therefore costs one
segment's encoding plus a copy of the video's bytes (<= 10 MB), whatever the run's length.
When the run ends, the frames after the last full segment become a last, shorter segment.
Segments are named by the frames they hold and written atomically, so a restarted reporter
reuses them. Once the report has finished, :meth:`VideoWriter.discard_segments` removes
``.video/`` (as large as the MP4 itself) so that the folder people zip and share holds only
what they take away; a reporter started again on the finished report encodes the segments
again from ``frames/``, with the same settings, into the same bytes.

Settings: H.264 (libx264), yuv420p (what browsers and GitHub decode), even dimensions (the
frame is padded with white if need be), ``+faststart`` (the index first: it plays while it
loads), one frame per GIF delay (the same pace as the GIF).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from latentlapse import report_layout as layout
from reporter.outputs import defaults
from reporter import ReporterError
from latentlapse.atomic import write_bytes
from latentlapse.atomic import write_json as atomic_json

MP4_FILE = layout.MP4
SEGMENT_DIR = layout.VIDEO_WORK
DEFAULT_EVERY = defaults.MP4_EVERY
CRF = 20  # x264 quality (lower is better): the small class-coloured markers stay crisp
MAX_CRF = 32  # the most a long run's video is coarsened to stay under MAX_BYTES
PLANNING_FRACTION = 0.8  # plan for 80 % of MAX_BYTES: the first frames are not the run's average
SETTINGS_FILE = "settings.json"  # in SEGMENT_DIR: the run's CRF, so every segment is alike
PRESET = "veryfast"  # measured: half the time of "medium" and no larger here (docs/benchmarks.md)
MAX_BYTES = 10 * 1000 * 1000  # GitHub plays uploaded videos up to 10 MB


def even_frame(rgb: np.ndarray) -> np.ndarray:
    """The frame padded with white to even width and height (yuv420p needs both even)."""
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)


def ffmpeg_exe() -> str:
    """The ffmpeg binary of the imageio-ffmpeg wheel."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ReporterError("latentlapse.mp4 needs the imageio-ffmpeg package: install the "
                            "reporter's requirements (requirements/reporter.txt)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def encode(path: str | os.PathLike, frames, fps: float, threads: int = 1, crf: int = CRF) -> None:
    """Write RGB frames (H, W, 3) uint8 to an H.264 MP4 at ``path`` (not atomic: a work file).

    ``threads`` caps x264's threads (it takes every core otherwise), as the reporter's
    ``--threads`` caps the embedding's. ``crf``: x264's constant quality (lower is better).
    """
    import imageio.v2 as iio2

    writer = iio2.get_writer(
        os.fspath(path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
        pixelformat="yuv420p", quality=None, macro_block_size=2, ffmpeg_log_level="error",
        output_params=["-crf", str(int(crf)), "-preset", PRESET, "-threads", str(int(threads)),
                       "-movflags", "+faststart"])
    try:
        for rgb in frames:
            writer.append_data(even_frame(np.asarray(rgb)))
    finally:
        writer.close()


def plan_crf(bytes_per_frame: float, frames: int | None, max_bytes: int = MAX_BYTES) -> int:
    """The x264 CRF that projects ``frames`` frames of ``bytes_per_frame`` (measured at :data:`CRF`)
    under :data:`PLANNING_FRACTION` of ``max_bytes``: +6 CRF about halves the size; at most :data:`MAX_CRF`."""
    if not frames:
        return CRF
    projected = bytes_per_frame * frames
    target = PLANNING_FRACTION * max_bytes
    if projected <= target:
        return CRF
    return min(MAX_CRF, CRF + math.ceil(6 * math.log2(projected / target)))


def join(segments: list[Path], path: str | os.PathLike) -> None:
    """Concatenate MP4 segments of identical settings into one ``+faststart`` MP4 (stream copy)."""
    with tempfile.TemporaryDirectory(dir=Path(segments[0]).parent) as tmp:
        listing = Path(tmp, "segments.txt")
        # The concat demuxer's list format: one `file '<path>'` line per segment.
        listing.write_text("".join(f"file '{Path(s).resolve()}'\n" for s in segments))
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat",
               "-safe", "0", "-i", str(listing), "-c", "copy", "-movflags", "+faststart",
               "-f", "mp4", os.fspath(path)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg could not join the video's segments: {done.stderr.strip()}")


def _segment_name(start: int, stop: int) -> str:
    return f"segment-{start:05d}-{stop:05d}.mp4"


class VideoWriter:
    """Keeps ``latentlapse.mp4`` in a report folder up to date from the frames' PNGs.

    Parameters
    ----------
    out : path
        The report folder; the video is ``out/latentlapse.mp4``, its segments ``out/.video/``.
    fps : float
        Frames per second (the reporter uses 1000 / the GIF delay).
    every : int
        Frames per segment: the video is rewritten each time this many new frames are
        recorded, and at the end of the run.
    threads : int
        Threads of the encoder.
    expected_frames : int, optional
        Frames the run will have (the run file says). The first segment then sets the run's
        x264 quality so that the whole video is projected to stay under ``max_bytes``: +6 CRF
        about halves the size. Kept in ``.video/settings.json`` for every later segment.
    max_bytes : int
        The size the video should stay under (GitHub plays uploads up to 10 MB).

    Attributes
    ----------
    frames : int
        Frames in the published video (0 before the first update).
    bytes : int
        Size of the published video.
    """

    def __init__(self, out, *, fps: float, every: int = DEFAULT_EVERY, threads: int = 1,
                 expected_frames: int | None = None, max_bytes: int = MAX_BYTES):
        if every < 1:
            raise ReporterError(f"the video is updated every {every} frames: use 1 or more")
        if not fps > 0:
            raise ReporterError(f"a video of {fps} frames per second cannot play: use more than 0")
        self.out = Path(out)
        self.path = self.out / MP4_FILE
        self.segments_dir = self.out / SEGMENT_DIR
        self.fps = float(fps)
        self.every = int(every)
        self.threads = int(threads)
        self.expected_frames = expected_frames
        self.max_bytes = int(max_bytes)
        self.crf = self._settings().get("crf")
        self.frames, self.bytes = self._published()

    def _settings(self) -> dict:
        try:
            return json.loads((self.segments_dir / SETTINGS_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _published(self) -> tuple[int, int]:
        """Frames and size of a video already in the folder: its segments run from 0 without gaps."""
        if not self.path.is_file() or not self.segments_dir.is_dir():
            return 0, 0
        ranges = sorted(tuple(int(x) for x in p.stem.split("-")[1:3])
                        for p in self.segments_dir.glob("segment-*-*.mp4"))
        stop = 0
        for start, end in ranges:
            if start != stop:
                return 0, 0
            stop = end
        return stop, self.path.stat().st_size

    def discard_segments(self) -> None:
        """Remove the work folder ``.video/`` (the report has finished: the MP4 is final)."""
        shutil.rmtree(self.segments_dir, ignore_errors=True)

    def due(self, n_frames: int, final: bool = False) -> bool:
        """Whether :meth:`update` with ``n_frames`` recorded frames would change the video."""
        covered = n_frames if final else n_frames - n_frames % self.every
        return covered > 0 and (covered != self.frames or not self.path.exists())

    def update(self, pngs: list, final: bool = False) -> bool:
        """Bring the video up to the recorded frames ``pngs`` (in order); True if it was rewritten.

        Between two multiples of ``every`` nothing happens unless ``final`` (the run ended):
        then the frames after the last full segment are added as a shorter one.
        """
        n = len(pngs)
        if not self.due(n, final):
            return False
        bounds = [(a, min(a + self.every, n)) for a in range(0, n, self.every)]
        if not final and bounds[-1][1] - bounds[-1][0] < self.every:
            bounds.pop()
        self.segments_dir.mkdir(parents=True, exist_ok=True)
        segments = []
        for start, stop in bounds:
            segment = self.segments_dir / _segment_name(start, stop)
            if not segment.is_file():
                self._encode_segment(segment, pngs[start:stop])
            segments.append(segment)
        with tempfile.TemporaryDirectory(dir=self.segments_dir) as tmp:
            joined = Path(tmp, MP4_FILE)
            join(segments, joined)
            data = joined.read_bytes()
        write_bytes(self.path, data)
        self.frames, self.bytes = bounds[-1][1], len(data)
        self._drop_stale(segments)
        return True

    def _encode_segment(self, segment: Path, pngs: list) -> None:
        with tempfile.TemporaryDirectory(dir=self.segments_dir) as tmp:
            work = Path(tmp, segment.name)
            frames = [_read_png(self.out / p) for p in pngs]
            encode(work, frames, self.fps, self.threads, self.crf or CRF)
            if self.crf is None:  # the run's first segment sets its quality
                self.crf = self._plan_crf(work.stat().st_size / len(frames))
                if self.crf != CRF:
                    encode(work, frames, self.fps, self.threads, self.crf)
                atomic_json(self.segments_dir / SETTINGS_FILE, {"crf": self.crf, "format": 1})
            write_bytes(segment, work.read_bytes())

    def _plan_crf(self, bytes_per_frame: float) -> int:
        """The CRF that brings ``expected_frames`` frames of this size under the budget."""
        return plan_crf(bytes_per_frame, self.expected_frames, self.max_bytes)

    def _drop_stale(self, keep: list[Path]) -> None:
        """Remove segments not in the video any more (a shorter last one, once it is full)."""
        names = {p.name for p in keep}
        for p in self.segments_dir.glob("segment-*.mp4"):
            if p.name not in names:
                p.unlink(missing_ok=True)


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
