"""The reporter on trials that are not ours, written by real smdebug hooks (tests/trials/).

Each MXNet trial is a real training run made at test time by tests/trials/mxnet_trials.py (real
MNIST or scikit-learn's wine data, 3 EVAL passes over ~100 points); the PyTorch trial is
committed (tests/trials/make_torch_trial.py says how it was made). Every report ends finished,
with a site and a GIF of one frame per step.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import DATA_CACHE, PYTHON, ROOT, trainer_env
from reporter.config import from_args
from reporter.pipeline import run

TRIALS = Path(__file__).parent / "trials"
TORCH_TRIAL = TRIALS / "torch-conv"
KINDS = ("mlp-flat", "rgb-conv", "unlabelled", "no-images", "two-workers")

# The options a user passes after reading `python -m reporter tensors PATH`.
MLP = ["--latent-regex", "^flatmlp_encoder_output_0$", "--labels-regex", "^flatmlp_input_1$",
       "--inputs-regex", "^flatmlp_input_0$", "--recon-regex", "^flat_loss_input_0$",
       "--loss-regex", "^flat_loss_output_0$"]
OPTIONS = {
    "mlp-flat": MLP,
    "two-workers": MLP,
    "rgb-conv": ["--latent-regex", "^rgbconv_encoder_output_0$", "--labels-regex", "^rgbconv_input_1$",
                 "--inputs-regex", "^rgbconv_input_0$", "--recon-regex", "^colour_loss_input_0$",
                 "--loss-regex", "^colour_loss_output_0$"],
    "unlabelled": ["--latent-regex", "^selfsup_encoder_output_0$", "--inputs-regex", "^selfsup_input_0$",
                   "--recon-regex", "^pixel_loss_input_0$", "--loss-regex", "^pixel_loss_output_0$"],
    "no-images": ["--latent-regex", "^wineae_encoder_output_0$", "--labels-regex", "^wineae_input_1$"],
    "torch": ["--latent-regex", "^encoder_output_0$", "--labels-regex", "^labels$",
              "--inputs-regex", "^ConvAutoencoder_input_0$", "--recon-regex", "^decoder_output_0$",
              "--loss-regex", "^PerSampleMSE_output_0$"],
}


@pytest.fixture(scope="session")
def trials(tmp_path_factory, mnist_cache) -> dict[str, Path]:
    """Every MXNet trial of tests/trials/mxnet_trials.py, made by real training runs (two at a time)."""
    root = tmp_path_factory.mktemp("any-trials")

    def make(kind):
        done = subprocess.run([PYTHON, str(TRIALS / "mxnet_trials.py"), kind, str(root / kind), str(DATA_CACHE)],
                              cwd=ROOT, env=trainer_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return kind, root / kind

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(make, KINDS))


def report(tensors, out, *extra) -> int:
    return run(from_args(["--tensors", str(tensors), "--out", str(out), "--retry-delay", "0.2", *extra],
                         environ={}))


def reporter_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "reporter", *args], cwd=ROOT, env=trainer_env(),
                          capture_output=True, text=True, timeout=600)


def finished(out: Path, frames: int) -> dict:
    """The report in ``out`` is finished, with one frame per step in its state, its files and its GIF."""
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "finished"
    assert len(state["frames"]) == frames
    gif = iio.imread(out / "latentlapse.gif", index=None)
    assert gif.shape[0] == frames and gif.shape[-1] == 3
    for frame in state["frames"]:
        assert (out / frame["png"]).stat().st_size > 0 and (out / frame["npz"]).is_file()
    assert "Finished" in (out / "index.html").read_text()
    return state


def frame_pixels(out: Path, state: dict, index: int = -1) -> np.ndarray:
    return iio.imread(out / state["frames"][index]["png"])[..., :3]


def has_colour(picture: np.ndarray, hex_colour: str) -> int:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)
    return int((picture == rgb).all(axis=2).sum())


# -- the trials ---------------------------------------------------------------------------------


def test_mlp_on_flat_vectors_shows_square_images_on_a_stated_scale(trials, tmp_path):
    out = tmp_path / "site"
    assert report(trials["mlp-flat"], out, *OPTIONS["mlp-flat"]) == 0
    state = finished(out, 3)
    trial = state["trial"]
    assert trial["roles"]["inputs"] == "flatmlp_input_0" and trial["mode"] == "EVAL"
    assert "8 x 8 grey images" in trial["inputs_note"] and "min..max" in trial["inputs_note"]  # standardised
    assert all(f["knn_latent"] is not None and f["trustworthiness"] is not None for f in state["frames"])
    assert (out / "reconstruction.png").is_file()
    html = (out / "index.html").read_text()
    assert "8 x 8 grey images" in html and "flatmlp_encoder_output_0" in html


def test_default_names_on_another_model_fail_in_one_line_naming_the_likely_tensor(trials, tmp_path):
    done = reporter_cli("--tensors", str(trials["mlp-flat"]), "--out", str(tmp_path / "site"))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("reporter: error")]
    assert len(lines) == 1
    assert "most likely flatmlp_encoder_output_0" in lines[0] and "--latent-regex '^flatmlp_encoder_output_0$'" in lines[0]


def test_tensors_command_shows_the_role_each_tensor_would_take(trials):
    done = reporter_cli("tensors", str(trials["mlp-flat"]), *OPTIONS["mlp-flat"][:2])
    assert done.returncode == 0, done.stderr
    roles = {line.split()[0]: line.split()[1] for line in done.stdout.split("\n\n")[-1].splitlines()[1:]}
    assert roles["latent"] == "flatmlp_encoder_output_0"
    # The labels' default regex matches nothing: left out, and the likely tensor is named.
    assert roles["labels"] == "-" and "pass --labels-regex '^flatmlp_input_1$'" in done.stdout


def test_rgb_channels_last_with_20_one_hot_classes(trials, tmp_path):
    out = tmp_path / "site"
    assert report(trials["rgb-conv"], out, *OPTIONS["rgb-conv"]) == 0
    state = finished(out, 3)
    trial = state["trial"]
    assert "one-hot" in trial["label_form"] and "20 classes" in trial["label_form"]
    assert "28 x 28 RGB images (channels last)" in trial["inputs_note"] and "255" in trial["inputs_note"]
    from reporter.pictures.colours import CLASS_COLOURS

    picture = frame_pixels(out, state)
    # Every one of the 20 classes is drawn in its own colour (markers of classes 10-19 too).
    assert all(has_colour(picture, c) > 0 for c in CLASS_COLOURS), [c for c in CLASS_COLOURS if not has_colour(picture, c)]
    with np.load(out / state["frames"][-1]["npz"]) as saved:
        assert saved["labels"].max() == 19 and len(np.unique(saved["labels"])) == 20


def test_trial_without_labels_gets_one_colour_and_label_free_figures(trials, tmp_path):
    out = tmp_path / "site"
    assert report(trials["unlabelled"], out, *OPTIONS["unlabelled"]) == 0
    state = finished(out, 3)
    frames = state["frames"]
    assert all(f["knn_latent"] is None and f["knn_2d"] is None for f in frames)
    assert all(0.5 < f["trustworthiness"] <= 1.0 for f in frames)
    assert frames[0]["neighbourhood_preservation"] is None  # no frame before it
    assert all(0.0 < f["neighbourhood_preservation"] <= 1.0 for f in frames[1:])
    assert "28 x 28 grey images (a square of 784 values)" in state["trial"]["inputs_note"]
    html = (out / "index.html").read_text()
    assert "No labels" in html and "neighbourhood preservation between frames" in html
    assert "10-NN accuracy" not in html  # the label-based lines are left out, not drawn empty
    assert "points in one colour (no labels)" in html  # the GIF's alt text
    assert (out / "frames" / "frame-0000.csv").read_text().splitlines()[1].endswith(",")


def test_trial_without_images_is_the_embedding_alone_and_the_site_says_why(trials, tmp_path):
    out = tmp_path / "site"
    assert report(trials["no-images"], out, *OPTIONS["no-images"]) == 0
    state = finished(out, 3)
    assert state["trial"]["roles"]["inputs"] is None and state["frames"][-1]["eval_loss"] is None
    assert "whole numbers" in state["trial"]["label_form"]
    assert not (out / "reconstruction.png").exists()
    html = (out / "index.html").read_text()
    assert "No reconstruction grid: the trial has no input images" in html
    assert "each frame is the embedding alone" in html


def test_two_workers_show_the_first_by_default_and_another_on_request(trials, tmp_path):
    first, second = tmp_path / "w0", tmp_path / "w1"
    assert report(trials["two-workers"], first, *OPTIONS["two-workers"]) == 0
    assert report(trials["two-workers"], second, *OPTIONS["two-workers"], "--worker", "worker_1") == 0
    a, b = finished(first, 3), finished(second, 3)
    assert a["trial"]["worker"] == "worker_0" and b["trial"]["worker"] == "worker_1"
    assert a["trial"]["workers"] == ["worker_0", "worker_1"]
    # Each worker evaluated its own half of the probe set: other latents.
    with np.load(first / a["frames"][0]["npz"]) as x, np.load(second / b["frames"][0]["npz"]) as y:
        assert x["latents"].shape == y["latents"].shape and not np.allclose(x["latents"], y["latents"])
    assert "worker worker_1, one of 2" in (second / "index.html").read_text()
    done = reporter_cli("--tensors", str(trials["two-workers"]), "--out", str(tmp_path / "w7"),
                        *OPTIONS["two-workers"], "--worker", "worker_7")
    assert done.returncode == 1 and "--worker 'worker_7' is not in this trial: it has worker_0, worker_1" in done.stderr


def test_pytorch_hook_trial_in_eval_and_in_train_mode(tmp_path):
    out = tmp_path / "eval"
    assert report(TORCH_TRIAL, out, *OPTIONS["torch"]) == 0
    state = finished(out, 3)
    assert state["trial"]["mode"] == "EVAL" and not state["trial"]["independent"]
    assert "14 x 14 grey images (channels first)" in state["trial"]["inputs_note"]
    # TRAIN steps hold another batch each: every frame is embedded on its own, and the site says so.
    out = tmp_path / "train"
    assert report(TORCH_TRIAL, out, *OPTIONS["torch"][:2], "--labels-regex", "none", "--mode", "train") == 0
    state = finished(out, 2)  # TRAIN steps 0 and 10 were saved (every 10 of 20)
    assert state["trial"]["mode"] == "TRAIN" and state["trial"]["independent"]
    assert [f["step"] for f in state["frames"]] == [0, 10]
    assert all(f["neighbourhood_preservation"] is None for f in state["frames"])
    with np.load(out / state["frames"][0]["npz"]) as saved:
        assert saved["embedding"].shape == (32, 2)  # a training batch, not the 60-point probe set
    assert "Each frame is embedded on its own" in (out / "index.html").read_text()


# -- bad input: one line, non-zero exit -----------------------------------------------------------


@pytest.mark.parametrize("extra, words", [
    (["--inputs-regex", "input_0"], "--inputs-regex 'input_0' matches 2 tensors"),
    (["--image-shape", "5x5"], "--image-shape 5x5 needs 25 values per point but inputs (100, 64) has 64"),
    (["--labels-regex", "^flat_loss_output_0$"], "flat_loss_output_0 holds fractional values"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(trials, tmp_path, extra, words):
    options = list(OPTIONS["mlp-flat"])
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in options:
            options[options.index(flag) + 1] = value
        else:
            options += [flag, value]
    done = reporter_cli("--tensors", str(trials["mlp-flat"]), "--out", str(tmp_path / "site"), *options)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("reporter: error")]
    assert len(errors) == 1 and words in errors[0], done.stderr[-2000:]
    # A site already started says "failed" with that line (the image shape fails at the first frame).
    state_file = tmp_path / "site" / "state.json"
    if extra[0] == "--image-shape":
        assert state_file.is_file()
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        assert state["status"] == "failed" and state["reason"] in errors[0] and words in state["reason"]
        assert words in (tmp_path / "site" / "index.html").read_text().replace("&#39;", "'")


def test_latents_with_another_n_than_the_labels_are_refused(trials, tmp_path):
    done = reporter_cli("--tensors", str(trials["mlp-flat"]), "--out", str(tmp_path / "site"),
                        *OPTIONS["mlp-flat"], "--labels-regex", "^nothing$")
    assert done.returncode == 1 and "--labels-regex '^nothing$' matches no tensor" in done.stderr
    from trial_writer import write_trial

    rng = np.random.default_rng(0)
    store = write_trial(tmp_path / "mismatch", [{"latent": rng.normal(size=(50, 4)).astype(np.float32),
                                                 "labels": np.zeros(40, dtype=np.float32)}])
    done = reporter_cli("--tensors", str(store), "--out", str(tmp_path / "site2"))
    assert done.returncode != 0
    assert "has 40 rows but the latents" in done.stderr and "--labels-regex" in done.stderr


# -- frames of other shapes (pure: no trial needed) ---------------------------------------------------


def test_frames_with_25_classes_no_labels_or_no_images_are_drawn(tmp_path):
    from reporter.outputs.gif import GifWriter
    from reporter.pictures.colours import CLASS_COLOURS
    from reporter.pictures.render import draw_frame

    rng = np.random.default_rng(0)
    labels = np.arange(250) % 25
    emb = rng.normal(size=(250, 2)) + np.stack([np.cos(labels), np.sin(labels)], axis=1) * 6
    many = draw_frame(emb, labels, [f"c{k}" for k in range(25)], None, None, step=3)
    # Classes 20-24 reuse colours 0-4; the picture says so in words (checked by eye), all 20 are drawn.
    assert all(has_colour(many, c) > 0 for c in CLASS_COLOURS)
    flat = rng.uniform(size=(250, 3 * 16 * 16))
    plain = draw_frame(emb, None, [], flat, flat * 0.5, step=3)
    assert has_colour(plain, CLASS_COLOURS[0]) > 0 and not any(has_colour(plain, c) for c in CLASS_COLOURS[1:])
    assert plain.shape == many.shape
    # The GIF keeps the colours of classes 10-19 exactly (its palette holds all 20).
    writer = GifWriter(tmp_path / "g.gif")
    writer.append(many)
    back = iio.imread(tmp_path / "g.gif", index=None)[0]
    assert all(has_colour(back, c) > 0 for c in CLASS_COLOURS[10:])


def test_a_trial_without_eval_steps_is_read_in_the_mode_it_has(tmp_path):
    """No EVAL steps (a run that only trains): once it ended, its TRAIN steps are the frames, each on its own."""
    from smdebug import modes
    from smdebug.core.collection_manager import CollectionManager
    from smdebug.core.writer import FileWriter

    store = tmp_path / "train-only"
    rng = np.random.default_rng(0)
    for step in range(3):
        writer = FileWriter(trial_dir=str(store), worker="worker_0", step=step, mode=modes.TRAIN)
        n = 40 + 4 * step  # batches of different sizes, as a last partial batch would be
        writer.write_tensor(tdata=rng.normal(size=(n, 6)).astype(np.float32), tname="z",
                            mode=modes.TRAIN, mode_step=step)
        writer.close()
    CollectionManager().export(str(store), "worker_0_collections.json")
    (store / "training_job_end.ts").write_text("0")
    out = tmp_path / "site"
    assert report(store, out, "--latent-regex", "^z$") == 0
    state = finished(out, 3)
    assert state["trial"]["mode"] == "TRAIN" and "no EVAL steps" in state["trial"]["mode_reason"]
    sizes = []
    for frame in state["frames"]:
        with np.load(out / frame["npz"]) as saved:
            sizes.append(len(saved["embedding"]))
    assert sizes == [40, 44, 48]
