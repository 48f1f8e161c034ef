"""``python -m trainer.sagemaker``: run the same trainer as a SageMaker training job.

The job runs ``python -m trainer`` in AWS's MXNet container with the same smdebug collection
and save intervals as a local run (``trainer.hook``), and SageMaker copies the tensor store to
``<output>/<job name>/debug-output`` while it trains. Follow it from a laptop with::

    python -m reporter --training-job NAME --follow

Needs the ``sagemaker`` extra. Nothing else in the project imports this module: the SageMaker
SDK takes ~9 s to import.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from latentlapse.options import Option, OptionError, Options
from trainer import TrainerError, hook
from trainer.config import OPTIONS as TRAINER_OPTIONS
from trainer.config import BadOption

# The newest MXNet training image SageMaker SDK 2.243.2 offers; it only comes with Python 3.8.
FRAMEWORK_VERSION = "1.9.0"
PY_VERSION = "py38"
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
# Where the job's hook writes; SageMaker uploads this folder to the debugger's S3 path.
CONTAINER_TENSORS = "/opt/ml/output/tensors"
DATA_CHANNEL = "train"
CONTAINER_DATA = f"/opt/ml/input/data/{DATA_CHANNEL}"
BASE_JOB_NAME = "latentlapse"
# Trainer options a job may set (passed as hyperparameters, i.e. as `python -m trainer` flags;
# declared, checked and explained by trainer.config).
JOB_TRAINER_OPTIONS = ("dataset", "steps", "epochs", "batch_size", "lr", "warmup_steps", "eval_every",
                       "probe_size", "save_interval", "seed", "threads")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")


@dataclass
class LaunchConfig:
    """What to launch: where, on what, and the trainer's options."""

    role: str
    output: str                       # s3://bucket/prefix for tensors, model and code
    region: str | None = None
    data: str | None = None           # s3:// prefix holding the four IDX files (else downloaded in the job)
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    job_name: str | None = None
    max_run: int = 3600               # seconds before SageMaker stops the job
    wait: bool = False
    trainer: dict = field(default_factory=dict)   # e.g. {"steps": 940, "save_interval": 10}

    @property
    def save_interval(self) -> int:
        return int(self.trainer.get("save_interval", TRAINER_OPTIONS["save_interval"].default))


def check(config: LaunchConfig) -> None:
    """Raise TrainerError for a launch SageMaker would refuse, or one that could not work."""
    if not _ROLE_ARN.match(config.role or ""):
        raise TrainerError("--role must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME) "
                           "that SageMaker can assume; set it or SAGEMAKER_ROLE")
    if not config.region:
        raise TrainerError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    for name, url in (("--output", config.output), ("--data", config.data)):
        if url is not None and not re.match(r"^s3://[^/]+(/.*)?$", url):
            raise TrainerError(f"{name} must be an s3:// URL, got {url!r}")
    if config.instance_count < 1:
        raise TrainerError(f"--instance-count must be at least 1, got {config.instance_count}")
    if config.instance_count > 1:
        # Every host would train its own model on all the data and upload its tensors to the same
        # keys: data parallelism needs a synchronising kvstore first (see docs/sagemaker.md).
        raise TrainerError("--instance-count > 1 is not supported yet: the trainer does not "
                           "synchronise gradients across hosts; use one larger --instance-type")
    unknown = sorted(set(config.trainer) - set(JOB_TRAINER_OPTIONS))
    if unknown:
        raise TrainerError(f"unknown trainer option(s) {', '.join(unknown)}")
    if any("," in regex for regexes, _ in hook.collections().values() for regex in regexes):
        raise TrainerError("a collection regex contains ',' which SageMaker's config splits on")


def hook_config(config: LaunchConfig):
    """The DebuggerHookConfig carrying ``trainer.hook``'s collections and save configs."""
    from sagemaker.debugger import CollectionConfig, DebuggerHookConfig

    declared = hook.collections(config.save_interval)
    collections = [
        CollectionConfig(name=name, parameters={"include_regex": ",".join(regexes),
                                                **hook.spelled_for_sagemaker(per_mode)})
        for name, (regexes, per_mode) in declared.items()
    ]
    return DebuggerHookConfig(
        s3_output_path=config.output.rstrip("/"),
        container_local_output_path=CONTAINER_TENSORS,
        hook_parameters=hook.spelled_for_sagemaker(declared[hook.COLLECTION][1]),
        collection_configs=collections,
    )


def hyperparameters(config: LaunchConfig) -> dict:
    """The job's hyperparameters: ``python -m trainer`` flags (``--batch-size 64`` ...)."""
    values = {"out": CONTAINER_TENSORS, "save-interval": config.save_interval}
    if config.data:
        values["data-dir"] = CONTAINER_DATA
    for name, value in config.trainer.items():
        values[name.replace("_", "-")] = value
    return values


# The packages the job's code needs: the trainer and the contract it shares with the reporter.
JOB_PACKAGES = ("trainer", "latentlapse")


def _stage_code(folder: Path) -> tuple[str, list[str]]:
    """Copy the trainer and latentlapse packages (sources only) into ``folder``; return entry
    point and dependencies.

    In the job the entry script sits in /opt/ml/code beside ``trainer/`` and ``latentlapse/``, so
    ``python __main__.py --steps ...`` runs ``trainer.cli.main`` like ``python -m trainer``.
    """
    root = Path(__file__).resolve().parent.parent
    targets = []
    for package in JOB_PACKAGES:
        target = folder / package
        shutil.copytree(root / package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        targets.append(str(target))
    entry = folder / "__main__.py"
    entry.write_text("import sys\n\nfrom trainer.cli import main\n\nsys.exit(main())\n")
    return str(entry), targets


def build_estimator(config: LaunchConfig, session, code_folder: Path):
    """An MXNet estimator for ``config``, using ``session`` (a ``sagemaker.Session``)."""
    from sagemaker.mxnet import MXNet

    entry_point, dependencies = _stage_code(code_folder)
    return MXNet(
        entry_point=entry_point,
        dependencies=dependencies,
        framework_version=FRAMEWORK_VERSION,
        py_version=PY_VERSION,
        role=config.role,
        instance_type=config.instance_type,
        instance_count=config.instance_count,
        output_path=config.output.rstrip("/"),
        code_location=config.output.rstrip("/"),
        base_job_name=BASE_JOB_NAME,
        hyperparameters=hyperparameters(config),
        debugger_hook_config=hook_config(config),
        disable_profiler=True,
        max_run=config.max_run,
        sagemaker_session=session,
    )


def session_for(config: LaunchConfig, boto_session=None):
    """A ``sagemaker.Session`` in ``config.region`` (AWS credentials from the usual places).

    The user's SageMaker SDK defaults files apply; the SDK's usage telemetry is off unless
    those files turn it on.
    """
    import boto3
    import sagemaker
    from sagemaker.config import load_sagemaker_config

    defaults = load_sagemaker_config() or {}
    defaults.setdefault("SchemaVersion", "1.0")
    modules = defaults.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})
    modules.setdefault("TelemetryOptOut", True)
    boto_session = boto_session or boto3.session.Session(region_name=config.region)
    return sagemaker.Session(boto_session=boto_session, sagemaker_config=defaults)


def launch(config: LaunchConfig, session=None) -> str:
    """Start the training job and return its name (wait for it too if ``config.wait``)."""
    check(config)
    session = session or session_for(config)
    inputs = {DATA_CHANNEL: config.data} if config.data else None
    with tempfile.TemporaryDirectory(prefix="latentlapse-code-") as folder:
        estimator = build_estimator(config, session, Path(folder))
        estimator.fit(inputs=inputs, job_name=config.job_name, wait=config.wait,
                      logs="All" if config.wait else "None")
    return estimator.latest_training_job.name


def dry_run_request(config: LaunchConfig) -> dict:
    """The CreateTrainingJob request ``launch`` would send, without credentials or network.

    A boto3 session whose calls are answered locally: the code upload is skipped and the
    CreateTrainingJob parameters are captured. Any other AWS call fails loudly.
    """
    import boto3

    check(config)
    boto_session = boto3.session.Session(region_name=config.region, aws_access_key_id="dry-run",
                                         aws_secret_access_key="dry-run")
    captured: dict = {}

    def capture(params, **_):
        captured.update(params)

    def answer(model, **_):
        if model.name == "PutObject":
            return _ok({})
        if model.name == "CreateTrainingJob":
            return _ok({"TrainingJobArn": f"arn:aws:sagemaker:{config.region}:000000000000:"
                                          f"training-job/{captured['TrainingJobName']}"})
        raise TrainerError(f"dry run: the launch would also call {model.name}")

    boto_session.events.register("before-parameter-build.sagemaker.CreateTrainingJob", capture)
    boto_session.events.register("before-call", answer)
    launch(config, session=session_for(config, boto_session))
    return captured


def _ok(parsed: dict):
    from botocore.awsrequest import AWSResponse

    return AWSResponse(url="", status_code=200, headers={}, raw=None), parsed


LAUNCH_OPTIONS = Options(None, [
    Option("role", str, None, "IAM role ARN the job runs as", metavar="ARN", env="SAGEMAKER_ROLE"),
    Option("output", str, None, "s3://bucket/prefix for tensors, model and code", metavar="S3_URL",
           required=True, env=()),
    Option("data", str, None, "s3:// prefix holding the dataset's four IDX .gz files "
           "(from `python -m trainer.data DIR`)", metavar="S3_URL", default_text="downloaded in the job"),
    Option("region", str, None, "AWS region", metavar="REGION", env=("AWS_REGION", "AWS_DEFAULT_REGION")),
    Option("instance_type", str, DEFAULT_INSTANCE_TYPE, "the instance the job runs on", metavar="TYPE"),
    Option("instance_count", int, 1, "hosts (only 1 is supported yet)", metavar="N", minimum=1),
    Option("job_name", str, None, "the training job's name", metavar="NAME",
           default_text=f"{BASE_JOB_NAME}-<time>"),
    Option("max_run", int, 3600, "seconds before SageMaker stops the job", metavar="SECONDS", minimum=1),
    Option("wait", bool, False, "wait for the job and print its logs"),
    Option("dry_run", bool, False, "print the CreateTrainingJob request as JSON; no AWS call is made"),
] + TRAINER_OPTIONS.pick(JOB_TRAINER_OPTIONS, env=False, help_prefix="trainer: "))


def parser() -> argparse.ArgumentParser:
    return LAUNCH_OPTIONS.parser(
        prog="python -m trainer.sagemaker",
        description="Run the trainer as a SageMaker training job (MXNet container, same smdebug hook).",
        epilog="Credentials and region come from the usual AWS variables or profile. "
               "Follow the job with: python -m reporter --training-job NAME --follow",
    )


def config_from_args(argv: list[str] | None = None, environ: dict | None = None) -> tuple[LaunchConfig, bool]:
    """Parse the command line into a LaunchConfig, plus whether it is a dry run.

    The trainer's options are checked here, rather than minutes later inside the job.

    Raises
    ------
    BadOption
        One line naming the option and what to pass.
    """
    try:
        values = LAUNCH_OPTIONS.values(parser().parse_args(argv), environ)
    except OptionError as exc:
        raise BadOption(str(exc)) from None
    trainer_options = {name: values.pop(name) for name in JOB_TRAINER_OPTIONS if name in values}
    launch = {**LAUNCH_OPTIONS.defaults(), **values}
    dry_run = launch.pop("dry_run")
    for name in JOB_TRAINER_OPTIONS:
        launch.pop(name)
    launch["role"] = launch["role"] or ""
    return LaunchConfig(trainer=trainer_options, **launch), dry_run


def _quiet_sdk() -> None:
    # The SDK logs its config-file search to stdout at import; stdout is for the request JSON.
    import logging

    sdk = logging.getLogger("sagemaker")
    sdk.addHandler(logging.StreamHandler(sys.stderr))
    sdk.setLevel(logging.WARNING)
    sdk.propagate = False
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    _quiet_sdk()
    try:
        config, dry_run = config_from_args(argv)
        if dry_run:
            print(json.dumps(dry_run_request(config), indent=2, sort_keys=True, default=str))
            return 0
        name = launch(config)
    except TrainerError as exc:
        print(f"trainer.sagemaker: error: {exc}", file=sys.stderr)
        return exc.exit_code
    tensors = f"{config.output.rstrip('/')}/{name}/debug-output"
    print(f"training job {name} started; tensors: {tensors}")
    print(f"follow it: python -m reporter --training-job {name} --follow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
