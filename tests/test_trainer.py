"""Real training runs (MXNet + smdebug on real MNIST), read back by a separate smdebug trial."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from smdebug import modes
from smdebug.trials import create_trial

from conftest import SMALL_RUN, run_trainer, trainer_env

LATENT = "convolutionalautoencoder0_hybridsequential0_dense0_output_0"
IMAGES = "convolutionalautoencoder0_input_0"
LABELS = "convolutionalautoencoder0_input_1"
RECON = "l2loss0_input_0"
LOSS = "l2loss0_output_0"


@pytest.fixture(scope="module")
def trial(small_run):
    return create_trial(str(small_run))


def test_store_holds_the_expected_tensors_and_steps(trial, small_run):
    assert sorted(trial.tensor_names()) == sorted([LATENT, IMAGES, LABELS, RECON, LOSS])
    # 24 train steps, EVAL at 0, 10, 20 and at the end: four frames.
    assert trial.steps(mode=modes.EVAL) == [0, 1, 2, 3]
    assert trial.steps(mode=modes.TRAIN) == [0, 5, 10, 15, 20]
    assert trial.loaded_all_steps
    run = json.loads((small_run / "latentlapse-run.json").read_text())
    assert run["expected_frames"] == 4 and run["eval_steps"] == [0, 10, 20, 24]
    assert run["parameters"] == 73_909 and run["finished"]
    assert run["class_names"] == [str(d) for d in range(10)]


def test_every_eval_step_has_digests_of_what_smdebug_reads_back(trial, small_run):
    from latentlapse.digests import tensor_digest

    run = json.loads((small_run / "latentlapse-run.json").read_text())
    assert run["digests"] == "latentlapse-digests"
    for step in trial.steps(mode=modes.EVAL):
        recorded = json.loads((small_run / f"latentlapse-digests/eval-{step:012d}.json").read_text())
        assert recorded["mode"] == "EVAL" and recorded["step"] == step and recorded["algorithm"] == "sha256"
        saved = {n for n in trial.tensor_names() if step in trial.tensor(n).steps(mode=modes.EVAL)}
        assert set(recorded["tensors"]) == saved  # every tensor the hook wrote at this step, no other
        for name, digest in recorded["tensors"].items():
            assert tensor_digest(np.asarray(trial.tensor(name).value(step, mode=modes.EVAL))) == digest, name
    assert not list(small_run.glob("latentlapse-digests/.*"))  # written atomically: no temporary left


def test_every_eval_step_holds_the_same_probe_set(trial):
    labels = [trial.tensor(LABELS).value(s, mode=modes.EVAL) for s in trial.steps(mode=modes.EVAL)]
    for other_labels in labels[1:]:
        assert np.array_equal(labels[0], other_labels)
    # The images never change: saved at the first EVAL step only; reconstructions at every one.
    assert trial.tensor(IMAGES).steps(mode=modes.EVAL) == [0]
    assert trial.tensor(RECON).steps(mode=modes.EVAL) == [0, 1, 2, 3]
    assert trial.tensor(IMAGES).steps(mode=modes.TRAIN) == trial.steps(mode=modes.TRAIN)
    assert trial.tensor(IMAGES).value(0, mode=modes.EVAL).shape == (100, 1, 28, 28)
    assert np.bincount(labels[0].astype(int)).tolist() == [10] * 10  # 100 probe images, 10 per class
    assert list(labels[0]) == sorted(labels[0])                         # ordered by class
    latent = trial.tensor(LATENT).value(3, mode=modes.EVAL)
    assert latent.shape == (100, 20) and np.isfinite(latent).all()
    assert trial.tensor(RECON).value(3, mode=modes.EVAL).shape == (100, 1, 28, 28)
    assert trial.tensor(LOSS).value(3, mode=modes.EVAL).shape == (100,)


def test_probe_set_is_equal_per_class_while_the_test_set_allows_then_as_equal_as_it_allows():
    from trainer.train import PROBE_SEED, choose_probe_set, probe_quota

    mnist_test = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert probe_quota(mnist_test, 8920).tolist() == [892] * 10
    assert probe_quota(mnist_test, 9000).tolist() == [901, 901, 901, 901, 901, 892, 901, 901, 901, 900]
    assert probe_quota(mnist_test, 10000).tolist() == mnist_test
    labels = np.repeat(np.arange(10), mnist_test)
    np.random.default_rng(0).shuffle(labels)
    everything = choose_probe_set(labels, 10000, 10)
    assert sorted(everything) == list(range(10000)) and list(labels[everything]) == sorted(labels)
    probe = choose_probe_set(labels, 9000, 10)
    assert len(set(probe)) == 9000 and np.bincount(labels[probe]).tolist() == probe_quota(mnist_test, 9000).tolist()
    # Up to the equal limit the images are those earlier versions chose: runs stay comparable.
    rng = np.random.RandomState(PROBE_SEED)
    before = [np.sort(rng.choice(np.flatnonzero(labels == c), 100, replace=False)) for c in range(10)]
    assert np.array_equal(choose_probe_set(labels, 1000, 10), np.concatenate(before))


def test_same_seed_same_run(tmp_path, small_run, trial):
    again = tmp_path / "again"
    done = run_trainer("--out", str(again), *SMALL_RUN)
    assert done.returncode == 0, done.stderr
    other = create_trial(str(again))
    for step in trial.steps(mode=modes.EVAL):
        assert np.array_equal(trial.tensor(LATENT).value(step, mode=modes.EVAL),
                              other.tensor(LATENT).value(step, mode=modes.EVAL))


@pytest.mark.e2e
def test_default_learning_rate_really_learns(tmp_path, mnist_cache):
    # 400 steps (under half the default run) is where it starts to pay; docs/benchmarks.md has a whole epoch.
    # Seed 2 is one whose output saturated to an all-black image without the learning-rate warm-up.
    out = tmp_path / "learn"
    done = run_trainer("--out", str(out), "--steps", "400", "--eval-every", "200", "--probe-size", "100",
                       "--save-interval", "50", "--seed", "2", "--no-progress")
    assert done.returncode == 0, done.stderr
    trial = create_trial(str(out))
    images = trial.tensor(IMAGES).value(0, mode=modes.EVAL)
    # A collapsed model draws one grey picture; the best single grey is the mean pixel. L2Loss = 0.5 * MSE.
    constant_loss = 0.5 * float(((images - images.mean()) ** 2).mean())
    last = trial.steps(mode=modes.EVAL)[-1]
    losses = [float(trial.tensor(LOSS).value(s, mode=modes.EVAL).mean()) for s in trial.steps(mode=modes.EVAL)]
    recon = trial.tensor(RECON).value(last, mode=modes.EVAL)
    assert losses[-1] < losses[0] and losses[-1] < 0.75 * constant_loss, (losses, constant_loss)
    # Not a constant picture: reconstructions differ from image to image (a collapsed model gives ~0),
    # and each is closer to its own input than to the other inputs.
    assert recon.std(axis=0).mean() > 0.15 * images.std(axis=0).mean()
    flat_r, flat_x = recon.reshape(100, -1), images.reshape(100, -1)
    distances = ((flat_r[:, None, :] - flat_x[None, :, :]) ** 2).mean(axis=2)
    assert (distances.argmin(axis=1) == np.arange(100)).mean() > 0.5


def test_learning_rate_warms_up_then_stays():
    from trainer.train import adam_settings

    schedule = adam_settings(3e-4, 200)["lr_scheduler"]
    rates = [schedule(n) for n in (0, 1, 100, 200, 201, 10_000, 1_000_000)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(3e-4 / 200)
    assert rates[2] == pytest.approx(1.5e-4)
    assert rates[3:] == pytest.approx([3e-4] * 4)
    assert "lr_scheduler" not in adam_settings(3e-4, 0)


# A bad option value exits 2 (fix the command line); a run the data cannot support exits 1.
@pytest.mark.parametrize("args, message, code", [
    (["--dataset", "cifar"], "unknown dataset 'cifar'", 2),
    (["--eval-every", "0"], "--eval-every must be a positive integer", 2),
    (["--save-interval", "-3"], "--save-interval must be a positive integer", 2),
    (["--steps", "0"], "--steps must be a positive integer", 2),
    (["--steps", "2.5"], "--steps must be a positive integer, got 2.5", 2),
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1", 2),
    (["--probe-size", "105"], "not a multiple of the 10 classes", 1),
    (["--probe-size", "20000"], "larger than the test set (10000 images)", 1),
    (["--lr", "fast"], "--lr='fast' is not a number", 2),
    (["--warmup-steps", "-1"], "--warmup-steps must be 0 or a positive integer", 2),
])
def test_bad_input_is_one_clear_line(tmp_path, mnist_cache, args, message, code):
    done = run_trainer("--out", str(tmp_path / "t"), "--steps", "2", *args)
    assert done.returncode == code
    lines = [line for line in done.stderr.splitlines() if line.startswith("trainer: error:")]
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_bad_environment_value_names_the_variable(tmp_path):
    done = run_trainer("--out", str(tmp_path / "t"), env=trainer_env(TRAINER_BATCH_SIZE="lots"))
    assert done.returncode == 2
    assert "TRAINER_BATCH_SIZE='lots' is not a number" in done.stderr


def test_no_data_reachable(tmp_path):
    done = run_trainer("--out", str(tmp_path / "t"), "--dataset", "fashion-mnist", "--data-dir",
                       str(tmp_path))
    assert done.returncode == 1
    assert "does not hold the four fashion-mnist IDX files" in done.stderr


def test_existing_run_is_refused_and_kept(tmp_path, small_run):
    before = sorted(p.relative_to(small_run) for p in small_run.rglob("*"))
    done = run_trainer("--out", str(small_run), "--steps", "2")
    assert done.returncode == 1
    assert "already holds a run" in done.stderr and "--overwrite" in done.stderr
    assert sorted(p.relative_to(small_run) for p in small_run.rglob("*")) == before


def test_overwrite_replaces_only_the_run(tmp_path, mnist_cache):
    out = tmp_path / "store"
    first = run_trainer("--out", str(out), "--steps", "3", "--eval-every", "3", "--probe-size", "10",
                        "--no-progress")
    assert first.returncode == 0, first.stderr
    (out / "notes.txt").write_text("mine")
    refused = run_trainer("--out", str(out), "--steps", "3", "--overwrite")
    assert refused.returncode == 1 and "not a tensor store" in refused.stderr
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    second = run_trainer("--out", str(out), "--steps", "4", "--eval-every", "2", "--probe-size", "10",
                         "--overwrite", "--no-progress")
    assert second.returncode == 0, second.stderr
    assert create_trial(str(out)).steps(mode=modes.EVAL) == [0, 1, 2]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    done = run_trainer("--out", str(locked / "store"), "--steps", "2")
    assert done.returncode == 1 and "cannot write to" in done.stderr


def test_output_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    done = run_trainer("--out", str(target), "--steps", "2")
    assert done.returncode == 1 and "is a file: choose a folder" in done.stderr
