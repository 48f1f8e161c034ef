"""Faults, each with nothing lost: a stop signal, a full disk, the reporter's own error, damaged steps.

Every way the reporter ends writes its final status first; the site says it in words and stops
reloading; a restart after a stop or a full disk finishes with the outputs of a run never
interrupted.
"""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, trainer_env
from reporter.config import from_args
from reporter.pipeline import run
from trial_writer import probe_arrays, write_step, write_trial

pytestmark = pytest.mark.e2e  # a real S3 server, browser, training run or reporter process

FRAME_FILES = [f"frames/frame-{i:04d}.{ext}" for i in range(4) for ext in ("npz", "csv", "png")]


def report(tensors, out, *extra) -> int:
    return run(from_args(["--tensors", str(tensors), "--out", str(out), "--retry-delay", "0.1", *extra],
                         environ={}))


def reporter(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "reporter", *args], cwd=ROOT, env=trainer_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def state_of(out: Path) -> dict:
    return json.loads((out / "state.json").read_text())


def frames_in(out: Path) -> int:
    try:
        return len(state_of(out)["frames"])
    except (OSError, ValueError):
        return 0


def wait_for_frames(out: Path, n: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while frames_in(out) < n:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"no {n} frames within {timeout} s"
        time.sleep(0.05)


def assert_final_page(out: Path, status_text: str, reason: str) -> None:
    """The page says the status and the reason, and no longer reloads itself."""
    html = (out / "index.html").read_text()
    assert f"{status_text} at" in html and reason in html
    assert 'http-equiv="refresh"' not in html and 'id="auto-refresh"' not in html and '"live":false' in html


def assert_state_names_only_files_that_exist(out: Path) -> None:
    state = state_of(out)
    for frame in state["frames"]:
        for key in ("png", "csv", "npz"):
            assert (out / frame[key]).is_file(), frame[key]
    if state["gif"]:
        assert (out / state["gif"]["path"]).is_file()


@pytest.fixture(scope="module")
def reference(small_run, tmp_path_factory) -> Path:
    """The report of small_run made in one go, never interrupted."""
    out = tmp_path_factory.mktemp("reference") / "site"
    assert report(small_run, out) == 0
    return out


def test_sigterm_mid_run_stops_and_a_restart_finishes_as_if_never_stopped(tmp_path, small_run, reference):
    out = tmp_path / "site"
    proc = reporter("--tensors", str(small_run), "--out", str(out))
    wait_for_frames(out, 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    state = state_of(out)
    assert 1 <= len(state["frames"]) < 4, "the reporter was not stopped mid-run"
    assert state["status"] == "stopped"
    reason = f"stopped by SIGTERM after {len(state['frames'])} frames: run the same command again to continue"
    assert state["reason"] == reason and f"reporter: {reason}" in stderr.splitlines()
    assert_state_names_only_files_that_exist(out)
    assert_final_page(out, "Stopped", reason)

    assert report(small_run, out) == 0
    assert state_of(out)["status"] == "finished" and state_of(out)["reason"] is None
    for name in ["latentlapse.gif", *FRAME_FILES]:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert not (out / ".latentlapse-reserve").exists()  # an ended report keeps no reserve


def test_sigint_waiting_for_a_trial_ends_without_a_folder(tmp_path):
    out = tmp_path / "site"
    proc = reporter("--tensors", str(tmp_path / "not-yet"), "--out", str(out), "--follow", "--wait-timeout", "300")
    deadline = time.monotonic() + 120
    while True:  # stop it once it waits (its log says so)
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, "the reporter never started waiting"
        if "waiting up to" in line:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    assert not (out / "state.json").exists()  # no report had started: nothing claims the folder


@pytest.mark.parametrize("bad_step, expected", [
    (probe_arrays(50, 1), "EVAL step 1 holds 50 probe points, earlier frames 100"),
    ({**probe_arrays(100, 1), "recon": probe_arrays(100, 1)["recon"][:60]},
     "l2loss0_input_0 has 60 rows but the latents"),
])
def test_the_reporters_own_error_mid_run_fails_on_the_site_with_the_reason(tmp_path, bad_step, expected):
    trial = write_trial(tmp_path / "t", [probe_arrays(100, 0), bad_step])
    out = tmp_path / "site"
    proc = reporter("--tensors", str(trial), "--out", str(out), "--retry-delay", "0.1")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    lines = [x for x in stderr.splitlines() if x.startswith("reporter: error: ")]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in stderr
    state = state_of(out)
    assert state["status"] == "failed" and state["reason"] == lines[0].removeprefix("reporter: error: ")
    assert len(state["frames"]) == 1  # the good frame is kept
    assert_final_page(out, "Failed", expected)


def test_a_truncated_event_file_is_shown_in_words_at_its_place(tmp_path):
    trial = write_trial(tmp_path / "t", [probe_arrays(100, s) for s in range(3)])
    event = next((trial / "events" / "000000000001").glob("*.tfevents"))
    full = event.stat().st_size
    event.write_bytes(event.read_bytes()[:1234])
    out = tmp_path / "site"
    assert report(trial, out, "--retries", "2") == 0
    skipped = state_of(out)["skipped"]
    reason = f"event file truncated: 1,234 of {full:,} bytes ({event.name})"
    assert skipped == [{"step": 1, "global_step": 1, "position": 1, "reason": reason}]
    html = (out / "index.html").read_text()
    assert "1 step skipped" in html                                     # the header's count
    assert f"EVAL step 1 skipped before this frame (step 1: {reason})" in html  # frame 2's caption
    assert f"EVAL step 1 skipped: {reason}" in html                     # its row in the numbers
    # The GIF's, the video's and the figure's captions (each counts frames).
    assert html.count("1 evaluation step without a frame") == 3


def _mount_small_disk(where: Path, size: str) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"a full disk is tested on a tmpfs, and mounting one needs root here: {done.stderr.strip()}")


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12):
            try:
                while True:
                    f.write(bytes(chunk))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_during_a_frame_fails_clearly_and_a_restart_finishes(tmp_path):
    steps = [probe_arrays(100, s) for s in range(4)]
    reference = tmp_path / "reference"
    assert report(write_trial(tmp_path / "whole", steps), reference) == 0
    disk = tmp_path / "disk"
    _mount_small_disk(disk, "64m")
    try:
        trial, out = tmp_path / "growing", disk / "site"
        for step in range(3):
            write_step(trial, step, steps[step])
        proc = reporter("--tensors", str(trial), "--out", str(out), "--follow", "--poll-interval", "0.2",
                        "--wait-timeout", "300")
        wait_for_frames(out, 3, proc)
        filler = _fill(disk)
        write_step(trial, 3, steps[3])  # frame 3 finds no room
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 3, stderr
        reason = (f"the disk of {out} is full (No space left on device); 3 frames kept: free some space, "
                  "then run the same command again to continue")
        assert f"reporter: error: {reason}" in stderr.splitlines() and "Traceback" not in stderr
        state = state_of(out)
        assert state["status"] == "failed" and state["reason"] == reason and len(state["frames"]) == 3
        assert_state_names_only_files_that_exist(out)
        for name in FRAME_FILES[:9]:  # frames 0-2
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
        assert_final_page(out, "Failed", reason)

        filler.unlink()  # space returns
        (trial / "training_job_end.ts").write_text("0")
        assert report(trial, out) == 0
        assert state_of(out)["status"] == "finished"
        for name in ["latentlapse.gif", *FRAME_FILES]:
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_real_run_is_checked_end_to_end(reference):
    assert all(f["checked"] is True for f in state_of(reference)["frames"])
    assert "every frame matches the trainer&#39;s digests" in (reference / "index.html").read_text()


def _flip_a_payload_byte(store: Path, global_step: int, tensor: str) -> None:
    """Change one byte inside ``tensor``'s values at ``global_step`` (its record's length CRC stays right)."""
    index = json.loads((store / "index" / "000000000" / f"{global_step:012d}_worker_0.json").read_text())
    entry = next(t for t in index["tensor_payload"] if t["tensorname"] == tensor)
    event = store / index["meta"]["event_file_name"]
    data = bytearray(event.read_bytes())
    at = entry["start_idx"] + entry["length"] - 4 - 400  # inside the values, before the record's footer
    data[at] ^= 0x10
    event.write_bytes(bytes(data))


def test_a_flipped_payload_byte_is_detected_skipped_and_shown(tmp_path, small_run, reference):
    import shutil

    from smdebug.trials import create_trial

    store = tmp_path / "tensors"
    shutil.copytree(small_run, store)
    latent = "convolutionalautoencoder0_hybridsequential0_dense0_output_0"
    _flip_a_payload_byte(store, 11, latent)  # EVAL step 1
    # smdebug itself reads the changed values without complaint: only the digest tells.
    from smdebug import modes
    assert create_trial(str(store)).tensor(latent).value(1, mode=modes.EVAL).shape == (100, 20)

    out = tmp_path / "site"
    assert report(store, out, "--retries", "2") == 0
    state = state_of(out)
    assert [f["step"] for f in state["frames"]] == [0, 2, 3]
    [skipped] = state["skipped"]
    assert skipped["step"] == 1 and skipped["position"] == 1
    assert skipped["reason"].startswith(f"data does not match what the trainer wrote ({latent}: its bytes differ")
    html = (out / "index.html").read_text()
    assert "1 step skipped" in html and "EVAL step 1 skipped before this frame" in html
    assert "data does not match what the trainer wrote" in html
    # Nothing before the damage changed (later frames warm-start from a different frame, so differ).
    assert (out / "frames/frame-0000.npz").read_bytes() == (reference / "frames/frame-0000.npz").read_bytes()


def test_a_store_without_digests_is_read_as_before_and_said_not_checked(tmp_path):
    trial = write_trial(tmp_path / "other", [probe_arrays(60, s) for s in range(2)])
    out = tmp_path / "site"
    assert report(trial, out) == 0
    assert [f["checked"] for f in state_of(out)["frames"]] == [False, False]
    assert "not checked: the store has no digests" in (out / "index.html").read_text()


def test_a_waiting_reporter_says_it_is_still_there(tmp_path):
    """Nothing new in the store and training not ended: the state is still saved every HEARTBEAT_SECONDS
    (the page tells a waiting reporter from a killed one by that)."""
    from reporter.state import HEARTBEAT_SECONDS

    trial = write_trial(tmp_path / "t", [probe_arrays(60, s) for s in range(2)], end=False)
    out = tmp_path / "site"
    proc = reporter("--tensors", str(trial), "--out", str(out), "--follow", "--stall-after", "600",
                    "--wait-timeout", "900")
    try:
        deadline = time.monotonic() + 120
        while frames_in(out) < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert frames_in(out) >= 1, "no frame came"
        time.sleep(5)  # any frame still to come is made by now: what changes next is the heartbeat
        frames, first = frames_in(out), state_of(out)["updated"]
        deadline = time.monotonic() + HEARTBEAT_SECONDS + 30
        while state_of(out)["updated"] == first and time.monotonic() < deadline:
            time.sleep(1)
        state = state_of(out)
        assert state["updated"] != first and state["status"] == "running"
        assert len(state["frames"]) == frames  # a save with nothing new in it
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert state_of(out)["status"] == "stopped"
