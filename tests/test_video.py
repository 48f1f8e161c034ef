"""latentlapse.mp4: H.264 / yuv420p read back by imageio, every frame, +faststart, bounded updates."""

from __future__ import annotations

import json

import imageio.v2 as iio2
import numpy as np
import pytest

from reporter import ReporterError
from reporter.pictures.png import save_png
from reporter.outputs.video import MP4_FILE, SEGMENT_DIR, VideoWriter, even_frame

W, H = 161, 91  # odd on purpose: yuv420p needs even sides


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report folder with 23 small frame PNGs: a white picture with a moving coloured square."""
    out = tmp_path_factory.mktemp("report")
    pngs = []
    for k in range(23):
        rgb = np.full((H, W, 3), 255, dtype=np.uint8)
        rgb[20:50, 5 * k:5 * k + 30] = (63, 144, 218)
        pngs.append(f"frames/frame-{k:04d}.png")
        save_png(out / pngs[-1], rgb)
    return out, pngs


def read_back(path):
    reader = iio2.get_reader(path, "FFMPEG")
    try:
        return reader.get_meta_data(), [frame for frame in reader]
    finally:
        reader.close()


def top_level_boxes(data: bytes) -> list[str]:
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        boxes.append(data[pos + 4:pos + 8].decode("latin-1"))
        if size < 8:
            break
        pos += size
    return boxes


def test_every_frame_in_h264_yuv420p_even_sized_and_index_first(tmp_path, report):
    out, pngs = report
    video = VideoWriter(out, fps=4, every=10)
    assert video.update(pngs, final=True)
    meta, frames = read_back(out / MP4_FILE)
    assert len(frames) == 23 == video.frames
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == (162, 92) and meta["fps"] == 4.0
    boxes = top_level_boxes((out / MP4_FILE).read_bytes())
    assert boxes[0] == "ftyp" and boxes.index("moov") < boxes.index("mdat")  # +faststart
    # The frames come back in order: the square moves 5 px to the right per frame.
    for k in (0, 11, 22):
        blue = (frames[k][:, :, 2].astype(int) - frames[k][:, :, 0]) > 80
        assert abs(np.flatnonzero(blue.any(axis=0)).min() - 5 * k) <= 2
    assert video.bytes == (out / MP4_FILE).stat().st_size


def test_the_video_is_rewritten_every_k_frames_and_at_the_end(tmp_path, report):
    _, pngs = report
    out = tmp_path / "report"
    for p in pngs:
        (out / p).parent.mkdir(parents=True, exist_ok=True)
        (out / p).write_bytes((report[0] / p).read_bytes())
    video = VideoWriter(out, fps=4, every=10)
    rewritten = [n for n in range(1, 24) if video.update(pngs[:n])]
    assert rewritten == [10, 20]
    assert len(read_back(out / MP4_FILE)[1]) == 20
    segments = sorted(p.name for p in (out / SEGMENT_DIR).glob("*.mp4"))
    assert segments == ["segment-00000-00010.mp4", "segment-00010-00020.mp4"]
    first = (out / SEGMENT_DIR / segments[0]).stat().st_mtime_ns

    # A restarted reporter reuses the segments and only adds the last, shorter one.
    again = VideoWriter(out, fps=4, every=10)
    assert again.update(pngs, final=True) and again.frames == 23
    assert (out / SEGMENT_DIR / segments[0]).stat().st_mtime_ns == first
    assert len(read_back(out / MP4_FILE)[1]) == 23
    assert not again.update(pngs, final=True)  # nothing new: nothing rewritten


def test_even_frame_pads_with_white_only_when_needed():
    rgb = np.zeros((3, 5, 3), dtype=np.uint8)
    padded = even_frame(rgb)
    assert padded.shape == (4, 6, 3) and (padded[3] == 255).all() and (padded[:, 5] == 255).all()
    assert even_frame(padded) is padded


def test_bad_settings(tmp_path):
    with pytest.raises(ReporterError, match="use 1 or more"):
        VideoWriter(tmp_path, fps=4, every=0)
    with pytest.raises(ReporterError, match="cannot play"):
        VideoWriter(tmp_path, fps=0)


def test_a_long_run_coarsens_its_quality_once_from_the_first_segment(tmp_path, report):
    src, pngs = report
    sizes = {}
    for name, expected in (("plain", None), ("long", 10_000)):
        out = tmp_path / name
        for p in pngs:
            (out / p).parent.mkdir(parents=True, exist_ok=True)
            (out / p).write_bytes((src / p).read_bytes())
        video = VideoWriter(out, fps=4, every=10, expected_frames=expected, max_bytes=1_000_000)
        assert video.update(pngs[:10])
        sizes[name] = (out / MP4_FILE).stat().st_size
        settings = json.loads((out / SEGMENT_DIR / "settings.json").read_text())
        # 10,000 frames of this size would not fit 1 MB at CRF 20: the run is coarsened, once.
        assert settings["crf"] == video.crf and (video.crf == 20) == (expected is None)
        again = VideoWriter(out, fps=4, every=10)  # a restart without the expected count
        assert again.crf == video.crf
        again.update(pngs, final=True)
        assert len(read_back(out / MP4_FILE)[1]) == 23
    assert sizes["long"] < sizes["plain"]
