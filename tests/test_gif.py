"""The animated GIF: read back by imageio and Pillow, one palette, append-only, resumable, in budget."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from reporter import ReporterError
from reporter.gif import GifWriter, default_palette, quantize
from reporter.render import CLASS_COLOURS, draw_frame

N_FRAMES = 10


@pytest.fixture(scope="module")
def frames():
    """Ten real frames of clusters pulling apart, as the reporter draws them."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    angle = labels * 2 * np.pi / 10
    target = 10 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    images = rng.random((len(labels), 28, 28)).astype(np.float32)
    emb = rng.normal(size=(len(labels), 2))
    out = []
    for k in range(N_FRAMES):
        emb = 0.7 * emb + 0.3 * target + rng.normal(scale=0.3, size=emb.shape)
        out.append(draw_frame(emb, labels, [str(d) for d in range(10)], images, images,
                              step=k, global_step=25 * k, eval_loss=0.05 / (k + 1)))
    return out


def write(path, frames, **kw):
    writer = GifWriter(path, **kw)
    for f in frames:
        writer.append(f)
    return writer


def test_palette_holds_every_class_colour_black_and_white_once():
    pal = default_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert len(np.unique(pal, axis=0)) == 256
    entries = {tuple(int(v) for v in c) for c in pal}
    for colour in CLASS_COLOURS:
        assert tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5)) in entries
    assert (0, 0, 0) in entries and (255, 255, 255) in entries
    assert np.array_equal(pal, default_palette())  # built the same way every time


def test_quantize_picks_the_nearest_palette_colour():
    pal = default_palette()
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    img[0, :10] = pal[:10]
    index = quantize(img, pal)
    dist = ((img.reshape(-1, 1, 3).astype(int) - pal[None].astype(int)) ** 2).sum(axis=2)
    assert np.array_equal(index.reshape(-1), dist.argmin(axis=1))
    assert np.array_equal(index[0, :10], np.arange(10))


def test_imageio_and_pillow_read_back_every_frame_looping_with_its_delay(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    writer = write(path, frames[:6], delay_ms=120)
    assert writer.frames == 6 and writer.bytes == path.stat().st_size and writer.note is None
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.info["loop"] == 0
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
        assert durations == [120] * 6
    stack = iio.imread(path, index=None)
    assert stack.shape == (6, 380, 900, 3) and stack.dtype == np.uint8
    meta = iio.immeta(path)
    assert meta["loop"] == 0 and meta["duration"] == 120


def test_class_colours_and_every_palette_pixel_survive_exactly(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    write(path, frames[:3])
    stack = iio.imread(path, index=None)
    def pack(a):
        return (a[..., 0].astype(np.int64) << 16) | (a[..., 1].astype(np.int64) << 8) | a[..., 2]

    palette = pack(default_palette())
    for original, back in zip(frames[:3], stack):
        in_palette = np.isin(pack(original), palette)
        # White, ramp greys, class colours and their blends; the rest is mostly the greys of
        # the (noise) probe images, each within one level of the 136-step grey ramp.
        assert in_palette.mean() > 0.88
        assert np.array_equal(back[in_palette], original[in_palette])
        for colour in CLASS_COLOURS:
            rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)
            was = (original == rgb).all(axis=2)
            assert was.sum() > 20 and (back[was] == rgb).all()
        # Everything else is close: the palette is dense where anti-aliasing puts pixels.
        assert np.abs(back.astype(int) - original.astype(int)).mean() < 2.0


def test_appending_leaves_the_bytes_of_earlier_frames_untouched(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    writer = GifWriter(path)
    writer.append(frames[0])
    before = path.read_bytes()
    writer.append(frames[1])
    after = path.read_bytes()
    assert after.startswith(before[:-1])  # all but the trailer, earlier frame included
    assert after.endswith(b"\x3b") and len(after) > len(before)


@pytest.fixture(scope="module")
def uninterrupted(frames, tmp_path_factory):
    """Bytes of the GIF of all frames written in one go, per budget (computed once)."""
    done = {}

    def get(budget):
        if budget not in done:
            path = tmp_path_factory.mktemp("whole") / "whole.gif"
            write(path, frames, **({} if budget is None else {"budget_bytes": budget}))
            done[budget] = path.read_bytes()
        return done[budget]
    return get


@pytest.mark.parametrize("budget, cut", [(None, 5), (None, 1), (160_000, 2), (160_000, 3), (160_000, 6)])
def test_a_writer_reopened_mid_run_ends_with_the_same_bytes(tmp_path, frames, uninterrupted, budget, cut):
    """160 kB forces re-encodes at frames 3 and 7: cuts before, at and after them."""
    kw = {} if budget is None else {"budget_bytes": budget}
    resumed = tmp_path / "resumed.gif"
    write(resumed, frames[:cut], **kw)
    writer = write(resumed, frames[cut:], **kw)
    assert writer.frames == N_FRAMES
    assert resumed.read_bytes() == uninterrupted(budget)


def test_truncate_matches_a_state_file_that_is_behind_the_gif(tmp_path, frames):
    direct = tmp_path / "direct.gif"
    write(direct, frames[:4])
    path = tmp_path / "latentlapse.gif"
    write(path, frames[:6])
    writer = GifWriter(path)
    writer.truncate(3)
    assert Image.open(path).n_frames == 3
    writer.append(frames[3])
    assert path.read_bytes() == direct.read_bytes()
    writer.truncate(0)
    assert not path.exists()


def test_truncating_right_after_a_reencode_and_redoing_the_frame_gives_the_same_bytes(tmp_path, frames):
    whole = tmp_path / "whole.gif"
    assert "re-encoded at frame 3" in write(whole, frames[:3], budget_bytes=160_000).note
    path = tmp_path / "latentlapse.gif"
    write(path, frames[:3], budget_bytes=160_000)
    writer = GifWriter(path, budget_bytes=160_000)
    writer.truncate(2)  # the state file only knew two frames when the reporter was killed
    writer.append(frames[2])
    assert path.read_bytes() == whole.read_bytes()


def test_expected_frame_count_picks_a_scale_that_fits_the_budget(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    budget = 150_000
    writer = write(path, frames, budget_bytes=budget, expected_frames=N_FRAMES)
    assert writer.scale < 1.0 and path.stat().st_size <= budget
    assert writer.note.startswith(f"downscaled to {writer.scale:.0%} to stay under")
    stack = iio.imread(path, index=None)
    assert stack.shape == (N_FRAMES, round(380 * writer.scale), round(900 * writer.scale), 3)
    # The default budget needs no downscale for frames like these.
    default = write(tmp_path / "default.gif", frames[:2], expected_frames=40)
    assert default.scale == 1.0 and default.note is None


def test_a_run_longer_than_announced_reencodes_all_frames_smaller_once(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    budget = 160_000
    writer = GifWriter(path, budget_bytes=budget, expected_frames=5)
    sizes = []
    for f in frames:
        writer.append(f)
        sizes.append(writer.size)
        assert path.stat().st_size <= budget
    assert len(set(sizes)) == 2  # one re-encode, then every frame at the new size
    assert "re-encoded at frame" in writer.note and writer.scale < 1.0
    stack = iio.imread(path, index=None)
    assert stack.shape[:3] == (N_FRAMES, writer.size[1], writer.size[0])
    resumed = GifWriter(path, budget_bytes=budget)
    assert resumed.note == writer.note and resumed.expected_frames == 5  # both survive a restart


def test_a_restart_that_forgot_the_expected_frame_count_still_ends_with_the_same_bytes(tmp_path, frames):
    # A first frame with every point in one spot compresses far better than the rest, so the
    # GIF outgrows the scale chosen on it and is re-encoded at frame 4, planning for 12 frames.
    collapsed = draw_frame(np.zeros((300, 2)), np.repeat(np.arange(10), 30), [str(d) for d in range(10)],
                           np.zeros((300, 28, 28)), np.zeros((300, 28, 28)), step=0, global_step=0,
                           eval_loss=0.1)
    run = [collapsed, *frames[:7]]
    kw = dict(budget_bytes=160_000)
    whole = tmp_path / "whole.gif"
    assert "re-encoded at frame 4" in write(whole, run, expected_frames=12, **kw).note
    path = tmp_path / "latentlapse.gif"
    write(path, run[:2], expected_frames=12, **kw)
    write(path, run[2:], **kw)  # the restarted reporter did not pass expected_frames
    assert path.read_bytes() == whole.read_bytes()
    unknown = tmp_path / "unknown.gif"
    write(unknown, run, **kw)  # planning for 2 x 4 frames instead picks another scale
    assert unknown.read_bytes() != whole.read_bytes()


def test_a_run_of_unknown_length_stays_in_budget_with_few_reencodes(tmp_path, frames):
    writer = GifWriter(tmp_path / "latentlapse.gif", budget_bytes=160_000)
    sizes = []
    for f in frames:
        writer.append(f)
        sizes.append(writer.size)
        assert writer.bytes <= 160_000
    # Each re-encode plans for twice the frames so far: a handful over a whole run.
    assert 2 <= len(set(sizes)) <= 3


def test_a_budget_too_small_for_any_scale_is_reported_not_fatal(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    writer = write(path, frames[:3], budget_bytes=10_000, min_scale=0.5)
    assert writer.frames == 3 and writer.scale == 0.5
    assert writer.note.startswith("over the 9.76562 KiB budget even at 50%")
    assert Image.open(path).n_frames == 3


def test_a_gif_from_elsewhere_is_never_overwritten(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    Image.fromarray(frames[0]).save(path)
    original = path.read_bytes()
    with pytest.raises(ReporterError, match="not written by latentlapse"):
        GifWriter(path)
    path.write_text("notes\n")
    with pytest.raises(ReporterError, match="move it away"):
        GifWriter(path)
    assert path.read_text() == "notes\n"
    Image.fromarray(frames[0]).save(path)
    assert path.read_bytes() == original


def test_bad_arguments(tmp_path, frames):
    with pytest.raises(ReporterError, match="at least 20 ms"):
        GifWriter(tmp_path / "a.gif", delay_ms=10)
    writer = GifWriter(tmp_path / "a.gif")
    writer.append(frames[0])
    with pytest.raises(ValueError, match="frame size"):
        writer.append(frames[0][:200])
    with pytest.raises(ValueError):
        writer.append(frames[0].astype(np.float32))
    assert GifWriter(tmp_path / "a.gif").frames == 1
