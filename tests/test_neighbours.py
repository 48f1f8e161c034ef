"""Exact nearest neighbours: the same lists as sorting every row, whatever guess they start from."""

import ast
import importlib.util
import shlex
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from reporter.embedding import accelerator
from reporter.embedding.neighbours import nearest_neighbours

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, params=["accelerator", "opentsne"])
def engine(request):
    """Every test on both engines: the C accelerator's search and NumPy's give the same lists."""
    if request.param == "opentsne":
        with accelerator.opentsne_path():
            yield request.param
    elif not accelerator.built():
        pytest.skip("the C accelerator is not built")
    else:
        with accelerator.accelerated_path():
            yield request.param


def brute_force(X, k):
    """Sort every row of the distance matrix (direct sums of squares, ties by index)."""
    d = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


@pytest.fixture(scope="module")
def digits():
    # Real data with many exact ties (integer pixels) and duplicate images.
    return load_digits().data[:700].astype(np.float64)


@pytest.mark.parametrize("k", [1, 10, 90])
def test_same_lists_as_sorting_every_row(digits, k):
    expected, expected_d = brute_force(digits, k)
    found, found_d = nearest_neighbours(digits, k)
    assert np.array_equal(found, expected)
    assert np.array_equal(found_d, expected_d)


def test_the_guess_changes_the_cost_never_the_answer(digits):
    later = digits + np.random.default_rng(0).normal(scale=0.5, size=digits.shape)
    expected, _ = brute_force(later, 30)
    good, _ = nearest_neighbours(digits, 30)          # last frame's lists: close to the answer
    poor = np.random.default_rng(1).integers(0, len(digits), size=(len(digits), 30))  # anything
    poor[poor == np.arange(len(digits))[:, None]] = 0
    repeated = np.repeat(expected[:, :1], 30, axis=1)  # one point named 30 times: too small a radius
    for guess in (None, good, poor, repeated, expected):
        assert np.array_equal(nearest_neighbours(later, 30, guess)[0], expected)


def test_far_from_the_origin_and_bad_k():
    X = np.random.default_rng(2).normal(size=(300, 20)) + 1e4  # norms huge against the distances
    assert np.array_equal(nearest_neighbours(X, 15)[0], brute_force(X, 15)[0])
    with pytest.raises(ValueError, match="k must be between 1 and N-1"):
        nearest_neighbours(X[:5], 5)


def test_a_cpu_without_avx2_finds_the_same_lists(digits, tmp_path, monkeypatch, engine):
    """The C module built for the baseline alone (the distance tiles then take their four-wide
    version, which this machine would not run if it has AVX2): the same exact lists."""
    if engine == "opentsne":
        pytest.skip("a build of the accelerator: nothing to do on openTSNE's path")
    setup = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse((ROOT / "setup.py").read_text()).body
             if isinstance(node, ast.Assign) and node.targets[0].id in ("SOURCE", "COMPILE_ARGS")}
    built = tmp_path / ("_kernels" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run([*shlex.split(sysconfig.get_config_var("CC")), "-shared", "-fPIC",
                    *setup["COMPILE_ARGS"], "-DLATENTLAPSE_BASELINE_ONLY",
                    "-I", sysconfig.get_paths()["include"], str(ROOT / setup["SOURCE"]), "-o", str(built)],
                   check=True)
    spec = importlib.util.spec_from_file_location("_kernels", built)
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    monkeypatch.setattr(accelerator, "KERNELS", baseline)
    expected, expected_d = brute_force(digits, 30)
    found, found_d = nearest_neighbours(digits, 30)
    assert np.array_equal(found, expected)
    assert np.array_equal(found_d, expected_d)  # integer pixels: sums without rounding
    later = digits + np.random.default_rng(3).normal(scale=0.5, size=digits.shape)
    expected, expected_d = brute_force(later, 30)
    assert np.array_equal(nearest_neighbours(later, 30, found)[0], expected)
    X = np.random.default_rng(2).normal(size=(301, 20)) + 1e4  # N not a multiple of the tiles
    assert np.array_equal(nearest_neighbours(X, 15)[0], brute_force(X, 15)[0])
