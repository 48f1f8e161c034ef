"""Declared options (latentlapse.options) and the command lines built on them: trainer, reporter,
SageMaker launcher. Every bad value is one line naming the option and what to pass, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from latentlapse.options import Option, OptionError, Options, parse_bool
from reporter import cli as reporter_cli
from reporter.config import OPTIONS as REPORTER_OPTIONS
from reporter.config import ReporterConfig
from reporter.config import from_args as reporter_args
from trainer import cli as trainer_cli
from trainer.config import OPTIONS as TRAINER_OPTIONS
from trainer.config import TrainerConfig
from trainer.config import from_args as trainer_args

# Every option and variable that existed before the options were declared in one place.
TRAINER_FLAGS = {"out", "dataset", "data_dir", "cache_dir", "mirror", "steps", "epochs", "batch_size", "lr",
                 "warmup_steps", "eval_every", "probe_size", "save_interval", "seed", "threads", "overwrite",
                 "progress"}
REPORTER_FLAGS = {"tensors", "out", "training_job", "follow", "wait_timeout", "stall_after", "poll_interval",
                  "seed", "threads", "retries", "retry_delay", "gif_delay_ms", "gif_budget_mib",
                  "latent_regex", "labels_regex", "inputs_regex", "recon_regex", "loss_regex"}


def test_every_existing_option_and_variable_is_kept():
    assert TRAINER_FLAGS <= {o.name for o in TRAINER_OPTIONS}
    assert REPORTER_FLAGS <= {o.name for o in REPORTER_OPTIONS}
    for options, prefix in ((TRAINER_OPTIONS, "TRAINER_"), (REPORTER_OPTIONS, "REPORTER_")):
        for option in options:
            assert option.variables == (prefix + option.name.upper(),)


def test_config_objects_keep_their_attributes_and_defaults():
    config = TrainerConfig()
    assert (config.batch_size, config.lr, config.save_interval, config.steps, config.progress) == (64, 3e-4, 10,
                                                                                                   None, True)
    assert TrainerConfig(steps=5).as_dict()["steps"] == 5
    report = ReporterConfig(tensors="t", out="o", follow=True)
    assert (report.tensors, report.follow, report.gif_delay_ms, report.wait_timeout) == ("t", True, 250, 600.0)
    assert set(report.names()) == {"latent", "labels", "inputs", "recon", "loss"}
    assert repr(report).startswith("ReporterConfig(")


def test_command_line_wins_over_environment_which_wins_over_default():
    environ = {"TRAINER_STEPS": "7", "TRAINER_BATCH_SIZE": "16"}
    config = trainer_args(["--steps", "9", "--out", "x"], environ=environ)
    assert (config.steps, config.batch_size, config.eval_every) == (9, 16, 25)
    assert trainer_args(["--out", "x", "--no-progress"], environ={"TRAINER_PROGRESS": "1"}).progress is False
    assert trainer_args(["--out", "x"], environ={"TRAINER_PROGRESS": "off"}).progress is False
    # An empty variable (a compose file's `X=`) counts as not set.
    assert trainer_args(["--out", "x"], environ={"TRAINER_STEPS": ""}).steps is None
    follow = reporter_args(["--tensors", "t", "--out", "o"], environ={"REPORTER_FOLLOW": "yes"})
    assert follow.follow is True and follow.out.endswith("o")


# One case per class of bad input: wrong type, out of range, negative seed, fractional count,
# bad boolean in a variable, unknown flag, missing value, unknown choice.
TRAINER_BAD = [
    (["--lr", "fast"], {}, "trainer: error: --lr='fast' is not a number: pass a positive number"),
    (["--eval-every", "0"], {}, "trainer: error: --eval-every must be a positive integer, got 0"),
    (["--seed", "-1"], {}, "trainer: error: --seed must be an integer from 0 to 4294967295, got -1"),
    (["--steps", "2.5"], {}, "trainer: error: --steps must be a positive integer, got 2.5"),
    (["--epochs", "inf"], {}, "trainer: error: --epochs must be positive, got inf"),
    ([], {"TRAINER_OVERWRITE": "maybe"}, "trainer: error: TRAINER_OVERWRITE='maybe' is not a boolean: use 1 or 0"),
    ([], {"TRAINER_BATCH_SIZE": "lots"},
     "trainer: error: TRAINER_BATCH_SIZE='lots' is not a number: pass a positive integer"),
    (["--stepz", "3"], {}, "trainer: error: unrecognized arguments: --stepz 3 (see python -m trainer --help)"),
    (["--steps"], {}, "trainer: error: argument --steps: expected one argument (see python -m trainer --help)"),
    (["--dataset", "cifar"], {},
     "trainer: error: unknown dataset 'cifar' for --dataset: pass one of mnist, fashion-mnist"),
]


@pytest.mark.parametrize("argv, environ, line", TRAINER_BAD)
def test_trainer_bad_value_is_one_line_exit_2(argv, environ, line, capsys, monkeypatch, tmp_path):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert trainer_cli.main(["--out", str(tmp_path / "t"), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [line]
    assert not (tmp_path / "t").exists()  # nothing was started


REPORTER_BAD = [
    (["--wait-timeout", "soon"], {},
     "reporter: error: --wait-timeout='soon' is not a number: pass a positive number"),
    (["--poll-interval", "0"], {}, "reporter: error: --poll-interval must be positive, got 0"),
    (["--seed", "-1"], {}, "reporter: error: --seed must be an integer from 0 to 4294967295, got -1"),
    (["--gif-delay-ms", "2.5"], {}, "reporter: error: --gif-delay-ms must be a positive integer, got 2.5"),
    (["--retry-delay", "-1"], {}, "reporter: error: --retry-delay must be 0 or more, got -1"),
    ([], {"REPORTER_FOLLOW": "maybe"}, "reporter: error: REPORTER_FOLLOW='maybe' is not a boolean: use 1 or 0"),
    ([], {"REPORTER_THREADS": "-2"}, "reporter: error: REPORTER_THREADS must be a positive integer, got -2"),
    (["--folow"], {}, "reporter: error: unrecognized arguments: --folow (see python -m reporter --help)"),
    (["--mode", "BOGUS"], {},
     "reporter: error: unknown mode 'BOGUS' for --mode: pass one of eval, train, predict (or leave it unset)"),
]


@pytest.mark.parametrize("argv, environ, line", REPORTER_BAD)
def test_reporter_bad_value_is_one_line_exit_2(argv, environ, line, capsys, monkeypatch, tmp_path):
    for name in ("REPORTER_TENSORS", "REPORTER_OUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert reporter_cli.main(["--tensors", str(tmp_path / "t"), "--out", str(tmp_path / "site"), *argv]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
    assert not (tmp_path / "site").exists()


def test_reporter_without_a_store_is_one_line_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("REPORTER_TENSORS", raising=False)
    assert reporter_cli.main([]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "reporter: error: no tensor store given: pass --tensors PATH (the trainer's --out) or set REPORTER_TENSORS"]


def test_tensors_subcommand_without_a_path_is_one_line_exit_2(capsys):
    assert reporter_cli.main(["tensors"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "reporter: error: the following arguments are required: path (see python -m reporter tensors --help)"]


def test_launcher_checks_trainer_options_as_the_trainer_does(capsys):
    from trainer.sagemaker import main

    argv = ["--dry-run", "--role", "arn:aws:iam::123456789012:role/x", "--region", "eu-west-1"]
    assert main(argv + ["--output", "s3://b/p", "--steps", "2.5"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "trainer.sagemaker: error: --steps must be a positive integer, got 2.5"]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        "trainer.sagemaker: error: --output is required: pass --output S3_URL"]


def test_launcher_takes_only_what_was_given_for_the_job(monkeypatch):
    from trainer.sagemaker import config_from_args

    monkeypatch.setenv("TRAINER_STEPS", "99")  # the laptop's trainer settings do not leak into a job
    config, dry_run = config_from_args(["--output", "s3://b/p", "--steps", "40", "--lr", "0.001"],
                                       environ={"SAGEMAKER_ROLE": "arn", "AWS_DEFAULT_REGION": "eu-west-1"})
    assert config.trainer == {"steps": 40, "lr": 0.001}
    assert (config.role, config.region, config.instance_count, dry_run) == ("arn", "eu-west-1", 1, False)


@pytest.mark.parametrize("module, shown", [
    ("trainer", ["--batch-size N", "[default: 64; TRAINER_BATCH_SIZE]", "--overwrite, --no-overwrite",
                 "[default: off; TRAINER_OVERWRITE=1]", "--lr RATE", "[default: 0.0003;", "TRAINER_LR]"]),
    ("reporter", ["usage: python -m reporter (--tensors PATH | --training-job NAME) [options]",
                  "python -m reporter tensors PATH", "--gif-delay-ms MS", "--wait-timeout SECONDS",
                  "[default: 600; REPORTER_WAIT_TIMEOUT]", "(required, unless --training-job", "REPORTER_TENSORS]"]),
    ("trainer.sagemaker", ["usage: python -m trainer.sagemaker --output S3_URL [options]", "required:",
                           "[SAGEMAKER_ROLE]", "AWS_REGION or AWS_DEFAULT_REGION", "trainer: images per train step"]),
])
def test_help_shows_defaults_variables_and_what_is_required(module, shown):
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    for text in shown:
        assert text in done.stdout, text


def test_option_checks():
    count = Option("count", int, 3, "how many", minimum=1, maximum=9)
    assert count.convert("1e0", "--count") == 1
    with pytest.raises(OptionError, match=r"^--count must be an integer from 1 to 9, got 10$"):
        count.convert("10", "--count")
    ratio = Option("ratio", float, 0.5, "a share", minimum=0, maximum=1)
    with pytest.raises(OptionError, match=r"^R must be from 0 to 1, got nan$"):
        ratio.convert("nan", "R")
    assert parse_bool(" ON ", "X") is True and parse_bool("no", "X") is False
    with pytest.raises(TypeError):
        Option("when", list, None, "not a kind an option can have")
    with pytest.raises(ValueError, match="share a name"):
        Options(None, [count, count])
