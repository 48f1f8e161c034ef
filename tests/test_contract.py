"""The trainer-reporter contract (latentlapse/): one definition each, used by both sides."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from latentlapse import atomic
from latentlapse.contract import RUN_ENTRIES, RUN_FILE, TENSOR_NAMES


def test_hook_saves_exactly_the_tensors_the_reporter_looks_for(small_run):
    from smdebug.trials import create_trial

    from reporter.config import ReporterConfig
    from trainer import hook

    saved = [regex for regexes, _ in hook.collections().values() for regex in regexes]
    assert sorted(saved) == sorted(TENSOR_NAMES.values())
    assert ReporterConfig().names() == TENSOR_NAMES
    trial = create_trial(str(small_run))
    for role, regex in TENSOR_NAMES.items():
        assert len(trial.tensor_names(regex=regex)) == 1, role
    # Anchored: the decoder's Dense output and the L2Loss target are not taken for a role.
    assert not any(re.search(regex, "convolutionalautoencoder0_hybridsequential1_dense0_output_0")
                   for regex in TENSOR_NAMES.values())
    assert not any(re.search(regex, "l2loss0_input_1") for regex in TENSOR_NAMES.values())


def test_a_run_holds_only_run_entries(small_run):
    assert {p.name for p in small_run.iterdir()} <= set(RUN_ENTRIES)
    assert (small_run / RUN_FILE).is_file()


def test_atomic_write_replaces_whole_files_or_nothing(tmp_path):
    target = tmp_path / "deep" / "state.json"
    atomic.write_json(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(ValueError):
        atomic.write_json(target, {"loss": float("nan")})  # JSON has no NaN: nothing is written
    with pytest.raises(TypeError):
        atomic.write_bytes(target, "not bytes")  # fails after the temporary file exists
    assert atomic.json_text({"b": 1, "a": [1, 2]}) == target.read_text()
    assert os.listdir(target.parent) == ["state.json"]  # no temporary file left behind
    atomic.write_text(tmp_path / "secret", "s", mode=0o600)
    assert oct((tmp_path / "secret").stat().st_mode & 0o777) == "0o600"


def test_compose_entrypoint_parses_booleans_like_the_trainer():
    env = {"PATH": "/usr/bin:/bin", "TRAINER_OVERWRITE": "maybe", "LATENTLAPSE_RUN": "r1"}
    done = subprocess.run([sys.executable, str(ROOT / "docker" / "compose_entrypoint.py"), "trainer"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "latentlapse-compose: error: TRAINER_OVERWRITE='maybe' is not a boolean: use 1 or 0"]


def test_every_image_that_runs_the_entrypoint_can_import_latentlapse():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", dockerfile)[1:]
    named = {stage.split()[2]: stage for stage in stages if " AS " in stage.splitlines()[0]}
    for name in ("trainer", "reporter", "s3server"):
        stage = named[name]
        assert "COPY docker/compose_entrypoint.py /usr/local/bin/latentlapse-compose" in stage
        assert "latentlapse-compose --check-imports" in stage, name
    assert "COPY latentlapse/ /src/latentlapse/" in named["source"]
    for build in ("trainer-build", "reporter-build"):  # the wheel installed into those images holds it
        assert "COPY --from=source /src /src" in named[build]
    assert "COPY latentlapse/ /opt/latentlapse/latentlapse/" in named["s3server"]
    assert "!latentlapse/" in (ROOT / ".dockerignore").read_text().splitlines()
