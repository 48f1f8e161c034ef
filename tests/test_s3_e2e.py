"""Trainer and reporter over ``s3://`` on a real SeaweedFS server: a live run, an outage, bad access.

Configured only by the standard AWS variables, as a user would. Every process is real: MXNet
training on MNIST, smdebug writing to S3, the reporter following it and writing the site.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, trainer_env
from s3server import SeaweedServer

pytest_plugins = ["s3server"]  # the s3_server and s3_env fixtures

# Long enough to stop the server in the middle of it; 7 EVAL steps (frames), 15 saved TRAIN steps.
FAULT_RUN = ["--steps", "150", "--eval-every", "25", "--probe-size", "200", "--batch-size", "32",
             "--save-interval", "10", "--seed", "5", "--no-progress"]
FAULT_FRAMES, FAULT_TRAIN_SAVES = 7, 15
SMALL_S3_RUN = ["--steps", "24", "--eval-every", "10", "--probe-size", "100", "--batch-size", "32",
                "--save-interval", "5", "--seed", "3", "--no-progress"]
OUTAGE_SECONDS = 10


def aws_env(server: SeaweedServer, **extra: str) -> dict:
    """A trainer/reporter environment pointing at ``server`` and nowhere else."""
    env = {k: v for k, v in trainer_env().items() if not k.startswith("AWS_")}
    env.update(server.env())
    env.update(extra)
    return env


def start_reporter(url: str, out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "-m", "reporter", "--tensors", url, "--out", str(out), "--follow",
         "--wait-timeout", "300", "--poll-interval", "0.5"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_trainer(url: str, args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "trainer", "--out", url, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def state_of(out: Path) -> dict:
    return json.loads((out / "state.json").read_text())


def wait_for_progress(server: SeaweedServer, bucket: str, key: str, step: int, timeout: float = 400) -> dict:
    """Poll the trainer's run file until it reports ``step`` (or more)."""
    client = server.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            if (info.get("progress") or {}).get("step", -1) >= step:
                return info
        except client.exceptions.NoSuchKey:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the trainer never reached step {step}")


def read_steps(server: SeaweedServer, url: str) -> dict:
    """The saved steps per mode, read back through smdebug in a fresh process."""
    code = ("import json, smdebug.trials as t; from smdebug import modes; from reporter.trial.s3 import "
            "patch_smdebug_s3; patch_smdebug_s3(); tr = t.create_trial(%r); "
            "print(json.dumps({'train': tr.steps(mode=modes.TRAIN), 'eval': tr.steps(mode=modes.EVAL), "
            "'ended': tr.loaded_all_steps}))" % url)
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=aws_env(server, SMDEBUG_LOG_LEVEL="error"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.e2e
def test_reporter_follows_a_run_written_to_s3(tmp_path, mnist_cache, s3_server):
    bucket = s3_server.create_bucket()
    url, out = f"s3://{bucket}/run-x", tmp_path / "site"
    env = aws_env(s3_server)
    reporter = start_reporter(url, out, env)
    trainer = start_trainer(url, SMALL_S3_RUN, env)
    _, trainer_err = trainer.communicate(timeout=600)
    assert trainer.returncode == 0, trainer_err
    reporter_out, reporter_err = reporter.communicate(timeout=300)
    assert reporter.returncode == 0, reporter_err

    state = state_of(out)
    assert state["status"] == "finished"
    assert [f["step"] for f in state["frames"]] == [0, 1, 2, 3]  # steps 0, 10, 20 and the last
    assert state["tensors"] == url
    assert all(f["checked"] for f in state["frames"])  # the trainer's digests on S3, checked
    run = json.loads((out / "run.json").read_text())
    assert run["finished"] and run["expected_frames"] == 4
    assert (out / "index.html").is_file() and (out / "latentlapse.gif").stat().st_size > 0

    # One prefix per run: a second trainer on the same prefix is refused, nothing is touched.
    again = subprocess.run([PYTHON, "-m", "trainer", "--out", url, *SMALL_S3_RUN], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 1
    assert f"trainer: error: {url} already holds a run" in again.stderr
    assert read_steps(s3_server, url)["eval"] == [0, 1, 2, 3]


@pytest.mark.e2e
def test_trainer_and_reporter_survive_the_server_stopping_mid_run(tmp_path, mnist_cache):
    server = SeaweedServer(tmp_path / "seaweedfs")
    server.start()
    try:
        bucket = server.create_bucket()
        url, out = f"s3://{bucket}/run-fault", tmp_path / "site"
        env = aws_env(server)
        reporter = start_reporter(url, out, env)
        trainer = start_trainer(url, FAULT_RUN, env)
        wait_for_progress(server, bucket, "run-fault/latentlapse-run.json", 50)
        assert trainer.poll() is None, "the run ended before the outage"
        server.stop()                     # SIGTERM: it answers 500 while it drains, then is gone
        time.sleep(OUTAGE_SECONDS)
        server.start()                    # same ports, same data folder
        _, trainer_err = trainer.communicate(timeout=600)
        assert trainer.returncode == 0, trainer_err
        assert "Traceback" not in trainer_err
        _, reporter_err = reporter.communicate(timeout=300)
        assert reporter.returncode == 0, reporter_err

        # Nothing lost: every saved step is in the store, every frame on the site.
        steps = read_steps(server, url)
        assert steps["eval"] == list(range(FAULT_FRAMES))
        assert len(steps["train"]) == FAULT_TRAIN_SAVES and steps["ended"] is True
        state = state_of(out)
        assert state["status"] == "finished"
        assert [f["step"] for f in state["frames"]] == list(range(FAULT_FRAMES))
        assert state["gif"]["frames"] == FAULT_FRAMES
        assert all(f["eval_loss"] is not None for f in state["frames"])
    finally:
        server.stop(grace=5)


def _error_lines(stderr: str, program: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{program}: error:")]


def _bad_access(server: SeaweedServer, case: str) -> tuple[dict, str, str]:
    """(environment, url, expected message) for one way of getting S3 access wrong."""
    bucket = server.create_bucket()
    if case == "wrong credentials":
        return (aws_env(server, AWS_SECRET_ACCESS_KEY="wrong"), f"s3://{bucket}/run",
                "rejected the AWS credentials (SignatureDoesNotMatch)")
    if case == "missing bucket":
        return aws_env(server), "s3://no-such-bucket/run", "bucket 'no-such-bucket' does not exist"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    return (aws_env(server, AWS_ENDPOINT_URL_S3=endpoint), f"s3://{bucket}/run",
            f"cannot reach the S3 endpoint {endpoint}")


CASES = ["wrong credentials", "missing bucket", "unreachable endpoint"]


@pytest.mark.e2e
def test_trainer_bad_access_is_one_line(tmp_path, s3_server, mnist_cache):
    # One case through the CLI (each costs an MXNet start); test_s3_access checks all three messages.
    env, url, message = _bad_access(s3_server, "wrong credentials")
    done = subprocess.run([PYTHON, "-m", "trainer", "--out", url, *SMALL_S3_RUN], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    errors = _error_lines(done.stderr, "trainer")
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("case", CASES)
def test_reporter_bad_access_is_one_line(case, tmp_path, s3_server):
    env, url, message = _bad_access(s3_server, case)
    # --follow: without the check, smdebug would log and wait for the collections forever.
    done = subprocess.run([PYTHON, "-m", "reporter", "--tensors", url, "--out", str(tmp_path / "site"),
                           "--follow"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    errors = _error_lines(done.stderr, "reporter")
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr
