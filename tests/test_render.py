"""Drawing one frame: layout, stable axes, the class palette, NaN marking, PNG output."""

from __future__ import annotations

import io

import matplotlib.style
import numpy as np
import pytest
from PIL import Image

from reporter import ReporterError
from reporter.pictures.colours import CLASS_COLOURS
from reporter.pictures.png import save_png
from reporter.pictures.render import (AXIS_COLOUR, BANNER_COLOUR, BAR_DONE, BAR_TRACK, BOX_LIMITS,
                                      draw_frame, fit_to_box, stable_limits)
from reporter.trial.steps import step_text

N_PER_CLASS = 20
SCATTER = slice(24, 484)  # the columns of the scatter in a 900 px wide frame
NAMES = [str(d) for d in range(10)]


def rgb_of(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def pixels_of(img: np.ndarray, hex_colour: str) -> np.ndarray:
    """Boolean mask of the pixels exactly of this colour."""
    return (img == rgb_of(hex_colour)).all(axis=2)


@pytest.fixture(scope="module")
def probe():
    """A probe set of 10 well separated clusters with ring-shaped 'digits' of growing radius."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), N_PER_CLASS)
    angle = labels * 2 * np.pi / 10
    embedding = 30 * np.stack([np.cos(angle), np.sin(angle)], axis=1) + rng.normal(size=(len(labels), 2))
    yy, xx = np.mgrid[0:28, 0:28]
    radius = np.hypot(yy - 14, xx - 14)
    inputs = np.stack([np.exp(-((radius - 4 - k) ** 2) / 3) for k in labels])[:, None].astype(np.float32)
    recons = np.clip(inputs + rng.normal(scale=0.1, size=inputs.shape), 0, 1).astype(np.float32)
    return embedding, labels, inputs, recons


def draw(probe, embedding=None, **kw):
    emb, labels, inputs, recons = probe
    kw.setdefault("step", 75)
    kw.setdefault("total_steps", 300)
    kw.setdefault("eval_loss", 0.0123)
    return draw_frame(emb if embedding is None else embedding, labels, NAMES, inputs, recons, **kw)


def test_frame_is_a_900x540_rgb_picture_and_identical_inputs_give_identical_pixels(probe):
    a = draw(probe, train_loss=0.02)
    b = draw(probe, train_loss=0.02)
    assert a.shape == (540, 900, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    # Something else on the frame changes its pixels: the text is really drawn.
    assert not np.array_equal(a, draw(probe, train_loss=0.03))


def test_palette_is_petroff10_and_every_class_is_drawn_in_its_colour(probe):
    petroff = matplotlib.style.library["petroff10"]["axes.prop_cycle"].by_key()["color"]
    assert [c.lower() for c in CLASS_COLOURS[:10]] == ["#" + c.lower().lstrip("#") for c in petroff]
    assert len(set(CLASS_COLOURS)) == 20  # then 10 more for classes 10-19 (tests/test_any_trial.py)
    img = draw(probe)
    for colour in CLASS_COLOURS[:10]:
        # markers (20 points), the legend marker and the class name above its example
        assert pixels_of(img, colour).sum() >= 40, colour


def test_default_view_ignores_the_drift_of_scale_and_position_between_frames(probe):
    """t-SNE's scale and offset carry no meaning: a scaled, shifted copy gives the same picture."""
    emb = probe[0]
    assert np.array_equal(draw(probe, emb), draw(probe, 3.7 * emb + np.array([50.0, -20.0])))


def test_points_land_where_their_coordinates_say(probe):
    emb, labels = probe[0].copy(), probe[1]
    emb[:] = 0.0
    emb[labels == 0] = [-0.8, 0.0]  # class 0 on the left of a fixed view
    emb[labels == 1] = [0.8, 0.0]   # class 1 on the right
    limits = (-1.0, 1.0, -1.0, 1.0)
    left = draw(probe, emb, limits=limits)
    right = draw(probe, -emb, limits=limits)

    def x_of(img, k):  # mean column of class k's colour inside the scatter
        return np.nonzero(pixels_of(img[:, SCATTER], CLASS_COLOURS[k]))[1].mean()

    assert x_of(left, 0) < x_of(left, 1)
    assert x_of(right, 0) > x_of(right, 1)
    # Fixed limits: a point moved out of view disappears instead of the view following it.
    far = emb.copy()
    far[labels == 1] = [50.0, 0.0]
    assert pixels_of(draw(probe, far, limits=limits)[:, SCATTER], CLASS_COLOURS[1]).sum() == 0


def test_fit_to_box_fills_the_box_and_keeps_nonfinite_rows():
    emb = np.array([[10.0, 5.0], [14.0, 6.0], [np.nan, 1.0], [12.0, np.inf]])
    out = fit_to_box(emb)
    assert np.allclose(out[:2], [[-1.0, -0.25], [1.0, 0.25]])
    assert not np.isfinite(out[2:]).all(axis=1).any()
    assert np.isnan(fit_to_box(np.full((3, 2), np.nan))).all()
    assert np.array_equal(fit_to_box(np.ones((4, 2))), np.zeros((4, 2)))
    lo, hi = BOX_LIMITS[0], BOX_LIMITS[1]
    assert lo < -1.0 and hi > 1.0


def test_stable_limits_hold_every_frame_of_a_sequence_in_a_square():
    frames = [np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([[-3.0, 1.0], [np.nan, 9.0]])]
    x0, x1, y0, y1 = stable_limits(frames, margin=0.0)
    assert (x0, x1, y0, y1) == (-3.0, 1.0, -1.0, 3.0)
    assert stable_limits(np.stack([frames[0], frames[0]]), margin=0.0) == (-0.5, 1.5, 0.0, 2.0)
    x0, x1, y0, y1 = stable_limits(frames[0], margin=0.1)
    assert x1 - x0 == pytest.approx(y1 - y0) == pytest.approx(2.4)


def test_nonfinite_latents_mark_the_frame_and_draw_the_finite_points(probe):
    plain = draw(probe)
    marked = draw(probe, nonfinite=True)
    banner = pixels_of(marked, BANNER_COLOUR).sum() - pixels_of(plain, BANNER_COLOUR).sum()
    assert banner > 3000  # a filled banner and a thick frame around the scatter
    emb = probe[0].copy()
    emb[probe[1] == 4] = np.nan  # every point of class 4 unusable
    partial = draw(probe, emb, eval_loss=float("nan"))
    assert pixels_of(partial, BANNER_COLOUR).sum() - pixels_of(plain, BANNER_COLOUR).sum() > 3000
    colour4 = pixels_of(partial, CLASS_COLOURS[4]).sum()
    assert 0 < colour4 < pixels_of(plain, CLASS_COLOURS[4]).sum()  # legend and name only
    everything_gone = draw(probe, np.full_like(emb, np.inf), nonfinite=True)
    assert everything_gone.shape == plain.shape


def test_channel_axis_is_optional_and_long_class_names_fit(probe):
    emb, labels, inputs, recons = probe
    a = draw_frame(emb, labels, NAMES, inputs, recons, step=0, eval_loss=0.1)
    b = draw_frame(emb, labels, NAMES, inputs[:, 0], recons[:, 0], step=0, eval_loss=0.1)
    assert np.array_equal(a, b)
    fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    c = draw_frame(emb, labels, fashion, inputs, recons, step=0, eval_loss=0.1,
                   title="fashion-mnist")
    assert c.shape == a.shape and not np.array_equal(a, c)


@pytest.mark.parametrize("change, words", [
    (dict(labels=np.full(200, 10)), "class names"),
    (dict(labels=np.full(200, 0.5)), "--labels-regex"),
    (dict(labels=np.zeros(199)), "--labels-regex"),
    (dict(inputs=np.zeros((199, 28, 28))), "--inputs-regex"),  # other shapes are bar codes or left out
    (dict(reconstructions=np.zeros((199, 1, 28, 28))), "--recon-regex"),
    (dict(embedding=np.zeros((200, 3))), "(N, 2)"),
])
def test_tensors_of_the_wrong_kind_are_refused_with_a_hint(probe, change, words):
    emb, labels, inputs, recons = probe
    args = dict(embedding=emb, labels=labels, inputs=inputs, reconstructions=recons)
    args.update(change)
    with pytest.raises(ReporterError, match=words.replace("(", r"\(").replace(")", r"\)")):
        draw_frame(args["embedding"], args["labels"], NAMES, args["inputs"], args["reconstructions"],
                   step=0, eval_loss=0.1)


def test_save_png_writes_the_exact_pixels_atomically(tmp_path, probe):
    img = draw(probe)
    path = tmp_path / "frames" / "frame-0000.png"
    save_png(path, img)
    with Image.open(path) as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), img)
    first = path.read_bytes()
    save_png(path, img)
    assert path.read_bytes() == first  # no timestamps: same picture, same bytes
    assert [p.name for p in path.parent.iterdir()] == ["frame-0000.png"]  # no temp files left
    with pytest.raises(ValueError):
        save_png(path, img.astype(np.float32))
    assert Image.open(io.BytesIO(path.read_bytes())).size == (900, 540)


def test_the_heading_says_the_training_step_and_a_bar_shows_how_far_the_run_is(probe):
    assert step_text(925, 937) == "step 925 of 937"
    assert step_text(1250, None) == "step 1,250"  # a trial from another trainer: no total

    def bar(img):  # the filled part of the progress bar, in pixels along its row
        return int(pixels_of(img[46:52], BAR_DONE).any(axis=0).sum())

    quarter, half, done = (draw(probe, step=s, total_steps=400) for s in (100, 200, 400))
    assert bar(done) == pytest.approx(852, abs=2)  # the whole track, 24 px to 876 px
    assert bar(half) == pytest.approx(426, abs=2) and bar(quarter) == pytest.approx(213, abs=2)
    unknown = draw(probe, step=200, total_steps=None)
    assert bar(unknown) == 0 and pixels_of(unknown[46:52], BAR_TRACK).sum() == 0
    # The step is drawn, the global step is not: smdebug's count does not change the picture.
    assert not np.array_equal(draw(probe, step=201), draw(probe, step=200))
    assert np.array_equal(draw(probe, global_step=208), draw(probe, global_step=975))


def test_the_scatter_is_the_largest_element(probe):
    img = draw(probe)
    rows, cols = np.nonzero(pixels_of(img, AXIS_COLOUR))
    area = (rows.max() - rows.min()) * (cols.max() - cols.min())
    assert area >= 0.4 * img.shape[0] * img.shape[1]  # 460 x 460 of 900 x 540
    images = (img[64:, 500:] < 40).all(axis=2).sum()  # the example images' black backgrounds
    assert 5000 < images < 0.25 * area


def test_a_frame_has_the_same_pixels_whether_or_not_the_canvas_drew_frames_before(probe):
    """Frames of one layout share a figure (only what changes is painted): a resumed report, whose
    first frame is drawn on a new figure, must give the same pixels as one that never stopped."""
    import reporter.pictures.render as render

    emb, labels, inputs, recons = probe
    rng = np.random.default_rng(3)
    later = dict(embedding=emb + rng.normal(size=emb.shape), step=150, eval_loss=0.01, train_loss=0.02)
    draw(probe)
    draw(probe, embedding=emb[::-1].copy(), step=100)  # other points in the same layout
    after_others = draw(probe, **later)
    # Another layout in between (other class names, no images), then back.
    draw_frame(emb, labels, [f"class {k}" for k in range(10)], None, None, step=3)
    after_another_layout = draw(probe, **later)
    render._CANVAS = None
    fresh = draw(probe, **later)
    assert np.array_equal(after_others, fresh) and np.array_equal(after_another_layout, fresh)
    # The reconstructions are painted per frame: other ones change the pixels.
    assert not np.array_equal(fresh, draw_frame(later["embedding"], labels, NAMES, inputs, recons * 0.2,
                                                step=150, total_steps=300, eval_loss=0.01, train_loss=0.02))
