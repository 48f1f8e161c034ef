"""How probe tensors of any layout become pictures: shapes, --image-shape, normalisation, bar codes."""

from __future__ import annotations

import numpy as np
import pytest

from reporter import ReporterError
from reporter.trial.images import MAX_BARCODE_VALUES, image_view, normalisation, parse_image_shape, probe_pictures

RNG = np.random.default_rng(0)
GREY = RNG.uniform(size=(5, 6, 7)).astype(np.float32)  # H=6, W=7: a transposed layout shows up


@pytest.mark.parametrize("layout", ["nhw", "n1hw", "nhw1", "flat"])
def test_grey_layouts_give_the_same_pictures(layout):
    a = {"nhw": GREY, "n1hw": GREY[:, None], "nhw1": GREY[..., None], "flat": GREY.reshape(5, -1)}[layout]
    shape = parse_image_shape("6x7") if layout == "flat" else None
    view = image_view(a, 5, image_shape=shape)
    assert view.kind == "image" and view.layout == (6, 7, 1) and view.shape == (6, 7)
    rgb = view.take([0, 3])
    assert rgb.shape == (2, 6, 7, 3)
    assert np.allclose(rgb[..., 0], GREY[[0, 3]]) and np.allclose(rgb[..., 2], GREY[[0, 3]])


def test_rgb_channels_first_and_last_agree():
    hwc = RNG.uniform(0, 255, size=(4, 8, 9, 3))
    first, last = image_view(hwc.transpose(0, 3, 1, 2), 4), image_view(hwc, 4)
    assert first.layout == last.layout == (8, 9, 3)
    assert np.allclose(first.take([1, 2]), last.take([1, 2]))
    assert np.allclose(last.take([1])[0], hwc[1] / 255.0)
    assert "channels first" in first.note and "channels last" in last.note and "255" in last.normalisation


def test_flat_square_and_three_squares():
    square = image_view(GREY[:, :6, :6].reshape(5, 36), 5)
    assert square.layout == (6, 6, 1) and "square of 36" in square.note
    rgb = RNG.uniform(size=(3, 3, 5, 5))
    flat = image_view(rgb.reshape(3, 75), 3)
    assert flat.layout == (5, 5, 3)
    assert np.allclose(flat.take([2])[0], rgb[2].transpose(1, 2, 0))  # flattened channels first
    last = image_view(rgb.transpose(0, 2, 3, 1).reshape(3, 75), 3, image_shape=parse_image_shape("5x5x3"))
    assert np.allclose(last.take([2])[0], rgb[2].transpose(1, 2, 0))


def test_other_shapes_become_bar_codes_or_are_left_out_never_an_error():
    tabular = image_view(RNG.normal(size=(6, 13)), 6)
    assert tabular.kind == "barcode" and "bar code of 13 values" in tabular.note
    strip = tabular.take([0])[0]
    assert strip.shape[:2] == tabular.shape and strip.shape[1] >= 4 * strip.shape[0] and strip.shape[1] % 13 == 0
    maps = image_view(RNG.normal(size=(2, 16, 7, 7)), 2)  # feature maps: 784 values, no image layout
    assert maps.kind == "barcode"
    huge = image_view(np.zeros((2, MAX_BARCODE_VALUES + 1)), 2)
    assert not huge.shown and "left out" in huge.note and "--image-shape" in huge.note
    scalar = image_view(np.zeros(4), 4)
    assert not scalar.shown and "left out" in scalar.note


def test_reconstructions_beside_bar_code_inputs_are_bar_codes_of_the_same_size():
    inputs = RNG.normal(size=(4, 13))
    shown, recon = probe_pictures(inputs, inputs.reshape(4, 1, 13) * 0.5, 4)
    assert shown.kind == recon.kind == "barcode"
    assert recon.take([1])[0].shape == shown.take([1])[0].shape
    assert np.allclose(recon.pixels[:, 0, :, 0], inputs * 0.5)


@pytest.mark.parametrize("values, rule, lo, hi", [
    (np.linspace(0, 1, 10), "[0, 1]", 0.0, 1.0),
    (np.linspace(0, 255, 10), "[0, 255]", 0.0, 255.0),
    (np.linspace(-0.4, 2.8, 10), "min..max", -0.4, 2.8),
])
def test_normalisation_is_chosen_from_the_values_and_stated(values, rule, lo, hi):
    got_lo, got_hi, text = normalisation(values)
    assert rule in text and np.isclose(got_lo, lo) and np.isclose(got_hi, hi)


def test_reconstructions_share_the_inputs_layout_and_scale():
    x = RNG.normal(size=(5, 64)) * 2
    inputs = image_view(x, 5)
    recon = image_view(x.reshape(5, 1, 8, 8) * 0.5, 5, role="recon", like=inputs)
    assert recon.layout == inputs.layout and (recon.lo, recon.hi) == (inputs.lo, inputs.hi)
    assert np.allclose(recon.take([0])[0, ..., 0] * (inputs.hi - inputs.lo) + inputs.lo,
                       np.clip(x[0].reshape(8, 8) * 0.5, inputs.lo, inputs.hi))
    other = image_view(np.zeros((5, 10)), 5, role="recon", like=inputs)
    assert not other.shown and "64" in other.note


def test_bad_image_shape_and_wrong_n_are_one_line_errors():
    with pytest.raises(ReporterError, match=r"--image-shape 8x8 needs 64 values per point but inputs \(5, 784\)"):
        image_view(np.zeros((5, 784)), 5, image_shape=parse_image_shape("8x8"))
    for bad in ("28", "28x28x28", "ax3", "0x4"):
        with pytest.raises(ReporterError, match="--image-shape"):
            parse_image_shape(bad)
    with pytest.raises(ReporterError, match="latents hold 4 points"):
        image_view(np.zeros((5, 4, 4)), 4)
    assert parse_image_shape("3x32x32") == (32, 32, 3, 1) and parse_image_shape("32x32x3") == (32, 32, 3, 0)


def test_nan_pixels_are_drawn_black_not_propagated():
    a = GREY.copy()
    a[0, 0, 0] = np.nan
    rgb = image_view(a, 5).take([0])
    assert np.isfinite(rgb).all() and rgb[0, 0, 0, 0] == 0.0
