"""The C gradient (reporter/embedding/_kernels.c) equals openTSNE's own, and refuses what it cannot read."""

import numpy as np
import pytest
import scipy.sparse as sp
from openTSNE.tsne import kl_divergence_bh, kl_divergence_fft
from sklearn.datasets import load_digits

from reporter.embedding import accelerator
from reporter.embedding.affinity import affinities
from reporter.embedding.gradients import exact_kl, fft_kl

_kernels = pytest.importorskip("reporter.embedding._kernels", reason="the C accelerator is not built")

FFT_GRID = {"n_interpolation_points": 3, "min_num_intervals": 50, "ints_in_interval": 1}


@pytest.fixture(autouse=True)
def accelerated():
    """These are the accelerator's tests, whatever LATENTLAPSE_ENGINE says."""
    with accelerator.accelerated_path():
        yield


@pytest.fixture(scope="module")
def problem():
    """Real affinities (500 of sklearn's digits) and a spread-out 2-D layout of them."""
    X = load_digits().data[:500] / 16.0
    P, _ = affinities(X)
    layout = np.random.default_rng(0).normal(scale=8.0, size=(len(X), 2))
    return P, layout


def test_exact_gradient_is_opentsnes_without_approximation(problem):
    P, layout = problem
    error, gradient = exact_kl(layout, P, should_eval_error=True)
    # openTSNE's Barnes-Hut with theta = 0 visits every pair: the exact gradient, its conventions.
    expected_error, expected = kl_divergence_bh(layout, P, 1, {"theta": 0.0}, should_eval_error=True)
    assert np.abs(gradient - expected).max() <= 1e-12 * np.abs(expected).max()
    assert error == pytest.approx(expected_error, rel=1e-12)
    # And the approximation it replaces is measurably off (so the comparison above can fail).
    _, approximate = kl_divergence_bh(layout, P, 1, {"theta": 0.8})
    assert np.abs(approximate - expected).max() > 1e-3 * np.abs(expected).max()


def test_exact_gradient_is_the_derivative_of_the_kl_divergence(problem):
    P, layout = problem
    _, gradient = exact_kl(layout, P)
    # openTSNE's gradient is a quarter of dKL/dy; check two coordinates by central differences.
    for point, axis in ((3, 0), (250, 1)):
        step = np.zeros_like(layout)
        step[point, axis] = 1e-5
        up, _ = exact_kl(layout + step, P, should_eval_error=True)
        down, _ = exact_kl(layout - step, P, should_eval_error=True)
        assert (up - down) / 2e-5 == pytest.approx(4 * gradient[point, axis], rel=1e-5)


@pytest.mark.parametrize("spread", [1.0, 4.0])
def test_fft_gradient_is_opentsnes_to_single_precision(problem, spread):
    P, layout = problem
    layout = layout * spread  # spans of ~50 and ~200: the smallest grid, and one sized by the span
    error, gradient = fft_kl(layout, P, FFT_GRID, should_eval_error=True)
    expected_error, expected = kl_divergence_fft(layout, P, 1, FFT_GRID, should_eval_error=True)
    _, exact = exact_kl(layout, P)
    ours = np.abs(gradient - expected).max()
    assert ours <= 2e-4 * np.abs(expected).max()
    # The interpolation's own error, which both share (same grid, same nodes), is far larger: the
    # single-precision FFT adds little to it. Another grid size would differ by about that much.
    assert ours < 0.05 * np.abs(expected - exact).max()
    assert error == pytest.approx(expected_error, rel=1e-5)


def test_without_error_asked_the_error_is_zero(problem):
    P, layout = problem
    assert exact_kl(layout, P)[0] == 0.0
    assert fft_kl(layout, P, FFT_GRID)[0] == 0.0


def test_bad_arrays_are_refused_not_read(problem):
    P, layout = problem
    indptr, indices = P.indptr.astype(np.int32), P.indices.astype(np.int32)
    out = np.empty_like(layout)
    with pytest.raises(ValueError, match="format 'd'"):
        _kernels.exact_gradient(layout.astype(np.float32), indptr, indices, P.data, out)
    with pytest.raises(ValueError, match="row numbers"):
        bad = indices.copy()
        bad[7] = len(layout)
        _kernels.exact_gradient(layout, indptr, bad, P.data, out)
    with pytest.raises(ValueError, match="N \\+ 1"):
        _kernels.exact_gradient(layout, indptr[:-1], indices, P.data, out)
    with pytest.raises(ValueError, match="shape"):
        _kernels.add_attraction(layout, indptr, indices, P.data, out[:-1])
    with pytest.raises(TypeError):
        _kernels.exact_gradient(layout, indptr, indices, P.data, out, with_errors=True)
    with pytest.raises(ValueError, match="only the Cauchy kernel"):
        exact_kl(layout, P, dof=0.5)
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="row numbers of X"):
        _kernels.select_nearest(np.zeros((10, 3), np.float32), None, np.zeros(10, np.float32), X, 3, 8,
                                np.empty((10, 3), np.int64), np.empty((10, 3)), np.full((10, 3), 10, np.int64))
    with pytest.raises(ValueError, match="either limit or guess"):
        _kernels.select_nearest(np.zeros((10, 3), np.float32), None, np.zeros(10, np.float32), X, 3, 8,
                                np.empty((10, 3), np.int64), np.empty((10, 3)), None)
    with pytest.raises(ValueError, match="X's shape"):
        _kernels.select_nearest(np.zeros((10, 2), np.float32), np.zeros(10, np.float32), np.zeros(10, np.float32),
                                X, 3, 8, np.empty((10, 3), np.int64), np.empty((10, 3)), None)
    with pytest.raises(ValueError, match="N x k"):
        _kernels.select_nearest(np.zeros((10, 3), np.float32), np.zeros(10, np.float32), np.zeros(10, np.float32),
                                X, 3, 8, np.empty((9, 3), np.int64), np.empty((10, 3)), None)


def test_bandwidths_reach_the_perplexity_on_every_row():
    from reporter.embedding.neighbours import nearest_neighbours

    X = load_digits().data[:400] / 16.0
    _, sq = nearest_neighbours(X, 90)
    for perplexity in (5.0, 30.0):
        beta, p = 1.0 / (sq - sq[:, :1]).mean(axis=1), np.empty_like(sq)
        _kernels.bandwidths(sq, beta, p, perplexity, 1e-5, 100)
        entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
        assert np.abs(entropy - np.log(perplexity)).max() < 1e-5
        assert np.allclose(p.sum(axis=1), 1.0) and (np.diff(p, axis=1) <= 1e-15).all()  # nearer, likelier
    with pytest.raises(ValueError, match="perplexity above 1"):
        _kernels.bandwidths(sq, beta[:-1], p, 30.0, 1e-5, 100)


def test_symmetric_affinities_are_scipys_to_the_bit():
    from reporter.embedding.neighbours import nearest_neighbours

    X = load_digits().data[:300] / 16.0
    neighbours, _ = nearest_neighbours(X, 20)
    conditional = np.random.default_rng(1).random(neighbours.shape)
    conditional[::7, -1] = 0.0  # zero affinities are left out, as SciPy leaves them out of a sum
    indptr, indices, data = _kernels.symmetrize(neighbours, conditional)
    n = len(X)
    C = sp.csr_matrix((conditional.ravel(), neighbours.ravel(), np.arange(0, neighbours.size + 1, 20)), shape=(n, n))
    expected = (C + C.T).tocsr()
    expected.sort_indices()
    assert np.array_equal(np.frombuffer(indptr, np.int32), expected.indptr)
    assert np.array_equal(np.frombuffer(indices, np.int32), expected.indices)
    assert np.array_equal(np.frombuffer(data, np.float64), expected.data)
    assert (np.diff(np.frombuffer(indices, np.int32)[:np.frombuffer(indptr, np.int32)[1]]) > 0).all()
    with pytest.raises(ValueError, match="row numbers"):
        _kernels.symmetrize(np.full_like(neighbours, n), conditional)
