"""The reporter over real trials: one frame per EVAL step, following a live run, resuming, bad input."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import PYTHON, ROOT, SMALL_RUN, trainer_env
from latentlapse import report_layout
from reporter import ReporterError
from reporter.config import from_args
from reporter.pipeline import run
from trial_writer import NAMES, probe_arrays, write_trial


def reporter_env(**extra: str) -> dict:
    env = trainer_env()
    env.update(extra)
    return env


def run_reporter(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "reporter", *args], cwd=ROOT, env=env or reporter_env(),
                          capture_output=True, text=True, timeout=timeout)


def report(tensors, out, *extra) -> int:
    return run(from_args(["--tensors", str(tensors), "--out", str(out), "--retry-delay", "0.2", *extra],
                         environ={}))


def state_of(out: Path) -> dict:
    return json.loads((out / "state.json").read_text())


@pytest.fixture(scope="module")
def small_report(small_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "site"
    assert report(small_run, out) == 0
    return out


def test_one_frame_per_eval_step(small_report, small_run):
    state = state_of(small_report)
    assert state["status"] == "finished"
    assert [f["step"] for f in state["frames"]] == [0, 1, 2, 3]
    assert [f["global_step"] for f in state["frames"]] == [0, 11, 22, 27]  # EVAL passes between 24 TRAIN steps
    # What people count: train steps done (the frame says "step 24 of 24"); the global step stays in the data.
    assert [(f["train_step"], f["total_steps"]) for f in state["frames"]] == [(0, 24), (10, 24), (20, 24), (24, 24)]
    gif = iio.imread(small_report / "latentlapse.gif", index=None)
    assert gif.shape[0] == 4 and gif.shape[-1] == 3
    for frame in state["frames"]:
        coords = np.loadtxt(small_report / frame["csv"], delimiter=",", skiprows=1)
        assert coords.shape == (100, 3)
        with np.load(small_report / frame["npz"]) as saved:
            assert np.allclose(saved["embedding"], coords[:, :2], rtol=1e-5, atol=1e-5)
            assert (saved["train_step"], saved["global_step"]) == (frame["train_step"], frame["global_step"])
        assert (small_report / frame["png"]).stat().st_size > 0
        assert 0.0 <= frame["knn_2d"] <= 1.0 and 0.5 <= frame["trustworthiness"] <= 1.0
    # TRAIN losses saved between EVAL passes reach the frame that follows them.
    assert state["frames"][0]["train_losses"] == []
    assert [g for g, _ in state["frames"][1]["train_losses"]] == [1, 6]  # TRAIN steps 0 and 5
    assert {t["name"] for t in state["tensors_inventory"]} == set(NAMES.values())
    # Listed at most every 30 s while live, and once more at the end: the table is the final store's.
    assert (small_report / "index.html").is_file()


def test_the_tensor_table_is_listed_at_the_first_frame_then_every_30_s_and_at_the_end(small_run, tmp_path,
                                                                                   monkeypatch):
    from reporter import pipeline
    from reporter.trial.store import TensorStore

    listed = []
    refresh = pipeline.Report.refresh_inventory

    def counted(self):
        listed.append(len(self.state.frames))
        return refresh(self)

    monkeypatch.setattr(pipeline.Report, "refresh_inventory", counted)
    monkeypatch.setattr(pipeline, "HEARTBEAT_SECONDS", 3600)  # a slow machine must not list it again
    assert report(small_run, tmp_path / "site") == 0
    # All four frames within the interval: listed once frame 0 is recorded, then once more at the end.
    assert listed == [1, 4]
    store = TensorStore(str(small_run))
    store.open(timeout=5)
    assert state_of(tmp_path / "site")["tensors_inventory"] == store.inventory()


def test_rerun_on_a_finished_report_changes_nothing(small_report, small_run):
    before = (small_report / "latentlapse.gif").read_bytes()
    assert report(small_run, small_report) == 0
    assert (small_report / "latentlapse.gif").read_bytes() == before
    assert len(state_of(small_report)["frames"]) == 4


@pytest.mark.e2e
def test_follows_a_live_run_started_after_it(tmp_path, mnist_cache):
    tensors, out = tmp_path / "tensors", tmp_path / "site"
    reporter = subprocess.Popen(
        [PYTHON, "-m", "reporter", "--tensors", str(tensors), "--out", str(out), "--follow",
         "--wait-timeout", "300", "--poll-interval", "0.5"],
        cwd=ROOT, env=reporter_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    trainer = subprocess.run([PYTHON, "-m", "trainer", "--out", str(tensors), *SMALL_RUN],
                             cwd=ROOT, env=trainer_env(), capture_output=True, text=True, timeout=600)
    assert trainer.returncode == 0, trainer.stderr
    stdout, stderr = reporter.communicate(timeout=300)
    assert reporter.returncode == 0, stderr
    assert "waiting up to 300 s for a trial" in stderr
    state = state_of(out)
    assert state["status"] == "finished" and len(state["frames"]) == 4
    assert f"GIF at {out / 'latentlapse.gif'}" in stdout


def test_killed_and_restarted_ends_with_the_same_outputs(tmp_path, small_run, small_report):
    out = tmp_path / "site"
    proc = subprocess.Popen([PYTHON, "-m", "reporter", "--tensors", str(small_run), "--out", str(out)],
                            cwd=ROOT, env=reporter_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if (out / "state.json").is_file() and len(state_of(out)["frames"]) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= len(state_of(out)["frames"]) < 4, "the reporter was not killed mid-run"
    assert report(small_run, out) == 0
    for name in ["latentlapse.gif", "latentlapse.mp4", "figure.pdf", "figure.svg", "figure.png",
                 *(f"frames/frame-{i:04d}.{ext}" for i in range(4) for ext in ("npz", "csv", "png"))]:
        assert (out / name).read_bytes() == (small_report / name).read_bytes(), name


def test_nan_latents_mark_the_frame(tmp_path):
    steps = [probe_arrays(100, s) for s in range(3)]
    steps[1]["latent"][5, 3] = np.nan
    trial = write_trial(tmp_path / "nan", steps)
    out = tmp_path / "site"
    assert report(trial, out) == 0
    frames = state_of(out)["frames"]
    assert [f["nonfinite"] for f in frames] == [False, True, False]
    assert frames[1]["knn_2d"] is None
    assert any(a["rule"] == "nonfinite" or "nan" in a["rule"].lower() for a in state_of(out)["alerts"])


def test_probe_set_that_changes_size_is_an_error(tmp_path):
    trial = write_trial(tmp_path / "sizes", [probe_arrays(100, 0), probe_arrays(50, 1)])
    with pytest.raises(ReporterError, match="holds 50 probe points, earlier frames 100"):
        report(trial, tmp_path / "site")
    assert len(state_of(tmp_path / "site")["frames"]) == 1  # the good frame is kept


def test_regex_matching_nothing_lists_the_tensors(tmp_path, small_run):
    done = run_reporter("--tensors", str(small_run), "--out", str(tmp_path / "site"), "--latent-regex", "encoder_out")
    assert done.returncode == 1
    line = [x for x in done.stderr.splitlines() if x.startswith("reporter: error:")]
    assert len(line) == 1 and "'encoder_out' matches no tensor; the latent vectors (the bottleneck) are most likely" in line[0]
    assert NAMES["latent"] in line[0] and "Traceback" not in done.stderr


def test_other_tensor_names_through_options(tmp_path):
    names = {"latent": "enc/z", "labels": "y", "inputs": "x", "recon": "xhat", "loss": "mse"}
    trial = write_trial(tmp_path / "other", [probe_arrays(60, s) for s in range(2)], names=names)
    out = tmp_path / "site"
    assert report(trial, out, "--latent-regex", "^enc/z$", "--labels-regex", "^y$", "--inputs-regex", "^x$",
                  "--recon-regex", "^xhat$", "--loss-regex", "^mse$") == 0
    assert len(state_of(out)["frames"]) == 2


def test_corrupted_event_file_is_skipped_with_a_note(tmp_path):
    trial = write_trial(tmp_path / "bad", [probe_arrays(100, s) for s in range(3)])
    event = next((trial / "events" / "000000000001").glob("*.tfevents"))
    event.write_bytes(event.read_bytes()[:200])  # truncated mid-record
    out = tmp_path / "site"
    assert report(trial, out, "--retries", "2") == 0
    state = state_of(out)
    assert [f["step"] for f in state["frames"]] == [0, 2]
    assert [s["step"] for s in state["skipped"]] == [1]


def test_no_trial_one_shot(tmp_path):
    done = run_reporter("--tensors", str(tmp_path / "nothing"), "--out", str(tmp_path / "site"))
    assert done.returncode == 1
    assert "does not exist: pass the trainer's --out folder to --tensors" in done.stderr


def test_no_trial_follow_waits_then_gives_up(tmp_path):
    done = run_reporter("--tensors", str(tmp_path / "nothing"), "--out", str(tmp_path / "site"), "--follow",
                        "--wait-timeout", "2")
    assert done.returncode == 1
    assert "waiting up to 2 s" in done.stderr and "after waiting 2 s" in done.stderr


def test_the_layout_names_every_entry_a_report_holds_and_compose_reads_its_state(small_report):
    entries = {p.name for p in small_report.iterdir() if not p.name.startswith(".")}
    assert entries <= report_layout.OWN_ENTRIES
    assert {"state.json", "index.html", "latentlapse.gif", "frames", "explore", "metrics.csv"} <= entries
    # What `latentlapse-compose result` prints, read without the reporter (the S3 image has only latentlapse/).
    state = state_of(small_report)
    summary = report_layout.read_summary(small_report)
    assert (summary.status, summary.frames) == ("finished", len(state["frames"])) == ("finished", 4)
    assert (summary.gif, summary.gif_bytes) == ("latentlapse.gif", (small_report / "latentlapse.gif").stat().st_size)
    assert report_layout.read_summary(small_report / "frames") is None  # no state.json: not started


def test_a_finished_report_keeps_no_video_work_files_and_a_rerun_makes_the_same_mp4(small_report, small_run, tmp_path):
    assert not (small_report / ".video").exists()  # the MP4's segments are gone once it is final
    copy = tmp_path / "copy"
    shutil.copytree(small_report, copy)
    mp4 = (copy / "latentlapse.mp4").read_bytes()
    assert report(small_run, copy) == 0  # started again: the segments are encoded again from frames/
    assert (copy / "latentlapse.mp4").read_bytes() == mp4
    assert not (copy / ".video").exists()


def test_foreign_output_folder_is_refused(tmp_path, small_run):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ReporterError, match="holds files that are not a latentlapse report"):
        report(small_run, out)
    assert (out / "thesis.tex").read_text() == "precious"


def test_report_of_another_store_is_refused(tmp_path, small_report):
    other = write_trial(tmp_path / "other", [probe_arrays(100, 0)])
    with pytest.raises(ReporterError, match="holds the report of another tensor store"):
        report(other, small_report)


def test_bad_option_values(tmp_path):
    with pytest.raises(ReporterError, match="--wait-timeout must be positive"):
        from_args(["--tensors", "x", "--wait-timeout", "0"], environ={})
    with pytest.raises(ReporterError, match="REPORTER_FOLLOW='maybe' is not a boolean"):
        from_args(["--tensors", "x"], environ={"REPORTER_FOLLOW": "maybe"})
    with pytest.raises(ReporterError, match="no tensor store given"):
        from_args([], environ={})


def test_tensors_command_lists_names_shapes_modes(small_run):
    done = run_reporter("tensors", str(small_run))
    assert done.returncode == 0, done.stderr
    tensors, roles = done.stdout.split("\n\n")[0], done.stdout.split("\n\n")[-1]
    rows = {line.split()[0]: line.split()[1:] for line in tensors.splitlines()[1:]}
    assert {line.split()[0]: line.split()[1] for line in roles.splitlines()[1:]} == NAMES  # the defaults fit
    assert rows[NAMES["latent"]][0] == "100x20" or rows[NAMES["latent"]][0] == "32x20"
    assert "EVAL" in rows[NAMES["latent"]][1] and "TRAIN" in rows[NAMES["latent"]][1]
    assert rows[NAMES["loss"]][2] == str(4 + 5)


def test_probe_images_are_found_whether_saved_once_or_at_every_step(tmp_path):
    from reporter.trial.store import TensorStore

    every = [probe_arrays(100, s) for s in range(3)]
    once = [every[0]] + [{k: v for k, v in arrays.items() if k != "inputs"} for arrays in every[1:]]
    for name, steps, expected in [("every", every, [a["inputs"] for a in every]),
                                  ("once", once, [every[0]["inputs"]] * 3)]:
        store = TensorStore(str(write_trial(tmp_path / name, steps)))
        store.open(timeout=0)
        store.resolve_names()
        for step, images in enumerate(expected):
            assert np.array_equal(store.read_probe_step(step, since_global_step=None).inputs, images), (name, step)
    # A store whose images were never saved up to a step says so for that step (after its retries).
    from reporter.trial.store import StepUnreadable

    late = [{k: v for k, v in every[0].items() if k != "inputs"}, every[1]]
    store = TensorStore(str(write_trial(tmp_path / "late", late)), retries=1)
    store.open(timeout=0)
    store.resolve_names()
    with pytest.raises(StepUnreadable, match="EVAL step 0"):
        store.read_probe_step(0, since_global_step=None)
    assert store.read_probe_step(1, since_global_step=None).inputs.shape == (100, 1, 28, 28)
