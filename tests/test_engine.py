"""The two engines (reporter/embedding/accelerator.py): openTSNE's path and the C accelerator.

Each is tested against openTSNE where it computes openTSNE's algorithm, and the two are tested
against each other on whole frames of real latents. Tolerances, as measured here:

- affinities: openTSNE's path gives openTSNE's matrix, to the bit; the accelerator's bandwidth search stops at |entropy - log perplexity| < 1e-5,
  openTSNE's at 1e-8: P agrees to 1e-5 of its largest entry;
- neighbour lists and trustworthiness's ranks: identical (tests/test_neighbours.py runs every
  neighbour test on both engines);
- the descent: the accelerator's C step is openTSNE's, to 1e-9 of the layout's spread after 30 steps;
- whole frames: the accelerator's exact gradient and openTSNE's Barnes-Hut (theta 0.5) give
  different layouts of equal quality, frame by frame: 10-NN accuracy in 2-D within 0.05 and
  trustworthiness within 0.01 on 400 digits; within 0.05 and 0.02 on the 100 points of a
  real store (measured up to 0.012 there: fewer points, larger steps of 1/N).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from openTSNE.affinity import joint_probabilities_nn
from openTSNE.tsne import kl_divergence_bh
from sklearn.datasets import load_digits

from reporter.embedding import accelerator
from reporter.embedding.affinity import affinities, neighbour_count
from reporter.embedding.embed import Embedder
from reporter.embedding.gradients import Descent
from reporter.embedding.neighbours import nearest_neighbours
from reporter.embedding.quality import knn_accuracy, trustworthiness
from reporter.trial.store import TensorStore

ROOT = Path(__file__).resolve().parent.parent
needs_accelerator = pytest.mark.skipif(not accelerator.built(), reason="the C accelerator is not built")


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data[:400] / 16.0 + np.random.default_rng(0).normal(scale=1e-6, size=(400, 64)), data.target[:400]


def test_opentsne_path_affinities_are_opentsnes(digits):
    X, _ = digits
    with accelerator.opentsne_path():
        P, neighbours = affinities(X, perplexity=30)
        found, sq = nearest_neighbours(X, neighbour_count(len(X), 30))
    expected = joint_probabilities_nn(found, np.sqrt(sq), [30.0])
    assert np.array_equal(neighbours, found)
    assert abs(P - expected).max() == 0.0  # openTSNE's own matrix
    assert P.has_sorted_indices and P.dtype == np.float64


@needs_accelerator
def test_accelerated_affinities_agree_with_opentsnes(digits):
    X, _ = digits
    with accelerator.opentsne_path():
        reference, _ = affinities(X, perplexity=30)
    with accelerator.accelerated_path():
        P, _ = affinities(X, perplexity=30)
    assert (P != reference).nnz > 0  # two searches, two roundings: the comparison below can fail
    assert abs(P - reference).max() < 1e-5 * reference.max()
    assert abs(P - P.T).max() < 1e-15 and P.sum() == pytest.approx(1.0)


@needs_accelerator
def test_trustworthiness_ranks_are_the_same_on_both_engines(digits):
    X, _ = digits
    layout = np.random.default_rng(1).normal(size=(len(X), 2))  # far-off neighbours: many ranks to count
    with accelerator.opentsne_path():
        expected = trustworthiness(X, layout)
    with accelerator.accelerated_path():
        assert trustworthiness(X, layout) == expected


def _exact(embedding, P, **_):
    """openTSNE's exact gradient (Barnes-Hut visiting every pair), one objective for both descents."""
    return kl_divergence_bh(np.asarray(embedding), P, 1, {"theta": 0.0})


@needs_accelerator
def test_the_accelerated_descent_is_opentsnes_optimize(digits):
    X, _ = digits
    with accelerator.opentsne_path():
        P, _ = affinities(X)
    init = np.random.default_rng(2).normal(scale=1e-4, size=(len(X), 2))
    layouts = []
    for path in (accelerator.opentsne_path, accelerator.accelerated_path):
        with path():
            descent = Descent(init)
            descent.run(P, _exact, 20, exaggeration=12.0)
            layouts.append(descent.run(P, _exact, 10).copy())
    spread = np.std(layouts[0])
    assert spread > 1e-2  # it moved: a comparison of two still layouts would prove nothing
    assert np.abs(layouts[0] - layouts[1]).max() < 1e-9 * spread


def _frames(latents_by_step, seed=0):
    embedder = Embedder(seed)
    return [embedder.embed(latents) for latents in latents_by_step]


@needs_accelerator
def test_both_engines_give_frames_of_the_same_quality_from_a_real_store(small_run):
    store = TensorStore(str(small_run))
    store.open(timeout=5)
    assert store.resolve_names()
    steps = [store.read_probe_step(s, None) for s in store.eval_steps()]
    latents = [s.latents for s in steps]
    labels = steps[0].labels
    with accelerator.opentsne_path():
        pure = _frames(latents)
        again = _frames(latents)
    with accelerator.accelerated_path():
        fast = _frames(latents)
    assert all(np.array_equal(a, b) for a, b in zip(pure, again))  # openTSNE's path is deterministic
    for Z, a, b in zip(latents, pure, fast):
        assert not np.array_equal(a, b)
        assert abs(knn_accuracy(a, labels) - knn_accuracy(b, labels)) <= 0.05
        assert abs(trustworthiness(Z, a) - trustworthiness(Z, b)) <= 0.02


@needs_accelerator
def test_both_engines_agree_on_a_drifting_real_data_set(digits):
    X, y = digits
    # Four "frames": the digits blurred less and less towards the end (a real drift of the latents).
    blurred = X.reshape(-1, 8, 8).mean(axis=2).repeat(8, axis=1)
    latents = [(1 - w) * X + w * blurred for w in (0.6, 0.4, 0.2, 0.0)]
    with accelerator.opentsne_path():
        pure = _frames(latents)
    with accelerator.accelerated_path():
        fast = _frames(latents)
    for Z, a, b in zip(latents, pure, fast):
        assert abs(knn_accuracy(a, y) - knn_accuracy(b, y)) <= 0.05
        assert abs(trustworthiness(Z, a) - trustworthiness(Z, b)) <= 0.01
        assert knn_accuracy(a, y) > 0.9  # a real t-SNE of the digits on openTSNE's path


@pytest.mark.parametrize("value, words", [
    ("bogus", "LATENTLAPSE_ENGINE='bogus' is not an engine: use one of auto, opentsne, c"),
])
def test_an_engine_that_cannot_be_is_one_line_and_exit_1(tmp_path, value, words):
    env = {**os.environ, accelerator.ENGINE_ENV: value}
    done = subprocess.run([sys.executable, "-m", "reporter", "--tensors", str(tmp_path / "t"), "--out",
                           str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == f"reporter: error: {words}"
    assert not (tmp_path / "site").exists()


def test_choosing_the_engine():
    built = object()
    assert accelerator._choose(None, built) == (built, None)
    assert accelerator._choose(" Auto ", None) == (None, None)
    assert accelerator._choose("opentsne", built) == (None, None)
    assert accelerator._choose("c", built) == (built, None)
    kernels, problem = accelerator._choose("c", None)
    assert kernels is None and problem.startswith("LATENTLAPSE_ENGINE=c, but the C accelerator")
