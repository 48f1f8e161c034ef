"""Frame quality figures: k-NN label accuracy, trustworthiness, jitter and the diameter it uses."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from reporter.embedding.quality import diameter, jitter, knn_accuracy, trustworthiness


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data[:600], data.target[:600]


def test_knn_accuracy_on_real_digits_is_high_and_drops_with_shuffled_labels(digits):
    X, y = digits
    accuracy = knn_accuracy(X, y, k=10)
    assert 0.9 < accuracy <= 1.0  # 64-pixel digits are well separated by 10-NN
    shuffled = np.random.default_rng(0).permutation(y)
    assert knn_accuracy(X, shuffled, k=10) < 0.25  # about chance (10 classes)


def test_knn_accuracy_leaves_the_point_itself_out():
    # Two tight pairs per class; each point's nearest other point is its twin.
    X = np.array([[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1]])
    assert knn_accuracy(X, np.array([0, 0, 1, 1]), k=1) == 1.0
    # With itself left out a lone point of class 2 cannot vote for its own class.
    X3 = np.vstack([X, [[5.0, 5.0]]])
    assert knn_accuracy(X3, np.array([0, 0, 1, 1, 2]), k=1) == pytest.approx(0.8)


def test_knn_accuracy_tie_goes_to_the_nearer_class():
    # On a line: points 0 and 1 are class 1, points 2, 3, 4 class 2. With k=2, point 0 has
    # neighbours 1 (class 1, distance 1) and 2 (class 2, distance 2): a tie the nearer class 1
    # wins; point 1 likewise (0 at distance 1 beats 2 at distance 3); point 2's two neighbours
    # are both class 1 (wrong); points 3 and 4 have each other (class 2) first: right.
    X = np.array([[0.0], [1.0], [-2.0], [50.0], [52.0]])
    labels = np.array([1, 1, 2, 2, 2])
    assert knn_accuracy(X, labels, k=2) == pytest.approx(0.8)
    # Same layout, classes swapped: the ties now go to class 2 ("smallest label wins" would fail).
    assert knn_accuracy(X, np.array([2, 2, 1, 2, 2]), k=2) == pytest.approx(0.8)


def test_trustworthiness_is_one_for_a_perfect_embedding_and_lower_for_noise(digits):
    X, _ = digits
    Y = PCA(n_components=2, random_state=0).fit_transform(X)
    assert trustworthiness(Y, Y, k=10) == pytest.approx(1.0)
    random_layout = np.random.default_rng(0).normal(size=Y.shape)
    assert trustworthiness(X, random_layout, k=10) < trustworthiness(X, Y, k=10)


def test_diameter_is_the_largest_pairwise_distance():
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(400, 2))
    brute = np.linalg.norm(Y[:, None] - Y[None], axis=-1).max()
    assert diameter(Y) == pytest.approx(brute, rel=1e-12)
    assert diameter(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert diameter(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])) == pytest.approx(np.sqrt(8))


def test_jitter_ignores_rotation_and_translation_and_measures_real_movement(digits):
    X, _ = digits
    Y = PCA(n_components=2, random_state=0).fit_transform(X)
    c, s = np.cos(1.2), np.sin(1.2)
    moved = Y @ np.array([[c, -s], [s, c]]) * np.array([1.0, -1.0]) + 40.0
    assert jitter(Y, moved) < 1e-12
    # Every point pushed by the same distance in random directions: the median displacement
    # after alignment is close to that distance.
    rng = np.random.default_rng(2)
    angles = rng.uniform(0, 2 * np.pi, len(Y))
    step = 0.01 * diameter(Y)
    pushed = Y + step * np.c_[np.cos(angles), np.sin(angles)]
    assert jitter(Y, pushed) == pytest.approx(step / diameter(pushed), rel=0.05)


def test_trustworthiness_is_sklearns_figure_exactly(digits):
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    from reporter.embedding.neighbours import nearest_neighbours

    X, _ = digits
    X = X + np.random.default_rng(0).normal(scale=1e-6, size=X.shape)  # integer pixels tie
    for Y in (PCA(n_components=2, random_state=0).fit_transform(X),
              np.random.default_rng(1).normal(size=(len(X), 2))):  # a poor embedding: many far ranks
        expected = sklearn_trustworthiness(X, Y, n_neighbors=10)
        assert trustworthiness(X, Y) == pytest.approx(expected, abs=1e-12)
        known, _ = nearest_neighbours(X, 90)
        assert trustworthiness(X, Y, latent_neighbours=known) == pytest.approx(expected, abs=1e-12)
        # Estimated from a third of the points' neighbourhoods: close, not exact.
        assert trustworthiness(X, Y, latent_neighbours=known, sample=200) == pytest.approx(expected, abs=0.02)
        assert trustworthiness(X, Y, sample=200) != expected


def test_knn_accuracy_from_known_neighbours_is_the_same(digits):
    from reporter.embedding.neighbours import nearest_neighbours

    X, y = digits
    X = X + np.random.default_rng(0).normal(scale=1e-6, size=X.shape)
    known, _ = nearest_neighbours(X, 30)
    assert knn_accuracy(X, y, neighbours=known) == knn_accuracy(X, y)


def test_plane_neighbours_give_sklearns_figures():
    """In 2-D the figures use a k-d tree; on points without ties they match sklearn's search."""
    from sklearn.neighbors import NearestNeighbors

    from reporter.embedding.quality import neighbourhood_preservation

    rng = np.random.default_rng(7)
    Y, before = rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2))
    labels = rng.integers(0, 10, 3000)
    near = NearestNeighbors(n_neighbors=10).fit(Y).kneighbors(return_distance=False)
    assert knn_accuracy(Y, labels) == knn_accuracy(Y, labels, neighbours=near)
    old = NearestNeighbors(n_neighbors=10).fit(before).kneighbors(return_distance=False)
    kept = np.mean([len(set(a) & set(b)) for a, b in zip(old, near)]) / 10
    assert neighbourhood_preservation(before, Y) == pytest.approx(kept, abs=1e-12)


def test_one_plane_search_gives_the_same_three_figures(digits):
    from reporter.embedding.neighbours import plane_neighbours
    from reporter.embedding.quality import neighbourhood_preservation

    X, y = digits
    Y = PCA(n_components=2, random_state=0).fit_transform(X)
    before = Y + np.random.default_rng(3).normal(scale=0.5, size=Y.shape)
    near = plane_neighbours(Y)
    assert knn_accuracy(Y, y, neighbours=near) == knn_accuracy(Y, y)
    for sample in (None, 200):
        assert (trustworthiness(X, Y, sample=sample, embedded_neighbours=near)
                == trustworthiness(X, Y, sample=sample))
    assert (neighbourhood_preservation(before, Y, current_neighbours=near)
            == neighbourhood_preservation(before, Y))
