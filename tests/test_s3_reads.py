"""A tensor store read from a folder and from ``s3://`` gives the same report, and the same line
when it cannot be read.

The S3 side is a real SeaweedFS server (tests/s3server.py); the stores are a real training run
or trials written by smdebug's own writer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, trainer_env
from latentlapse.contract import DIGEST_DIR, END_MARKER
from latentlapse.digests import digest_file
from reporter.cli import main as reporter_main
from reporter.config import from_args
from reporter.pipeline import run
from s3server import SeaweedServer, upload_folder
from trial_writer import probe_arrays, write_trial

pytestmark = pytest.mark.e2e  # a real S3 server, browser, training run or reporter process

pytest_plugins = ["s3server"]  # the s3_server and s3_env fixtures


def report(tensors, out, *extra) -> int:
    return run(from_args(["--tensors", str(tensors), "--out", str(out), "--retry-delay", "0.1", *extra],
                         environ={}))


def state_of(out: Path) -> dict:
    return json.loads((out / "state.json").read_text())


def frames_in(out: Path) -> int:
    try:
        return len(state_of(out)["frames"])
    except (OSError, ValueError, KeyError):
        return 0


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("reporter: error:")]


def after_frames(out: Path, n: int, action) -> threading.Thread:
    """Run ``action`` in a thread once the report in ``out`` has ``n`` frames (the reporter keeps
    the main thread: its signal handlers need it)."""
    def wait_then_act():
        deadline = time.monotonic() + 300
        while frames_in(out) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        action()

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def follow(tensors: str, out: Path, wait_timeout: float, capsys) -> tuple[int, list[str]]:
    """``reporter --follow`` in this process, as the CLI runs it: (exit code, its error lines)."""
    code = reporter_main(["--tensors", tensors, "--out", str(out), "--follow", "--poll-interval", "0.2",
                          "--wait-timeout", str(wait_timeout), "--retries", "2", "--retry-delay", "0.1"])
    return code, error_lines(capsys.readouterr().err)


# -- a damaged digest file ------------------------------------------------------------------------

@pytest.mark.e2e
def test_a_digest_file_that_is_not_json_is_the_same_skipped_step_locally_and_on_s3(
        tmp_path, small_run, s3_env, monkeypatch):
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    store = tmp_path / "tensors"
    shutil.copytree(small_run, store)
    damaged = digest_file(DIGEST_DIR, 1)
    (store / damaged).write_bytes(b"<html>502 Bad Gateway</html>")
    bucket = s3_env.create_bucket()
    upload_folder(s3_env.client(), bucket, "run", store)

    local, remote = tmp_path / "local", tmp_path / "remote"
    assert report(store, local, "--retries", "2") == 0
    assert report(f"s3://{bucket}/run", remote, "--retries", "2") == 0

    on_disk, on_s3 = state_of(local), state_of(remote)
    assert on_disk["status"] == on_s3["status"] == "finished"
    assert [f["step"] for f in on_disk["frames"]] == [f["step"] for f in on_s3["frames"]] == [0, 2, 3]
    [skipped] = on_disk["skipped"]
    assert skipped == on_s3["skipped"][0] and len(on_s3["skipped"]) == 1
    assert skipped["step"] == 1 and skipped["reason"].startswith(
        f"data does not match what the trainer wrote: its digest file {damaged} is not JSON")
    for out in (local, remote):
        assert "EVAL step 1 skipped before this frame" in (out / "index.html").read_text()


# -- a store that cannot be listed ----------------------------------------------------------------

def _unfinished_trial(path: Path) -> Path:
    """Two EVAL steps and no end marker: a run whose trainer is still (or no longer) writing."""
    return write_trial(path, [probe_arrays(60, s) for s in range(2)], end=False)


def test_a_store_that_stops_growing_says_the_trainer_stopped(tmp_path, capsys):
    trial = _unfinished_trial(tmp_path / "tensors")
    code, errors = follow(str(trial), tmp_path / "site", 2, capsys)
    assert code == 3
    assert len(errors) == 1 and errors[0].endswith("training has not ended: the trainer stopped"), errors


def test_a_folder_that_cannot_be_listed_says_so_not_that_the_trainer_stopped(tmp_path, capsys):
    trial = _unfinished_trial(tmp_path / "tensors")
    out = tmp_path / "site"
    # A volume unmounted, a folder moved away: smdebug then sees no new steps, without an error.
    mover = after_frames(out, 2, lambda: trial.rename(tmp_path / "moved"))
    code, errors = follow(str(trial), out, 2, capsys)
    mover.join()
    line = (f"reporter: error: cannot list the tensor store {trial} (No such file or directory): "
            "check that the folder is there and readable")
    assert (code, errors) == (1, [line])
    assert state_of(out)["status"] == "failed" and state_of(out)["reason"] in line
    assert len(state_of(out)["frames"]) == 2


@pytest.mark.e2e
def test_an_s3_store_that_cannot_be_listed_any_more_says_so(tmp_path):
    server = SeaweedServer(tmp_path / "seaweedfs")
    reader = {"name": "reader", "credentials": [{"accessKey": "reader", "secretKey": "reader-secret"}],
              "actions": ["Read", "List"]}
    server.identities.append(reader)
    server.start()
    try:
        bucket = server.create_bucket()
        upload_folder(server.client(), bucket, "run", _unfinished_trial(tmp_path / "tensors"))
        env = {**trainer_env(), **server.env(), "AWS_ACCESS_KEY_ID": "reader",
               "AWS_SECRET_ACCESS_KEY": "reader-secret"}
        out = tmp_path / "site"
        # A process of its own: the server is restarted from this one meanwhile.
        reporter = subprocess.Popen(
            [PYTHON, "-m", "reporter", "--tensors", f"s3://{bucket}/run", "--out", str(out), "--follow",
             "--poll-interval", "0.2", "--wait-timeout", "120", "--retries", "2", "--retry-delay", "0.1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while frames_in(out) < 2:
            assert reporter.poll() is None and time.monotonic() < deadline, reporter.communicate()[1]
            time.sleep(0.1)
        # The reader's s3:ListBucket is revoked while it follows the run (objects stay readable).
        server.kill()
        reader["actions"] = ["Read"]
        server.start()
        _, stderr = reporter.communicate(timeout=300)
    finally:
        server.stop(grace=5)
    line = (f"reporter: error: cannot list the tensor store s3://{bucket}/run: access denied while listing "
            f"s3://{bucket}/run (AccessDenied): the credentials need s3:ListBucket and s3:GetObject on it")
    assert (reporter.returncode, error_lines(stderr)) == (1, [line]), stderr
    assert "Traceback" not in stderr
    assert state_of(out)["status"] == "failed" and len(state_of(out)["frames"]) == 2


# -- one client ------------------------------------------------------------------------------------

def test_the_reporter_makes_its_s3_clients_once(s3_env, monkeypatch):
    import boto3

    from latentlapse import s3 as shared
    from reporter.trial import s3
    from reporter.trial.store import TensorStore

    bucket = s3_env.create_bucket()
    s3_env.client().put_object(Bucket=bucket, Key=f"run/{END_MARKER}", Body=b"0")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")  # an environment no client was made in yet
    made = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("creating-client-class.s3", lambda **kwargs: made.append(1))

    url = f"s3://{bucket}/run"
    store = TensorStore(url)
    for _ in range(5):  # what the loop asks every poll
        assert store.exists() is False
        assert store.run_info() is None
        assert store.listing_problem() is None
        assert s3.object_size(f"{url}/{END_MARKER}") == 1
    assert len(made) == 2  # one for reading, one with short timeouts for checks
    assert shared.client() is shared.client()

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "8")  # other retries: another client, made once
    assert shared.client() is shared.client()
    assert len(made) == 3
