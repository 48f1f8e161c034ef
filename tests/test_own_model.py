"""docs/own-model.md, run as a reader would: each recipe trains with a reporter following it.

The code is read out of the page itself (its ``python`` block and the ``latentlapse report`` line
after it), so the page cannot drift from what is tested. The PyTorch recipe runs in a virtual
environment with torch 2.13.0 (CPU) and smdebug (``make torch-env``; the project's has no torch);
the MXNet recipe runs in the project's own.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "own-model.md"
TORCH_PYTHON = Path(os.environ.get("LATENTLAPSE_TORCH_PYTHON", ROOT / ".cache" / "torch-venv" / "bin" / "python"))
pytestmark = pytest.mark.e2e  # real training (PyTorch, MXNet) with a reporter process following it
RECIPE_STEPS = [0, 25, 50, 75, 100, 125, 150, 175, 200]  # an evaluation every 25 of 200 steps


def recipe(section: str) -> tuple[str, list[str]]:
    """The section's training script and the arguments of its ``latentlapse report`` command."""
    text = PAGE.read_text()
    body = text.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", body, re.S).group(1)
    commands = [" ".join(block.replace("\\\n", " ").split()) for block in re.findall(r"```sh\n(.*?)```", body, re.S)]
    report = next(c for c in commands if c.startswith("latentlapse report"))
    return code, shlex.split(report)[2:]


def run_recipe(tmp_path: Path, python: str, section: str, mnist_cache: Path) -> dict:
    code, report_args = recipe(section)
    script, store, site = tmp_path / "train.py", tmp_path / "store", tmp_path / "site"
    script.write_text(code)
    args = [str(site) if a == "SITE" else str(store) if a == "STORE" else a for a in report_args]
    assert "--follow" in args, "the page's command follows the training"
    console = Path(sys.executable).with_name("latentlapse")
    env = {**os.environ, "REPORTER_TENSORS": "", "REPORTER_OUT": "", "REPORTER_THREADS": "1"}
    # The reporter first, waiting for a trial that does not exist yet, as a reader would start it.
    reporter = subprocess.Popen([str(console), "report", *args], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        trained = subprocess.run([python, str(script), str(mnist_cache / "mnist"), str(store)],
                                 capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert trained.returncode == 0, trained.stderr[-2000:]
        log, _ = reporter.communicate(timeout=300)
    finally:
        reporter.kill()
    assert reporter.returncode == 0, log[-2000:]
    state = json.loads((site / "state.json").read_text())
    assert (site / "index.html").is_file() and (site / "latentlapse.gif").is_file()
    return state


def check_finished(state: dict) -> None:
    assert state["status"] == "finished"
    assert [f["train_step"] for f in state["frames"]] == RECIPE_STEPS
    assert state["gif"]["frames"] == len(RECIPE_STEPS)
    last = state["frames"][-1]
    # A real autoencoder learned: 300 probe images of 10 classes, and after 200 steps the 2-D map's
    # 10-NN accuracy is over four times chance (0.1); measured 0.59 for the PyTorch recipe here.
    assert last["knn_2d"] > 0.4, last
    assert last["eval_loss"] < state["frames"][0]["eval_loss"]


def test_the_pytorch_recipe_gives_a_finished_site(tmp_path, mnist_cache):
    if not (TORCH_PYTHON.is_file() and (TORCH_PYTHON.parents[1] / ".installed").is_file()):
        if os.environ.get("LATENTLAPSE_REQUIRE_TORCH"):
            pytest.fail(f"{TORCH_PYTHON} missing: run `make torch-env`")
        pytest.skip(f"no PyTorch environment at {TORCH_PYTHON}: `make torch-env` makes one")
    check_finished(run_recipe(tmp_path, str(TORCH_PYTHON), "PyTorch", mnist_cache))


def test_the_mxnet_recipe_gives_a_finished_site(tmp_path, mnist_cache):
    check_finished(run_recipe(tmp_path, sys.executable, "MXNet", mnist_cache))
