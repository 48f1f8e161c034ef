"""Labels as integers, whole floats, one-hot rows or class scores; what is not a label is one line."""

from __future__ import annotations

import numpy as np
import pytest

from reporter import ReporterError
from reporter.trial.labels import class_names, to_classes


def test_integer_float_onehot_and_scores_give_the_same_classes():
    y = np.array([0, 3, 1, 19, 2])
    onehot = np.eye(20, dtype=np.float32)[y]
    scores = onehot * 5.0 - 1.0 + np.random.default_rng(0).uniform(0, 0.1, onehot.shape)
    for array, form in [(y, "integers"), (y.astype(np.float32), "whole numbers"),
                        (y[:, None].astype(np.float64), "whole numbers"), (onehot, "one-hot"),
                        (scores, "class scores")]:
        got = to_classes(array, 5)
        assert got.values.tolist() == y.tolist() and got.values.dtype == np.int64
        assert form in got.form
    assert to_classes(onehot, 5).n_classes == 20 and to_classes(y, 5).n_classes == 20


@pytest.mark.parametrize("array, message", [
    (np.array([0.0, 0.5, 1.0]), "fractional values"),
    (np.array([0, -1, 2]), "negative values"),
    (np.array([0.0, np.nan, 1.0]), "NaN"),
    (np.zeros((3, 2, 2)), "shape"),
    (np.zeros(4), "latents hold 3 points"),
])
def test_what_is_not_a_label_is_one_line_with_the_way_out(array, message):
    with pytest.raises(ReporterError, match=message) as info:
        to_classes(array, 3, name="t")
    assert "\n" not in str(info.value)


def test_class_names_from_the_run_when_enough_else_indices():
    assert class_names(3, ["a", "b", "c", "d"]) == ["a", "b", "c", "d"]
    assert class_names(12, ["a", "b"]) == [str(i) for i in range(12)]
