"""The interactive view's data files: what a real run writes, escaping, neighbours, sprites, cost."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reporter.site import explore
from reporter.pictures.render import fit_to_box
from test_reporter import report, small_report, state_of  # noqa: F401  (the module's fixture)


def payload(out: Path, rel: str) -> dict:
    text = (out / rel).read_text(encoding="utf-8")
    assert text.startswith(explore.CALLBACK + "(") and text.endswith(");\n")
    return json.loads(text[len(explore.CALLBACK) + 1 : -3])


def unpack(b64: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=dtype)


def brute_neighbours(X, k):
    d = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def test_a_real_run_writes_every_frames_data(small_report):  # noqa: F811
    state = state_of(small_report)
    probes = payload(small_report, explore.PROBES_JS)
    assert probes["n"] == 100 and probes["classes"] == [str(d) for d in range(10)]
    sprite = probes["sprite"]
    sheet = np.asarray(Image.open(small_report / explore.PROBES_PNG))
    assert sheet.dtype == np.uint8 and sheet.shape == (10 * 28, 10 * 28) and sprite["cols"] == 10
    for frame in state["frames"]:
        data = payload(small_report, explore.frame_files(frame["index"])["js"])
        assert (data["index"], data["step"], data["global_step"]) == (frame["index"], frame["step"], frame["global_step"])
        # What the map says: the training step, as the frame does ("step 10 of 24"), not the EVAL step.
        assert data["train_step"] == frame["train_step"]
        assert data["label"] == f"step {frame['train_step']} of 24"
        with np.load(small_report / frame["npz"]) as saved:
            emb, labels, latents = saved["embedding"], saved["labels"], saved["latents"]
        assert probes["labels"] == labels.tolist()
        xy = unpack(data["xy"], "<i2").reshape(-1, 2) / data["scale"]
        assert np.abs(xy - fit_to_box(emb)).max() <= 0.5 / data["scale"] + 1e-9
        losses = unpack(data["loss"], "<f4")
        assert losses.shape == (100,) and np.mean(losses) == pytest.approx(frame["eval_loss"], rel=1e-5)
        nn = unpack(data["nn"], "<u2").reshape(100, data["k"])
        assert np.array_equal(nn, brute_neighbours(latents.astype(np.float64), explore.NEIGHBOURS))
        recon = np.asarray(Image.open(small_report / data["recon"]))
        assert recon.shape == sheet.shape and recon.dtype == np.uint8
        assert len(np.unique(recon)) <= explore.RECON_LEVELS
    # The probe sprite's cells are the run's probe images in order: compare with frame 0's PNG
    # would need the model; the inputs never change, so every cell differs from every other.
    cells = sheet.reshape(10, 28, 10, 28).swapaxes(1, 2).reshape(100, -1)
    assert len({c.tobytes() for c in cells}) == 100


def test_script_json_escapes_what_could_end_a_script():
    hostile = ["</script><img src=x onerror=alert(1)>", "a\u2028b\u2029c", "&amp; <!-- -->", "é ✓"]
    text = explore.data_script({"kind": "probes", "classes": hostile})
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert "é ✓" in text  # other text stays readable
    assert json.loads(text[len(explore.CALLBACK) + 1 : -3])["classes"] == hostile


def test_neighbours_skip_the_point_itself_nan_rows_and_duplicates():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    X[7] = X[3]  # an exact duplicate: each is the other's nearest
    X[11, 2] = np.nan
    near = explore.latent_neighbours(X, k=4)
    assert (near[11] == -1).all() and not (near == 11).any()
    finite = np.flatnonzero(np.isfinite(X).all(axis=1))
    expect = finite[brute_neighbours(X[finite], 4)]
    dist = lambda rows: np.sqrt(((X[finite][:, None, :] - X[rows]) ** 2).sum(-1))  # noqa: E731
    assert np.allclose(dist(near[finite]), dist(expect))  # the same neighbours, ties in either order
    assert near[3, 0] == 7 and near[7, 0] == 3
    assert (explore.latent_neighbours(X[:1]) == -1).all()


def test_sprite_sheet_cell_i_is_image_i():
    rng = np.random.default_rng(1)
    images = rng.random((23, 5, 7))
    cols = explore.sprite_layout(len(images))
    sheet = explore.sprite_sheet(explore.to_levels(images), cols)
    assert cols == 5 and sheet.shape == (5 * 5, 5 * 7)
    for i in range(23):
        r, c = divmod(i, cols)
        assert np.array_equal(sheet[r * 5 : (r + 1) * 5, c * 7 : (c + 1) * 7], np.round(images[i] * 255).astype(np.uint8))
    assert not sheet[4 * 5 :, 3 * 7 :].any()  # the two unused cells are black
    assert set(np.unique(explore.to_levels(images, 16))) <= {v * 17 for v in range(16)}
    indices = explore.to_levels(images, 16, indices=True)  # a palette PNG's pixels: level numbers
    assert indices.max() <= 15 and np.array_equal(indices.astype(int) * 17, explore.to_levels(images, 16))


def test_pictures_follow_the_frames_rules_on_the_inputs_scale():
    rng = np.random.default_rng(4)
    inputs = rng.integers(0, 256, size=(6, 1, 5, 7)).astype(np.float64)  # 0..255, channels first
    recons = inputs[:, 0] / 2  # another layout, judged on the inputs' scale
    inputs_view, recon_view = explore.probe_views(inputs, recons, 6)
    grey = explore.view_pixels(inputs_view)
    assert grey.shape == (6, 5, 7) and np.array_equal(grey, inputs[:, 0].astype(np.uint8))
    half = explore.view_pixels(recon_view)
    assert np.abs(half.astype(int) - np.round(inputs[:, 0] / 2)).max() <= 1
    rgb_view, _ = explore.probe_views(rng.random((4, 3, 5, 7)), None, 4)
    assert explore.view_pixels(rgb_view).shape == (4, 5, 7, 3)
    assert explore.probe_views(None, None, 4) == (None, None)
    assert explore.probe_views(rng.random((3, 5, 7)), None, 4) == (None, None)  # not one per point


def test_a_frame_writes_only_its_own_files(tmp_path):
    rng = np.random.default_rng(2)
    n, labels = 300, np.arange(300) % 10
    images = rng.random((n, 28, 28))

    def frame(i):
        explore.write_frame(tmp_path, i, rng.normal(size=(n, 2)), labels, list("abcdefghij"), step=i,
                            global_step=i * 26, latents=rng.normal(size=(n, 20)), inputs=images,
                            reconstructions=rng.random((n, 28, 28)), losses=rng.random(n))

    for i in range(4):
        frame(i)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "explore").iterdir()}
    frame(4)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "explore").iterdir()}
    assert {p.name for p in set(after) - set(before)} == {"frame-0004.js", "recon-0004.png"}
    assert all(after[p] == before[p] for p in before)


def test_nonfinite_coordinates_are_marked_missing():
    emb = np.array([[0.0, 0.0], [np.nan, 1.0], [2.0, 2.0]])
    q = explore.quantise_coordinates(emb).reshape(-1, 2)
    assert (q[1] == explore.MISSING_COORD).all()
    assert q[0].tolist() == [-explore.COORD_SCALE, -explore.COORD_SCALE]
    assert q[2].tolist() == [explore.COORD_SCALE, explore.COORD_SCALE]


def test_the_embedders_neighbours_are_the_ones_searched_here_and_sprites_keep_their_greys(tmp_path):
    from reporter.embedding.embed import Embedder

    rng = np.random.default_rng(5)
    n, labels = 400, np.arange(400) % 10
    latents = rng.normal(size=(n, 20))
    embedder = Embedder(seed=0)
    embedding = embedder.embed(latents)
    recons = rng.random((n, 28, 28))
    kw = dict(step=1, global_step=2, latents=latents, inputs=recons, reconstructions=recons)
    given = explore.write_frame(tmp_path / "a", 0, embedding, labels, list("abcdefghij"),
                                neighbours=embedder.neighbours, **kw)
    searched = explore.write_frame(tmp_path / "b", 0, embedding, labels, list("abcdefghij"), **kw)
    assert given["nn"] == searched["nn"] and given["k"] == explore.NEIGHBOURS
    assert np.array_equal(unpack(given["nn"], "<u2").reshape(n, -1), brute_neighbours(latents, explore.NEIGHBOURS))
    # The reconstruction sprite: a 4-bit palette PNG whose greys are the 16 levels, pixel for pixel.
    sprite = Image.open(tmp_path / "a" / given["recon"])
    assert sprite.mode == "P"
    expected = explore.sprite_sheet(explore.to_levels(recons, explore.RECON_LEVELS), explore.sprite_layout(n))
    assert np.array_equal(np.asarray(sprite.convert("L")), expected)
