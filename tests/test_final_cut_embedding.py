"""The final cut's dynamic t-SNE on real data: deterministic, aligned to the live frames, as good."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from reporter.embedding.embed import Embedder
from reporter.embedding.final_cut import CutSettings, final_cut, windows
from reporter.embedding.quality import jitter, knn_accuracy, trustworthiness

SETTINGS = CutSettings(window=3, overlap=1, iterations=60)


@pytest.fixture(scope="module")
def run():
    """Five 'frames' of 300 real digits drifting from blurred to sharp, and their live layouts."""
    data = load_digits()
    X, labels = data.data[:300] / 16.0, data.target[:300]
    blurred = X.reshape(-1, 8, 8).mean(axis=2).repeat(8, axis=1)
    latents = [(1 - a) * blurred + a * X for a in np.linspace(0.2, 1.0, 5)]
    embedder = Embedder(0)
    live = [embedder.embed(x).copy() for x in latents]
    return latents, live, labels


def test_windows_overlap_and_cover_every_frame():
    assert windows(20, 8, 2) == [(0, 8), (6, 14), (12, 20)]
    assert windows(5, 8, 2) == [(0, 5)]
    assert windows(0) == []
    with pytest.raises(ValueError):
        CutSettings(window=2, overlap=2)


def test_cut_is_deterministic_aligned_and_reports_each_window(run):
    latents, live, _ = run
    seen = []
    cut = final_cut(latents, live, SETTINGS, on_window=lambda done, total: seen.append((done, total)))
    again = final_cut(latents, live, SETTINGS)
    assert seen == [(1, 2), (2, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(cut, again))
    for y, ref in zip(cut, live):
        assert y.shape == ref.shape and np.isfinite(y).all()
        # Aligned onto the live layout and of its spread: the same centre and root-mean-square radius.
        assert np.allclose(y.mean(axis=0), ref.mean(axis=0), atol=1e-9)
        radius = lambda z: np.sqrt(((z - z.mean(axis=0)) ** 2).sum(axis=1).mean())  # noqa: E731
        assert radius(y) == pytest.approx(radius(ref))
        assert not np.allclose(y, ref)  # and it did change the layout


def test_cut_separates_classes_as_a_fresh_tsne_and_moves_less(run):
    latents, live, labels = run
    cut = final_cut(latents, live, SETTINGS)
    fresh = [Embedder(seed).embed(x) for seed, x in enumerate(latents)]  # a t-SNE from scratch per frame
    median = lambda f, ys: float(np.median([f(y) for y in ys]))  # noqa: E731
    # Margins: 0.01 of 10-NN accuracy is 3 of the 300 points; trustworthiness likewise 0.01.
    assert median(lambda y: knn_accuracy(y, labels), cut) >= median(lambda y: knn_accuracy(y, labels), fresh) - 0.01
    trust = lambda ys: float(np.median([trustworthiness(x, y) for x, y in zip(latents, ys)]))  # noqa: E731
    assert trust(cut) >= trust(fresh) - 0.01
    moved = lambda ys: float(np.median([jitter(a, b) for a, b in zip(ys, ys[1:])]))  # noqa: E731
    assert moved(cut) < 0.5 * moved(fresh), (moved(cut), moved(fresh))


def test_frames_with_nonfinite_latents_keep_their_live_layout(run):
    latents, live, _ = run
    broken = list(latents)
    broken[2] = broken[2].copy()
    broken[2][0, 0] = np.nan
    cut = final_cut(broken, live, SETTINGS)
    assert np.array_equal(cut[2], live[2])
    assert not np.array_equal(cut[1], live[1])


def test_the_springs_pull_grows_with_the_displacement_up_to_its_reach_then_stays():
    from reporter.embedding.final_cut import _pull

    reach = 0.05
    d = np.array([[1e-4, 0.0], [0.0, reach], [3.0, 4.0], [-300.0, 0.0]])
    pull = _pull(d, reach)
    length = np.linalg.norm(pull, axis=1)
    assert length[0] == pytest.approx(1e-4, rel=1e-5)          # quadratic penalty: the pull is d itself
    assert length[1] == pytest.approx(reach / np.sqrt(2))        # at the reach, 1/sqrt(2) of it
    assert reach * 0.999 < length[2] < reach and reach * 0.99999 < length[3] < reach  # far: capped at the reach
    assert np.allclose(pull / length[:, None], d / np.linalg.norm(d, axis=1)[:, None])  # along d


def test_a_small_probe_set_without_springs_grows_to_a_full_tsne(run):
    # 100 points at perplexity 30: P is nearly uniform, and an exaggerated phase with too little
    # momentum collapsed the layout to a point that 300 plain steps did not grow back from.
    latents, live, labels = run
    one = [latents[-1][:100]]
    cut = final_cut(one, [Embedder(0).embed(one[0])], CutSettings(spring=0.0))[0]
    fresh = Embedder(1).embed(one[0])
    assert knn_accuracy(cut, labels[:100]) >= knn_accuracy(fresh, labels[:100]) - 0.05  # 5 of 100 points
    assert trustworthiness(one[0], cut) >= trustworthiness(one[0], fresh) - 0.01
