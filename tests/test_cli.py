"""The one ``latentlapse`` command: its subcommands run the services' own command lines."""

import json
import os
import subprocess
import sys
from pathlib import Path

from latentlapse import cli

ROOT = Path(__file__).resolve().parents[1]
TORCH_TRIAL = ROOT / "tests" / "trials" / "torch-conv"
TORCH_ROLES = ["--latent-regex", "^encoder_output_0$", "--labels-regex", "^labels$",
               "--inputs-regex", "^ConvAutoencoder_input_0$", "--recon-regex", "^decoder_output_0$",
               "--loss-regex", "^PerSampleMSE_output_0$"]


def latentlapse(*args, check=True):
    """The installed console script, as a user runs it (not the function: the entry point is what's tested)."""
    script = Path(sys.executable).with_name("latentlapse")
    assert script.is_file(), f"{script} missing: the project is not installed with its console scripts"
    done = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "REPORTER_TENSORS": "", "REPORTER_OUT": ""})
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_version_is_the_installed_distribution_s():
    from importlib.metadata import version

    assert latentlapse("--version").stdout.strip() == f"latentlapse {version('latentlapse')}"


def test_help_lists_every_subcommand_and_no_command_is_a_usage_error():
    shown = latentlapse("--help").stdout
    for name in ("report", "train", "tensors", "figure", "cut", "compare"):
        assert f"\n  {name} " in shown
    bare = latentlapse(check=False)
    assert bare.returncode == 2 and "usage: latentlapse COMMAND" in bare.stderr


def test_an_unknown_command_is_one_line_and_exit_2():
    done = latentlapse("reprot", check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "latentlapse: error: unknown command 'reprot': use one of report, tensors, figure, cut, compare, train (latentlapse --help)"]


def test_tensors_names_the_roles_of_a_real_pytorch_trial():
    shown = latentlapse("tensors", str(TORCH_TRIAL), *TORCH_ROLES).stdout
    assert "encoder_output_0" in shown and "60x12" in shown
    assert "\nlatent   encoder_output_0" in shown


def test_report_then_figure_on_a_real_pytorch_trial(tmp_path):
    site = tmp_path / "site"
    latentlapse("report", "--tensors", str(TORCH_TRIAL), "--out", str(site), *TORCH_ROLES)
    state = json.loads((site / "state.json").read_text())
    assert state["status"] == "finished" and len(state["frames"]) == 3
    assert (site / "index.html").is_file() and (site / "latentlapse.gif").is_file()
    (site / "figure.pdf").unlink()
    done = latentlapse("figure", "--report", str(site), "--frames", "2")
    assert (site / "figure.pdf").stat().st_size > 1000 and "figure of training steps" in done.stdout


def test_train_forwards_to_the_trainer_s_own_options():
    done = latentlapse("train", "--steps", "many", check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith("trainer: error: --steps='many' is not a number")


def test_python_dash_m_latentlapse_is_the_same_command():
    done = subprocess.run([sys.executable, "-m", "latentlapse", "--version"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.startswith("latentlapse ")
    assert set(cli.COMMANDS) == set(cli.SUMMARY)


def test_threads_hold_for_blas_even_when_an_option_loaded_numpy_first():
    # --image-shape's parse hook imports numpy before the reporter sets OMP_NUM_THREADS: BLAS must
    # still run on --threads threads (its thread count changes the frames' last digits).
    code = ("import json, sys; from reporter.cli import limit_threads; from reporter.config import from_args; "
            "config = from_args(['--tensors', 'x', '--image-shape', '28x28', '--threads', '1']); "
            "assert 'numpy' in sys.modules; limit_threads(config.threads); "
            "from threadpoolctl import threadpool_info; "
            "print(json.dumps([p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts and set(counts) == {1}
