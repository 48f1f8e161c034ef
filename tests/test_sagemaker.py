"""The SageMaker launcher and ``reporter --training-job``: checked at AWS's edge, without AWS.

botocore's Stubber stands in for the SageMaker and S3 APIs (no account, no network); the
request the launcher sends is checked field by field, and its hook config is fed to smdebug's
own SageMaker config reader to show a job saves what a local run saves.
"""

from __future__ import annotations

import ast
import io
import json
import re
import socket
from contextlib import redirect_stdout
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.stub import ANY, Stubber

from trainer import TrainerError, hook

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
REGION = "us-west-2"
TRAINER = Path(__file__).resolve().parent.parent / "trainer"

@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch, tmp_path):
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "SAGEMAKER_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _config(**changes):
    from trainer.sagemaker import LaunchConfig

    values = dict(role=ROLE, output="s3://my-bucket/latentlapse", region=REGION,
                  data="s3://my-bucket/mnist", instance_type="ml.c5.2xlarge",
                  trainer={"steps": 940, "batch_size": 64, "save_interval": 20})
    values.update(changes)
    return LaunchConfig(**values)


def expected_request(job_name=ANY) -> dict:
    """The CreateTrainingJob request for ``_config()``, as the SageMaker API reference spells it."""
    intervals = {"train.save_interval": "20", "eval.save_interval": "1",
                 "predict.save_interval": "1", "global.save_interval": "20"}
    regex = ",".join(hook.INCLUDE_REGEX)
    return {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": f"763104351884.dkr.ecr.{REGION}.amazonaws.com/mxnet-training:1.9.0-cpu-py38",
            "TrainingInputMode": "File",
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": ROLE,
        "InputDataConfig": [{
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://my-bucket/mnist",
                                            "S3DataDistributionType": "FullyReplicated"}},
        }],
        "OutputDataConfig": {"S3OutputPath": "s3://my-bucket/latentlapse"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.c5.2xlarge", "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        # The SDK JSON-encodes every value; the container decodes them into `--name value` flags.
        "HyperParameters": {
            "out": '"/opt/ml/output/tensors"',
            "data-dir": '"/opt/ml/input/data/train"',
            "steps": "940",
            "batch-size": "64",
            "save-interval": "20",
            "sagemaker_program": '"__main__.py"',
            "sagemaker_submit_directory": ANY,
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": ANY,
            "sagemaker_region": f'"{REGION}"',
        },
        "DebugHookConfig": {
            "S3OutputPath": "s3://my-bucket/latentlapse",
            "LocalPath": "/opt/ml/output/tensors",
            "HookParameters": intervals,
            "CollectionConfigurations": [{
                "CollectionName": "latentlapse",
                "CollectionParameters": {"include_regex": regex, **intervals},
            }, {
                # The probe images: EVAL and PREDICT step 0 only.
                "CollectionName": "latentlapse_probe_images",
                "CollectionParameters": {"include_regex": ",".join(hook.PROBE_IMAGES_REGEX), **intervals,
                                         "eval.end_step": "1", "predict.end_step": "1"},
            }],
        },
        "ProfilerConfig": {"DisableProfiler": True},
    }


def _stubbed_session():
    import boto3

    from trainer.sagemaker import session_for

    boto_session = boto3.session.Session(region_name=REGION, aws_access_key_id="AKIDEXAMPLE",
                                         aws_secret_access_key="secret")
    return session_for(_config(), boto_session)


def test_launch_sends_the_expected_create_training_job_request(tmp_path):
    from trainer.sagemaker import launch

    session = _stubbed_session()
    uploaded = {}
    s3 = Stubber(session.s3_resource.meta.client)
    s3.add_response("put_object", {}, {"Bucket": "my-bucket", "Key": ANY, "Body": ANY,
                                       "ServerSideEncryption": "aws:kms", "ChecksumAlgorithm": ANY})
    # Keep what was uploaded: the code tarball the job will run.
    session.s3_resource.meta.client.meta.events.register(
        "before-parameter-build.s3.PutObject",
        lambda params, **_: uploaded.update(key=params["Key"], body=params["Body"].read()))
    sent = {}
    session.sagemaker_client.meta.events.register(
        "before-parameter-build.sagemaker.CreateTrainingJob",
        lambda params, **_: sent.update(collections=params["DebugHookConfig"]["CollectionConfigurations"]))
    sm = Stubber(session.sagemaker_client)
    expected = expected_request()
    collections = expected["DebugHookConfig"]["CollectionConfigurations"]
    expected["DebugHookConfig"]["CollectionConfigurations"] = ANY  # order checked below
    sm.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-west-2:123456789012:"
                                                              "training-job/x"}, expected)
    with s3, sm:
        name = launch(_config(), session=session)
    sm.assert_no_pending_responses()
    _assert_matches(_by_name(sent["collections"]), _by_name(collections))
    s3.assert_no_pending_responses()
    assert re.fullmatch(r"latentlapse-\d{4}(-\d{2}){5}-\d{3}", name)
    assert uploaded["key"] == f"latentlapse/{name}/source/sourcedir.tar.gz"
    _check_code_tarball(uploaded["body"], tmp_path)


def _check_code_tarball(body: bytes, folder: Path) -> None:
    """The job runs `python __main__.py` in /opt/ml/code: it must start trainer.cli.main."""
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = tar.getnames()
        tar.extractall(folder, filter="data")
    assert "__main__.py" in names
    assert {"trainer/cli.py", "trainer/hook.py", "trainer/train.py"} <= set(names)
    # The contract the trainer imports travels with it: the job's image has no latentlapse installed.
    assert {"latentlapse/__init__.py", "latentlapse/contract.py", "latentlapse/options.py",
            "latentlapse/atomic.py", "latentlapse/s3.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "from trainer.cli import main" in (folder / "__main__.py").read_text()


def test_dry_run_prints_the_request_without_any_network(monkeypatch):
    from trainer.sagemaker import main

    def refuse(*args, **kwargs):
        raise AssertionError(f"network used by a dry run: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--dry-run", "--role", ROLE, "--output", "s3://my-bucket/latentlapse",
                     "--region", REGION, "--data", "s3://my-bucket/mnist", "--instance-type",
                     "ml.c5.2xlarge", "--steps", "940", "--batch-size", "64", "--save-interval", "20"])
    assert code == 0
    request = json.loads(out.getvalue())
    hook = request["DebugHookConfig"]
    hook["CollectionConfigurations"] = _by_name(hook["CollectionConfigurations"])
    _assert_matches(request, expected_request())
    job = request["TrainingJobName"]
    assert request["HyperParameters"]["sagemaker_job_name"] == f'"{job}"'
    assert request["HyperParameters"]["sagemaker_submit_directory"] == \
        f'"s3://my-bucket/latentlapse/{job}/source/sourcedir.tar.gz"'


def _by_name(collections: list) -> list:
    """The SDK gathers collection configs in a set: their order in a request changes from run to run."""
    return sorted(collections, key=lambda c: c["CollectionName"])


def _assert_matches(actual, expected, path="request"):
    if expected is ANY:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), path
        for key in expected:
            _assert_matches(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_matches(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, path


def test_the_job_hook_saves_what_a_local_hook_saves(tmp_path, monkeypatch):
    """Feed the request's hook config to smdebug the way a job does, and compare with a local run."""
    from smdebug.core.config_constants import CONFIG_FILE_PATH_ENV_STR
    from smdebug.core.modes import ModeKeys

    from trainer.sagemaker import LaunchConfig, hook_config

    request = hook_config(LaunchConfig(role=ROLE, output="s3://b/p", region=REGION,
                                       trainer={"save_interval": 20}))._to_request_dict()
    request["LocalPath"] = str(tmp_path / "job-tensors")  # /opt/ml/output/tensors inside a job
    config_file = tmp_path / "debughookconfig.json"
    config_file.write_text(json.dumps(request))

    local = hook.create_hook(str(tmp_path / "local-tensors"), train_save_interval=20)
    monkeypatch.setenv(CONFIG_FILE_PATH_ENV_STR, str(config_file))
    assert hook.sagemaker_config_path() == config_file
    job = hook.create_hook("ignored-inside-a-job", train_save_interval=999)

    assert job.out_dir == str(tmp_path / "job-tensors")
    for h in (local, job):
        h._prepare_collections()  # what smdebug does at the first step: defaults filled in
    # smdebug's MXNet hook always adds its "losses" collection; both hooks must agree on all.
    assert sorted(job.include_collections) == sorted(local.include_collections)
    assert hook.COLLECTION in job.include_collections
    assert job.get_collection(hook.COLLECTION).include_regex == hook.INCLUDE_REGEX
    for name in local.include_collections:
        assert job.get_collection(name).include_regex == local.get_collection(name).include_regex
        for mode in (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.PREDICT, ModeKeys.GLOBAL):
            saved_by = [[h.get_collection(name).save_config.should_save_step(mode, step)
                         for step in range(200)] for h in (local, job)]
            assert saved_by[0] == saved_by[1], (name, mode)
    train = job.get_collection(hook.COLLECTION).save_config
    assert [s for s in range(60) if train.should_save_step(ModeKeys.TRAIN, s)] == [0, 20, 40]
    assert all(train.should_save_step(ModeKeys.EVAL, s) for s in range(60))
    images = job.get_collection(hook.PROBE_IMAGES_COLLECTION).save_config
    assert [s for s in range(60) if images.should_save_step(ModeKeys.EVAL, s)] == [0]


@pytest.mark.parametrize("changes, message", [
    ({"instance_count": 2}, "--instance-count > 1 is not supported yet"),
    ({"role": "SageMakerRole"}, "--role must be an IAM role ARN"),
    ({"region": None}, "no AWS region: pass --region or set AWS_DEFAULT_REGION"),
    ({"output": "my-bucket/latentlapse"}, "--output must be an s3:// URL"),
    ({"trainer": {"steps": 10, "optimizer": "sgd"}}, "unknown trainer option"),
])
def test_launches_that_cannot_work_are_refused_in_one_line(changes, message):
    from trainer.sagemaker import dry_run_request

    with pytest.raises(TrainerError, match=re.escape(message)) as caught:
        dry_run_request(_config(**changes))
    assert "\n" not in str(caught.value)


def test_trainer_options_are_checked_before_launch(capsys):
    from trainer.sagemaker import main

    assert main(["--dry-run", "--role", ROLE, "--output", "s3://b/p", "--region", REGION,
                 "--batch-size", "0"]) == 2
    assert capsys.readouterr().err.strip() == \
        "trainer.sagemaker: error: --batch-size must be a positive integer, got 0"


def test_trainer_package_is_python_3_8():
    """The MXNet 1.9 training image runs Python 3.8: the trainer and the shared latentlapse
    package it imports must parse and run there."""
    newer_than_38 = re.compile(r"BooleanOptionalAction|\.removeprefix\(|\.removesuffix\(|"
                               r"functools\.cache\b|\bzip\([^)]*strict=|\bzoneinfo\b|file_digest|"
                               r"itertools\.pairwise|\.is_relative_to\(|\bdatetime\.UTC\b")
    problems = []
    sources = sorted(TRAINER.glob("*.py")) + sorted((TRAINER.parent / "latentlapse").glob("*.py"))
    assert len(sources) > len(list(TRAINER.glob("*.py")))  # the shared package is checked too
    for path in sources:
        source = path.read_text()
        try:
            tree = ast.parse(source, filename=str(path), feature_version=(3, 8))
        except SyntaxError as error:
            problems.append(f"{path.name}:{error.lineno}: {error.msg}")
            continue
        for number, line in enumerate(source.splitlines(), 1):
            if newer_than_38.search(line):
                problems.append(f"{path.parent.name}/{path.name}:{number}: {line.strip()}")
        # `X | None` and `list[int]` in annotations need the __future__ import on 3.8.
        if "from __future__ import annotations" not in source:
            for node in ast.walk(tree):
                annotations = [getattr(node, "annotation", None), getattr(node, "returns", None)]
                for annotation in filter(None, annotations):
                    if any(isinstance(n, (ast.BinOp, ast.Subscript)) for n in ast.walk(annotation)):
                        problems.append(f"{path.name}:{annotation.lineno}: annotation needs "
                                        "`from __future__ import annotations`")
    assert problems == []


def test_importing_trainer_and_reporter_does_not_import_sagemaker():
    import subprocess
    import sys

    code = ("import sys, trainer, trainer.cli, trainer.config, trainer.hook, trainer.s3, reporter, "
            "reporter.trial.s3, reporter.trial.sagemaker_job; print('sagemaker' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=TRAINER.parent, check=True)
    assert result.stdout.strip() == "False"


# --- reporter --training-job -------------------------------------------------------------------

def _describe_response(name: str, hook_config: dict | None) -> dict:
    response = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://my-bucket/latentlapse/{name}/output/model.tar.gz"},
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Training",
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": datetime(2026, 11, 26, 14, 0, tzinfo=timezone.utc),
    }
    if hook_config is not None:
        response["DebugHookConfig"] = hook_config
    return response


def _sagemaker_client():
    import boto3

    return boto3.session.Session(region_name=REGION, aws_access_key_id="AKIDEXAMPLE",
                                 aws_secret_access_key="secret").client("sagemaker")


def test_training_job_resolves_to_its_debugger_output():
    from reporter.trial.sagemaker_job import debugger_path

    client = _sagemaker_client()
    name = "latentlapse-2026-11-26-14-00-00-000"
    with Stubber(client) as stub:
        stub.add_response("describe_training_job",
                          _describe_response(name, {"S3OutputPath": "s3://my-bucket/latentlapse/",
                                                    "LocalPath": "/opt/ml/output/tensors"}),
                          {"TrainingJobName": name})
        assert debugger_path(name, client) == f"s3://my-bucket/latentlapse/{name}/debug-output"
        stub.assert_no_pending_responses()


def test_training_job_without_a_hook_is_one_clear_line():
    from reporter import ReporterError
    from reporter.trial.sagemaker_job import debugger_path

    client = _sagemaker_client()
    with Stubber(client) as stub:
        stub.add_response("describe_training_job", _describe_response("plain", None))
        with pytest.raises(ReporterError, match="has no debugger hook config"):
            debugger_path("plain", client)


def test_unknown_training_job_is_one_clear_line():
    from reporter import ReporterError
    from reporter.trial.sagemaker_job import debugger_path

    client = _sagemaker_client()
    with Stubber(client) as stub:
        stub.add_client_error("describe_training_job", "ValidationException",
                              "Requested resource not found.", 400)
        with pytest.raises(ReporterError, match=f"no training job named 'nope' in {REGION}"):
            debugger_path("nope", client)


def test_training_job_without_a_region_is_one_clear_line(monkeypatch):
    from reporter import ReporterError
    from reporter.trial.sagemaker_job import debugger_path

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(ReporterError, match="no AWS region: set AWS_DEFAULT_REGION"):
        debugger_path("any")


# --- the job's side, run here ------------------------------------------------------------------

@pytest.mark.e2e
def test_the_job_entry_point_trains_like_sagemaker_runs_it(tmp_path, mnist_cache):
    """Run the uploaded code the way the MXNet container does: /opt/ml/code/__main__.py with the
    job's hyperparameters as flags, the hook config JSON, SM_MODEL_DIR and the data channel
    (/opt/ml is a folder here, and the Python is this one, not the image's 3.8)."""
    import os
    import subprocess
    import sys
    import tarfile

    from conftest import trainer_env
    from trainer.sagemaker import hook_config, hyperparameters

    config = _config(trainer={"steps": 24, "eval_every": 10, "probe_size": 100, "batch_size": 32,
                              "save_interval": 5, "seed": 3})
    opt_ml = tmp_path / "opt" / "ml"

    def here(value: str) -> str:
        return value.replace("/opt/ml", str(opt_ml))

    # The code SageMaker unpacks into /opt/ml/code (what launch() uploads).
    from trainer.sagemaker import _stage_code

    staged = tmp_path / "staged"
    staged.mkdir()
    entry, dependencies = _stage_code(staged)
    code = opt_ml / "code"
    code.mkdir(parents=True)
    with tarfile.open(tmp_path / "sourcedir.tar.gz", "w:gz") as tar:
        for path in [entry, *dependencies]:
            tar.add(path, arcname=Path(path).name)
    with tarfile.open(tmp_path / "sourcedir.tar.gz") as tar:
        tar.extractall(code, filter="data")
    # The data channel, as `python -m trainer.data DIR` + an S3 upload would fill it.
    channel = opt_ml / "input" / "data" / "train"
    channel.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        source = next(mnist_cache.glob(f"**/{name}*"))
        (channel / source.name).write_bytes(source.read_bytes())
    # The hook config SageMaker writes from the request's DebugHookConfig.
    hook_json = opt_ml / "input" / "config" / "debughookconfig.json"
    hook_json.parent.mkdir(parents=True)
    request = hook_config(config)._to_request_dict()
    request["LocalPath"] = here(request["LocalPath"])
    hook_json.write_text(json.dumps(request))

    args = []
    for name, value in hyperparameters(config).items():
        args += [f"--{name}", here(str(value))]
    env = {k: v for k, v in trainer_env().items() if k != "PYTHONPATH" and not k.startswith("AWS_")}
    env.update({"SM_MODEL_DIR": str(opt_ml / "model"), "SM_CHANNEL_TRAIN": str(channel),
                "SMDEBUG_CONFIG_FILE_PATH": str(hook_json), "TRAINING_JOB_NAME": "latentlapse-test",
                "TRAINER_CACHE_DIR": str(tmp_path / "empty-cache")})
    done = subprocess.run([sys.executable, "__main__.py", *args], cwd=code, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"from folder {channel}" in done.stderr  # the channel, not a cache or a download

    tensors = Path(here("/opt/ml/output/tensors"))
    run = json.loads((tensors / "latentlapse-run.json").read_text())
    assert run["finished"] and run["expected_frames"] == 4
    # Inside a job smdebug leaves the end marker to SageMaker, which writes it to S3 at the end.
    assert not (tensors / "training_job_end.ts").exists()
    assert [p.name for p in (opt_ml / "model").iterdir()] == ["autoencoder.params"]

    from smdebug import modes
    from smdebug.trials import create_trial

    trial = create_trial(str(tensors))
    assert trial.steps(mode=modes.EVAL) == [0, 1, 2, 3]
    assert trial.steps(mode=modes.TRAIN) == [0, 5, 10, 15, 20]  # the job's save interval
    assert os.path.basename(trial.tensor_names(regex=hook.INCLUDE_REGEX[0])[0]).endswith("dense0_output_0")


def _status_response(name: str, status: str, reason: str | None = None) -> dict:
    response = _describe_response(name, {"S3OutputPath": "s3://my-bucket/latentlapse/"})
    response["TrainingJobStatus"] = status
    if reason:
        response["FailureReason"] = reason
    return response


def test_job_watcher_asks_at_most_every_interval_and_stops_asking_at_the_end():
    from reporter.trial.sagemaker_job import JobWatcher

    client, now = _sagemaker_client(), [0.0]
    watcher = JobWatcher("job", client=client, interval=30.0, clock=lambda: now[0])
    with Stubber(client) as stub:
        stub.add_response("describe_training_job", _status_response("job", "InProgress"))
        stub.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded", 400)
        stub.add_response("describe_training_job", _status_response("job", "Completed"))
        assert not watcher.ended()          # asks: InProgress
        now[0] = 10.0
        assert not watcher.ended()          # too soon: does not ask
        now[0] = 31.0
        assert not watcher.ended()          # asks: throttled, which is not an end
        now[0] = 62.0
        assert watcher.ended() and watcher.status == "Completed"
        now[0] = 1000.0
        assert watcher.ended()              # no more questions once ended
        stub.assert_no_pending_responses()


@pytest.mark.e2e
@pytest.mark.parametrize("status, exit_code, report_status", [("Completed", 0, "finished"),
                                                              ("Failed", 3, "failed")])
def test_a_followed_job_ends_with_the_jobs_status(tmp_path, small_run, status, exit_code, report_status):
    # A SageMaker job's store has no end marker (smdebug does not write it there): take a real
    # store, remove the marker, and let the job's status (stubbed: AWS is the only fake) end it.
    import shutil

    from reporter.config import ReporterConfig
    from reporter.pipeline import Report
    from reporter.trial.sagemaker_job import JobWatcher

    store = tmp_path / "debug-output"
    shutil.copytree(small_run, store)
    (store / "training_job_end.ts").unlink()
    config = ReporterConfig(tensors=str(store), out=str(tmp_path / "site"), training_job="job", follow=True,
                            poll_interval=0.2, wait_timeout=60, retry_delay=0.1)
    client = _sagemaker_client()
    report = Report(config)
    report.job = JobWatcher("job", client=client, interval=0.0)
    with Stubber(client) as stub:
        stub.add_response("describe_training_job", _status_response("job", "InProgress"))
        stub.add_response("describe_training_job", _status_response("job", status, "AlgorithmError: boom"))
        assert report.run() == exit_code
        stub.assert_no_pending_responses()
    state = json.loads((tmp_path / "site" / "state.json").read_text())
    assert state["status"] == report_status
    assert [f["step"] for f in state["frames"]] == [0, 1, 2, 3]
