"""Shared fixtures: the real MNIST (cached once per machine) and one small real training run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Dataset files converted once (from the offline package) and reused by every test run.
DATA_CACHE = Path(os.environ.get("LATENTLAPSE_TEST_CACHE", ROOT / ".cache" / "test-data"))

# The smallest run that still shows everything: 3 EVAL passes over 100 probe images.
SMALL_RUN = ["--steps", "24", "--eval-every", "10", "--probe-size", "100", "--batch-size", "32",
             "--save-interval", "5", "--seed", "3", "--no-progress"]


def pytest_configure(config):

    config.addinivalue_line("markers", "browser: needs headless Chromium")
    os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")


def trainer_env(**extra: str) -> dict:
    """The environment a trainer subprocess gets: no TRAINER_* (or MKLDNN switch) leaking in from the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRAINER_", "REPORTER_", "MXNET_MKLDNN_ENABLED"))}
    env.update({"TRAINER_CACHE_DIR": str(DATA_CACHE), "TRAINER_THREADS": "1", "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


def run_trainer(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m trainer`` as a user would; return the finished process (text output)."""
    return subprocess.run([PYTHON, "-m", "trainer", *args], cwd=ROOT, env=env or trainer_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def mnist_cache() -> Path:
    """A cache folder holding the real MNIST as checked IDX files."""
    from trainer import data

    data.load("mnist", cache_dir=DATA_CACHE, download=False)
    return DATA_CACHE


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, mnist_cache) -> Path:
    """A finished real training run (MXNet + smdebug) on real MNIST; its tensor store folder."""
    out = tmp_path_factory.mktemp("small-run") / "tensors"
    done = run_trainer("--out", str(out), *SMALL_RUN)
    assert done.returncode == 0, done.stderr
    return out


def run_reporter(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m reporter`` as a user would, one thread; return the finished process."""
    env = {k: v for k, v in trainer_env().items() if not k.startswith("OMP_")}
    env.update({"OMP_NUM_THREADS": "1"})
    return subprocess.run([PYTHON, "-m", "reporter", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def two_reports(tmp_path_factory, small_run) -> tuple[Path, Path]:
    """Two finished reports of one probe set: the small run (trainer seed 3) and one with trainer seed 4."""
    base = tmp_path_factory.mktemp("two-reports")
    other = base / "seed-4" / "tensors"
    options = list(SMALL_RUN)
    options[options.index("--seed") + 1] = "4"
    done = run_trainer("--out", str(other), *options)
    assert done.returncode == 0, done.stderr
    reports = []
    for name, store in (("seed-3", small_run), ("seed-4", other)):
        out = base / name / "site"
        done = run_reporter("--tensors", str(store), "--out", str(out))
        assert done.returncode == 0, done.stderr
        reports.append(out)
    return tuple(reports)
