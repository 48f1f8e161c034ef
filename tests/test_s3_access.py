"""Checks before training or reading starts, the run file, and one run per prefix — on SeaweedFS."""

from __future__ import annotations

import socket

import pytest

from latentlapse import s3 as shared_s3
from reporter import ReporterError
from reporter.trial import s3 as reporter_s3
from trainer import TrainerError
from trainer import s3 as trainer_s3

pytestmark = pytest.mark.e2e  # a real S3 server, browser, training run or reporter process

pytest_plugins = ["s3server"]  # the s3_server and s3_env fixtures


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bucket(s3_env):
    return s3_env.create_bucket()


@pytest.mark.parametrize("module, error", [(trainer_s3, TrainerError), (reporter_s3, ReporterError)])
class TestPreflight:
    def test_passes_on_a_bucket_the_credentials_reach(self, s3_env, bucket, module, error):
        module.preflight(f"s3://{bucket}/run-1")

    def test_wrong_secret_key(self, s3_env, bucket, monkeypatch, module, error):
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        with pytest.raises(error, match=r"rejected the AWS credentials \(SignatureDoesNotMatch\)"):
            module.preflight(f"s3://{bucket}/run-1")

    def test_unknown_access_key(self, s3_env, bucket, monkeypatch, module, error):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
        with pytest.raises(error, match=r"rejected the AWS credentials \(InvalidAccessKeyId\).*"
                                        r"AWS_ACCESS_KEY_ID"):
            module.preflight(f"s3://{bucket}/run-1")

    def test_no_credentials(self, s3_env, monkeypatch, module, error):
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        with pytest.raises(error, match="no AWS credentials.*AWS_ACCESS_KEY_ID"):
            module.preflight("s3://any-bucket/run-1")

    def test_missing_bucket(self, s3_env, module, error):
        with pytest.raises(error, match="bucket 'no-such-bucket' does not exist at http://127.0.0.1"):
            module.preflight("s3://no-such-bucket/run-1")

    def test_unreachable_endpoint(self, s3_env, monkeypatch, module, error):
        endpoint = f"http://127.0.0.1:{_closed_port()}"
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        with pytest.raises(error, match=f"cannot reach the S3 endpoint {endpoint}.*AWS_ENDPOINT_URL_S3"):
            module.preflight("s3://any-bucket/run-1")

    def test_messages_are_one_line(self, s3_env, monkeypatch, module, error):
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        with pytest.raises(error) as caught:
            module.preflight("s3://any-bucket/run-1")
        assert "\n" not in str(caught.value)

    def test_sets_bounded_retries_unless_chosen(self, s3_env, bucket, monkeypatch, module, error):
        module.preflight(f"s3://{bucket}/run-1")
        import os

        assert os.environ["AWS_RETRY_MODE"] == "standard"
        assert os.environ["AWS_MAX_ATTEMPTS"] == "10"
        assert shared_s3.configure_retries({"AWS_MAX_ATTEMPTS": "3"}) == {
            "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "3"}


def test_urls_without_a_run_prefix_are_refused():
    with pytest.raises(TrainerError, match="names a whole bucket: add a prefix"):
        trainer_s3.parse_url("s3://bucket")
    with pytest.raises(TrainerError, match="not an S3 URL"):
        trainer_s3.parse_url("http://bucket/run")
    assert trainer_s3.parse_url("s3://bucket/runs/one/") == ("bucket", "runs/one")
    with pytest.raises(ReporterError, match="not an S3 URL"):
        reporter_s3.parse_url("s3:/bucket/run")


def test_one_run_per_prefix(s3_env, bucket):
    client = s3_env.client()
    url = f"s3://{bucket}/runs/a"
    assert trainer_s3.prefix_holds_run(url) is False
    # A neighbour whose name starts the same is another run, not this one.
    client.put_object(Bucket=bucket, Key="runs/ab/index/000000000/000000000000_worker_0.json", Body=b"{}")
    assert trainer_s3.prefix_holds_run(url) is False
    client.put_object(Bucket=bucket, Key="runs/a/training_job_end.ts", Body=b"")
    assert trainer_s3.prefix_holds_run(url) is True


def test_a_prefix_holding_other_objects_is_refused(s3_env, bucket):
    s3_env.client().put_object(Bucket=bucket, Key="papers/draft.tex", Body=b"\\section{}")
    with pytest.raises(TrainerError, match=r"holds objects that are not a tensor store \(draft.tex\)"):
        trainer_s3.prefix_holds_run(f"s3://{bucket}/papers")


def test_delete_run_deletes_that_run_only(s3_env, bucket):
    client = s3_env.client()
    run = [f"r/index/000000000/{i:012d}_worker_0.json" for i in range(5)] + [
        "r/events/000000000000/000000000000_worker_0.tfevents",
        "r/collections/000000000/worker_0_collections.json",
        "r/training_job_end.ts", "r/latentlapse-run.json"]
    neighbour = ["r2/index/000000000/000000000000_worker_0.json", "r2/latentlapse-run.json"]
    for key in run + neighbour:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert trainer_s3.delete_run(f"s3://{bucket}/r") == len(run)
    left = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert left == neighbour
    assert trainer_s3.prefix_holds_run(f"s3://{bucket}/r") is False


def test_run_file_round_trip(s3_env, bucket):
    url = f"s3://{bucket}/run-json/latentlapse-run.json"
    assert reporter_s3.read_json(url) is None  # not written yet: the reporter waits
    info = {"format": 1, "progress": {"step": 25}, "finished": None, "class_names": ["0", "1"]}
    trainer_s3.write_json(url, info)
    assert reporter_s3.read_json(url) == info
    info["finished"] = "2026-11-26T14:00:00Z"
    trainer_s3.write_json(url, info)
    assert reporter_s3.read_json(url)["finished"] == "2026-11-26T14:00:00Z"


def test_collections_appear_when_the_trainer_writes_them(s3_env, bucket):
    url = f"s3://{bucket}/run-c"
    assert reporter_s3.has_collections(url) is False
    s3_env.client().put_object(Bucket=bucket, Key="run-c/collections/000000000/worker_0_collections.json",
                               Body=b"{}")
    assert reporter_s3.has_collections(url) is True
    assert reporter_s3.has_collections(f"s3://{bucket}/run") is False  # a prefix of the name is not the run


def test_run_file_refuses_nan(s3_env, bucket):
    with pytest.raises(ValueError):
        trainer_s3.write_json(f"s3://{bucket}/r/latentlapse-run.json", {"loss": float("nan")})


def test_reading_a_file_that_is_not_json(s3_env, bucket):
    s3_env.client().put_object(Bucket=bucket, Key="r/latentlapse-run.json", Body=b"<html>")
    with pytest.raises(ReporterError, match="is not JSON"):
        reporter_s3.read_json(f"s3://{bucket}/r/latentlapse-run.json")


def test_write_with_wrong_credentials_is_one_line(s3_env, bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(TrainerError, match="rejected the AWS credentials"):
        trainer_s3.write_json(f"s3://{bucket}/r/latentlapse-run.json", {"format": 1})
