"""Warm-started openTSNE frames: deterministic, aligned, of real quality, safe on NaN."""

import numpy as np
import pytest
from openTSNE.affinity import PerplexityBasedNN
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

from reporter.embedding.embed import (MAX_ITER_GAIN, WARM_ITER, Embedder, EmbedSettings, affinities, finite_rows,
                            latent_change, neighbourhood_kept)
from reporter.embedding.quality import jitter, knn_accuracy, trustworthiness


def embed_frame(latents, previous=None, seed=0, previous_latents=None, **settings):
    """One frame from a given memory: the layout and latents of the frame before."""
    embedder = Embedder(seed, EmbedSettings(**settings), layout=previous, latents=previous_latents)
    return embedder.embed(latents)


@pytest.fixture(scope="module")
def digits():
    # Real data, small enough for a fast test: 300 of sklearn's 8x8 digits, scaled to [0, 1].
    data = load_digits()
    return data.data[:300] / 16.0, data.target[:300]


@pytest.fixture(scope="module")
def two_frames(digits):
    """Frame 0 on the digits, frame 1 on slightly changed 'latents' (a real drift: pixels blurred)."""
    X, _ = digits
    blurred = 0.8 * X + 0.2 * X.reshape(-1, 8, 8).mean(axis=2).repeat(8, axis=1)
    first = embed_frame(X, seed=0)
    second = embed_frame(blurred, previous=first, seed=0)
    return X, blurred, first, second


def test_affinities_match_opentsne_exact_neighbours(digits):
    X, _ = digits
    # Integer pixels give tied distances, which two neighbour searches may order differently
    # at the k-th neighbour; a tiny fixed perturbation makes the neighbour sets unambiguous.
    X = X + np.random.default_rng(0).normal(scale=1e-6, size=X.shape)
    P, neighbours = affinities(X, perplexity=30)
    reference_index = PerplexityBasedNN(X, perplexity=30, method="exact", random_state=0)
    reference = reference_index.P
    assert P.shape == (300, 300) and neighbours.shape == (300, 90)
    assert np.array_equal(neighbours, reference_index.knn_index.build()[0])
    assert abs(P - P.T).max() < 1e-15
    assert P.sum() == pytest.approx(1.0)
    assert abs(P - reference).max() < 1e-4 * reference.max()


def test_neighbourhood_kept_is_one_for_the_latents_themselves_and_small_for_noise():
    points = np.random.default_rng(0).normal(size=(500, 2))
    _, neighbours = affinities(points, perplexity=10)
    assert neighbourhood_kept(points, neighbours) == pytest.approx(1.0)
    shuffled = np.random.default_rng(1).permutation(points)
    assert neighbourhood_kept(shuffled, neighbours) < 0.05


def test_first_frame_is_a_good_tsne(two_frames, digits):
    X, _, first, _ = two_frames
    _, y = digits
    assert first.shape == (300, 2) and first.dtype == np.float64
    assert knn_accuracy(first, y) > 0.9
    assert trustworthiness(X, first) > 0.95


def test_warm_frame_keeps_quality_and_stays_close_to_the_previous_one(two_frames, digits):
    _, blurred, first, second = two_frames
    _, y = digits
    assert knn_accuracy(second, y) > 0.9
    assert trustworthiness(blurred, second) > 0.95
    from_scratch = embed_frame(blurred, seed=1)
    # Warm-started and aligned, the frame moves far less than a new t-SNE of the same latents.
    assert jitter(first, second) < 0.5 * jitter(first, from_scratch)


def test_latent_change_counts_new_neighbours():
    points = np.random.default_rng(0).normal(size=(400, 5))
    _, neighbours = affinities(points, perplexity=10)
    _, shuffled = affinities(np.random.default_rng(1).permutation(points), perplexity=10)
    assert latent_change(neighbours, neighbours) == 0.0
    assert latent_change(shuffled, neighbours) > 0.9


def test_the_embedder_remembers_the_last_frame_and_a_resumed_one_continues_identically(digits, tmp_path):
    X, _ = digits
    frames = [X + np.random.default_rng(s).normal(scale=0.05, size=X.shape) for s in range(3)]
    embedder = Embedder(seed=0)
    layouts = [embedder.embed(f) for f in frames[:2]]
    assert np.array_equal(embedder.layout, layouts[1]) and np.array_equal(embedder.latents, frames[1])
    assert np.array_equal(embedder.neighbours, affinities(frames[1])[1])  # kept for the next frame
    # A reporter restarted after frame 1 rebuilds the memory from the saved frames: same frame 2.
    files = []
    for i, (layout, latents) in enumerate(zip(layouts, frames)):
        files.append(tmp_path / f"frame-{i}.npz")
        np.savez(files[-1], embedding=layout, latents=latents.astype(np.float32))
    resumed = Embedder.resume(files, seed=0)
    assert resumed.neighbours is None
    float32_latents = frames[1].astype(np.float32).astype(np.float64)
    assert np.array_equal(resumed.latents, float32_latents)
    continued = Embedder(seed=0, layout=layouts[1], latents=float32_latents)
    continued.neighbours = affinities(float32_latents)[1]
    assert np.array_equal(resumed.embed(frames[2]), continued.embed(frames[2]))


def test_resume_seeds_the_next_frame_with_the_last_finite_latents(tmp_path):
    files = []
    for i, value in enumerate([1.0, 2.0, np.nan]):
        files.append(tmp_path / f"frame-{i}.npz")
        np.savez(files[-1], embedding=np.full((4, 2), float(i)), latents=np.full((4, 3), value, dtype=np.float32))
    resumed = Embedder.resume(files)
    assert np.array_equal(resumed.latents, np.full((4, 3), 2.0))
    assert np.array_equal(resumed.layout, np.full((4, 2), 2.0))  # the last frame's, even if not finite
    # A report from before the npz files kept latents resumes without them.
    np.savez(tmp_path / "old.npz", embedding=np.zeros((4, 2)), labels=np.arange(4), step=np.int64(0))
    assert Embedder.resume([tmp_path / "old.npz"]).latents is None
    assert Embedder.resume([]).layout is None


def test_nonfinite_frame_leaves_the_memory_of_the_last_good_one(digits):
    X, _ = digits
    embedder = Embedder(seed=0)
    first = embedder.embed(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    assert embedder.embed(bad) is None
    assert embedder.layout is first and np.array_equal(embedder.latents, X)


def test_settled_latents_hold_the_layout_still(two_frames, digits):
    # Latents that barely changed (a little noise on each): with the previous latents known, the
    # spring stiffens and the frame moves less than it does without them; quality stays.
    X, _, first, _ = two_frames
    _, y = digits
    settled = X + np.random.default_rng(2).normal(scale=0.01, size=X.shape)
    assert latent_change(affinities(X)[1], affinities(settled)[1]) < 0.1
    blind = embed_frame(settled, previous=first, seed=0)
    informed = embed_frame(settled, previous=first, previous_latents=X, seed=0)
    assert jitter(first, informed) < 0.7 * jitter(first, blind)
    assert knn_accuracy(informed, y) > 0.9
    # Latents that changed a lot get the ordinary spring and up to MAX_ITER_GAIN x the iterations.
    shuffled = np.random.default_rng(3).permutation(X)
    assert np.array_equal(embed_frame(X, previous=first, previous_latents=shuffled, seed=0),
                          embed_frame(X, previous=first, seed=0, warm_iter=round(WARM_ITER * MAX_ITER_GAIN)))


def test_equal_inputs_give_bit_identical_frames(two_frames):
    X, blurred, first, second = two_frames
    again_first = embed_frame(X, seed=0)
    again_second = embed_frame(blurred, previous=again_first, seed=0)
    assert np.array_equal(first, again_first)
    assert np.array_equal(second, again_second)
    with threadpool_limits(2):  # the neighbour search's matrix products on two BLAS threads
        assert np.array_equal(embed_frame(blurred, previous=first, seed=0), second)
    assert not np.array_equal(embed_frame(X[:60], seed=1), embed_frame(X[:60], seed=0))


def test_nonfinite_latents_give_none_not_an_exception(digits):
    X, _ = digits
    bad = X.copy()
    bad[7, 3] = np.nan
    bad[9, 0] = np.inf
    assert finite_rows(bad).sum() == 298
    assert not finite_rows(bad)[7] and not finite_rows(bad)[9]
    assert embed_frame(bad) is None
    assert embed_frame(bad, previous=np.zeros((300, 2)) + np.arange(300)[:, None]) is None


def test_degenerate_previous_frame_means_from_scratch(digits):
    X, _ = digits
    subset = X[:60]
    assert np.array_equal(embed_frame(subset, previous=np.zeros((60, 2)), seed=0),
                          embed_frame(subset, seed=0))


@pytest.mark.parametrize("n", [50, 120])
def test_small_probe_sets(digits, n):
    X, y = digits
    frame = embed_frame(X[:n], seed=0)
    assert frame.shape == (n, 2) and np.isfinite(frame).all()
    assert np.isfinite(embed_frame(X[:n] * 1.01, previous=frame, seed=0)).all()


def test_mismatched_previous_frame_is_a_bug_in_the_caller(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="previous frame"):
        embed_frame(X, previous=np.ones((299, 2)))
    with pytest.raises(ValueError, match="latents"):
        embed_frame(X[0])


def test_unrelated_previous_layout_is_reorganised_not_followed(two_frames, digits):
    # A previous layout with the points shuffled says nothing about the latents (as after the
    # first training steps): the frame reorganises and is as good as a fresh one.
    X, _, first, _ = two_frames
    _, y = digits
    shuffled = np.random.default_rng(0).permutation(first)
    reorganised = embed_frame(X, previous=shuffled, seed=0)
    followed = embed_frame(X, previous=shuffled, seed=0, reorganize_below=0)
    assert knn_accuracy(reorganised, y) > 0.9
    assert knn_accuracy(reorganised, y) > knn_accuracy(followed, y)


def test_large_probe_sets_take_the_fft_gradient_and_keep_quality(two_frames, digits):
    # The FFT path (openTSNE's interpolation gradient, shorter schedules) on a small set: same
    # guarantees, deterministic, as good a layout.
    X, blurred, first, _ = two_frames
    _, y = digits
    embedder = Embedder(seed=0, settings=EmbedSettings(fft_from=100))
    frames = [embedder.embed(X), embedder.embed(blurred)]
    assert np.array_equal(Embedder(seed=0, settings=EmbedSettings(fft_from=100)).embed(X), frames[0])
    assert not np.array_equal(frames[0], first)  # not the Barnes-Hut frame
    assert knn_accuracy(frames[1], y) > 0.9 and trustworthiness(blurred, frames[1]) > 0.95
    assert jitter(frames[0], frames[1]) < 0.5 * jitter(frames[0], embed_frame(blurred, seed=1))
