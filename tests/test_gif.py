"""The animated GIF: read back by imageio and Pillow, one palette, append-only, resumable, in budget."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from reporter import ReporterError
from reporter.outputs import gif_format as fmt
from reporter.outputs.gif import MIN_SCALE, GifWriter, kept_frames
from reporter.pictures.palette import default_palette, quantize
from reporter.pictures.colours import CLASS_COLOURS
from reporter.pictures.render import draw_frame

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
                              step=25 * k, total_steps=250, eval_loss=0.05 / (k + 1)))
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
    assert stack.shape == (6, 540, 900, 3) and stack.dtype == np.uint8
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
        # the (noise) probe images, each within one level of the 116-step grey ramp.
        assert in_palette.mean() > 0.88
        assert np.array_equal(back[in_palette], original[in_palette])
        for colour in CLASS_COLOURS[:10]:  # the ten classes of these frames
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
    # The first frame's block (its delay and image data) is the same bytes; only the comment
    # at the top (the frame count) and the new frame differ.
    assert fmt.parse(after)["frames"][0] == fmt.parse(before)["frames"][0]
    assert after.endswith(fmt.parse(after)["frames"][1] + b"\x3b") and len(after) > len(before)


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


@pytest.mark.parametrize("budget, cut", [(None, 5), (None, 1), (160_000, 3), (160_000, 4), (160_000, 5),
                                         (160_000, 8)])
def test_a_writer_reopened_mid_run_ends_with_the_same_bytes(tmp_path, frames, uninterrupted, budget, cut):
    """160 kB forces a re-encode at frame 4, then fewer frames at 5 and 8: cuts before and at them."""
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
    assert "re-encoded at frame 3" in write(whole, frames[:3], budget_bytes=120_000).note
    path = tmp_path / "latentlapse.gif"
    write(path, frames[:3], budget_bytes=120_000)
    writer = GifWriter(path, budget_bytes=120_000)
    writer.truncate(2)  # the state file only knew two frames when the reporter was killed
    writer.append(frames[2])
    assert path.read_bytes() == whole.read_bytes()


def durations_ms(path) -> list[int]:
    with Image.open(path) as im:
        out = []
        for k in range(im.n_frames):
            im.seek(k)
            out.append(im.info["duration"])
        return out


def test_expected_frame_count_picks_a_scale_that_fits_the_budget(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    budget = 480_000  # these noise frames take ~58 kB at full scale, ~38 kB at 60 %
    writer = write(path, frames, budget_bytes=budget, expected_frames=N_FRAMES, min_scale=0.6)
    assert writer.scale < 1.0 and path.stat().st_size <= budget
    assert writer.kept == writer.frames == N_FRAMES and writer.stride == 1
    assert writer.note == f"downscaled to {writer.scale:.0%} (10 frames expected) to stay under 468.75 KiB"
    stack = iio.imread(path, index=None)
    assert stack.shape == (N_FRAMES, round(540 * writer.scale), round(900 * writer.scale), 3)
    # The default budget needs no downscale for frames like these.
    default = write(tmp_path / "default.gif", frames[:2], expected_frames=40)
    assert default.scale == 1.0 and default.note is None


def test_the_scale_never_goes_below_the_floor_fewer_frames_are_kept_instead(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    budget = 160_000  # two or three of these frames at any scale
    writer = GifWriter(path, budget_bytes=budget, delay_ms=100)
    for k, f in enumerate(frames):
        writer.append(f)
        assert writer.bytes <= budget and writer.scale >= MIN_SCALE
        # Always the first and the last frame, the others every `stride` frames.
        assert writer.kept_indices == kept_frames(k + 1, writer.stride)
    assert MIN_SCALE == 0.75 and writer.size == (675, 405)  # 75 % of 900 x 540
    assert writer.stride > 1 and writer.kept < N_FRAMES
    assert writer.frames_text == f"{writer.kept} of {N_FRAMES} frames"
    assert "downscaled to 75%" in writer.note and f"every {writer.stride}th frame" in writer.note
    stack = iio.imread(path, index=None)
    assert stack.shape == (writer.kept, 405, 675, 3)
    # Each kept frame is shown until the next kept one: the GIF lasts as long as all frames.
    kept = writer.kept_indices
    assert durations_ms(path) == [100 * (b - a) for a, b in zip(kept, kept[1:] + [N_FRAMES])]
    assert sum(durations_ms(path)) == 100 * N_FRAMES


@pytest.fixture(scope="module")
def small_frames():
    """200 small incompressible frames: cheap to encode, each ~6 kB."""
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, size=(60, 100, 3), dtype=np.uint8) for _ in range(200)]


def test_a_long_run_keeps_an_evenly_spaced_subset_without_reencoding_a_frame(tmp_path, small_frames):
    """Stride doublings only drop frames: every kept frame is the bytes it was encoded to."""
    every = write(tmp_path / "every.gif", small_frames, budget_bytes=1 << 30)
    assert every.kept == 200 and every.stride == 1 and every.note is None
    blocks = fmt.parse((tmp_path / "every.gif").read_bytes())["frames"]

    budget = 40 * len(blocks[0])  # room for ~40 frames
    path = tmp_path / "latentlapse.gif"
    writer = GifWriter(path, budget_bytes=budget, min_scale=1.0)
    strides = [1]
    for k, f in enumerate(small_frames):
        writer.append(f)
        assert writer.bytes <= budget
        if writer.stride != strides[-1]:
            strides.append(writer.stride)
        assert writer.kept_indices == kept_frames(k + 1, writer.stride)
    assert strides == [1, 2, 4, 8]  # log2(200 / 40) rounded up: each doubling halves the frames
    assert writer.scale == 1.0 and 20 <= writer.kept <= 40
    kept = fmt.parse(path.read_bytes())["frames"]
    for index, block in zip(writer.kept_indices, kept):
        assert block[fmt.GCE_LEN:] == blocks[index][fmt.GCE_LEN:]
    assert fmt.delay_of(kept[0]) == 8 * 25 and fmt.delay_of(kept[-1]) == 25
    assert iio.imread(path, index=None).shape == (writer.kept, 60, 100, 3)


def test_a_writer_reopened_after_the_subset_changed_ends_with_the_same_bytes(tmp_path, small_frames):
    run = small_frames[:90]
    budget = 20 * 6_100
    whole = tmp_path / "whole.gif"
    write(whole, run, budget_bytes=budget, min_scale=1.0)
    for cut in (17, 45, 64):
        path = tmp_path / f"resumed-{cut}.gif"
        write(path, run[:cut + 1], budget_bytes=budget, min_scale=1.0)
        writer = GifWriter(path, budget_bytes=budget, min_scale=1.0)
        writer.truncate(cut)  # the state file knew only `cut` frames when the reporter was killed
        for f in run[cut:]:
            writer.append(f)
        assert path.read_bytes() == whole.read_bytes(), cut


def test_a_run_longer_than_announced_reencodes_all_frames_smaller_once(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    budget = 400_000
    writer = GifWriter(path, budget_bytes=budget, expected_frames=5, min_scale=0.6)
    sizes = []
    for f in frames:
        writer.append(f)
        sizes.append(writer.size)
        assert path.stat().st_size <= budget
    assert len(set(sizes)) == 2  # one re-encode, then every frame at the new size
    assert "re-encoded at frame" in writer.note and writer.scale < 1.0
    assert writer.kept == N_FRAMES
    stack = iio.imread(path, index=None)
    assert stack.shape[:3] == (N_FRAMES, writer.size[1], writer.size[0])
    resumed = GifWriter(path, budget_bytes=budget, min_scale=0.6)
    assert resumed.note == writer.note and resumed.expected_frames == 5  # both survive a restart


def test_a_restart_that_forgot_the_expected_frame_count_still_ends_with_the_same_bytes(tmp_path, frames):
    # A first frame with every point in one spot compresses far better than the rest, so the
    # GIF outgrows the scale chosen on it and is re-encoded at frame 7.
    collapsed = draw_frame(np.zeros((300, 2)), np.repeat(np.arange(10), 30), [str(d) for d in range(10)],
                           np.zeros((300, 28, 28)), np.zeros((300, 28, 28)), step=0,
                           eval_loss=0.1)
    run = [collapsed, *frames[:7]]
    kw = dict(budget_bytes=250_000, min_scale=0.6)
    whole = tmp_path / "whole.gif"
    assert "re-encoded at frame 7" in write(whole, run, expected_frames=12, **kw).note
    path = tmp_path / "latentlapse.gif"
    write(path, run[:2], expected_frames=12, **kw)
    resumed = write(path, run[2:], **kw)  # the restarted reporter did not pass expected_frames
    assert resumed.expected_frames == 12
    assert path.read_bytes() == whole.read_bytes()


def test_a_run_of_unknown_length_stays_in_budget_with_few_reencodes(tmp_path, frames):
    writer = GifWriter(tmp_path / "latentlapse.gif", budget_bytes=250_000, min_scale=0.6)
    sizes = []
    for f in frames:
        writer.append(f)
        sizes.append(writer.size)
        assert writer.bytes <= 250_000
    # Each re-encode plans for twice the frames so far: a handful over a whole run.
    assert 2 <= len(set(sizes)) <= 3


def test_a_budget_too_small_for_two_frames_is_reported_not_fatal(tmp_path, frames):
    path = tmp_path / "latentlapse.gif"
    writer = write(path, frames[:3], budget_bytes=10_000)
    assert writer.frames == 3 and writer.kept == 2 and writer.scale == MIN_SCALE
    assert writer.note.startswith("over the 9.76562 KiB budget even at 75% and 2 frames")
    assert Image.open(path).n_frames == 2


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
    with pytest.raises(ReporterError, match="unreadable: use 0.6 to 1"):
        GifWriter(tmp_path / "a.gif", min_scale=0.5)
    writer = GifWriter(tmp_path / "a.gif")
    writer.append(frames[0])
    with pytest.raises(ValueError, match="frame size"):
        writer.append(frames[0][:200])
    with pytest.raises(ValueError):
        writer.append(frames[0].astype(np.float32))
    assert GifWriter(tmp_path / "a.gif").frames == 1
