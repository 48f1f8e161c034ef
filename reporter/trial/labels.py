"""Class labels in the forms models save them: integers, whole floats, one-hot rows or class scores.

A labels tensor becomes one integer class per probe point (:func:`to_classes`); the form it
had is said in words, for the site. Anything that is not a class (fractional values, negative
values, a third axis) is the user's tensor of another kind: one line says so and how to go on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reporter import ReporterError

NO_LABELS_HINT = "pass --labels-regex to the class tensor, or --labels-regex none to report without labels"


@dataclass(frozen=True)
class Classes:
    """Integer classes of the probe points and how they were read."""

    values: np.ndarray   # (N,) int64, >= 0
    form: str            # "integers", "whole numbers (float)", "one-hot (N, K)", "class scores (N, K): argmax"
    n_classes: int       # K of a one-hot/score tensor, else max + 1


def to_classes(array, n: int, name: str = "labels") -> Classes:
    """Read a labels tensor of ``n`` probe points as classes.

    Parameters
    ----------
    array : array_like, shape (N,), (N, 1) or (N, K)
        Class indices (integers or whole floats), or one row per point of one-hot values or
        class scores (probabilities, logits), read by argmax.
    n : int
        Number of probe points; the first axis must match.
    name : str
        The tensor's name, for the messages.

    Returns
    -------
    Classes
    """
    a = np.asarray(array)
    if a.ndim == 0 or a.shape[0] != n:
        raise ReporterError(f"{name} has shape {a.shape} but the latents hold {n} points: check --labels-regex")
    if a.dtype.kind not in "biuf":
        raise ReporterError(f"{name} holds {a.dtype} values, not classes: {NO_LABELS_HINT}")
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 1:
        return _indices(a, name)
    if a.ndim == 2:
        return _rows(a, name)
    raise ReporterError(f"{name} has shape {a.shape}: labels are one value or one row per point; {NO_LABELS_HINT}")


def _indices(a: np.ndarray, name: str) -> Classes:
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            raise ReporterError(f"{name} holds NaN/Inf where class labels should be: {NO_LABELS_HINT}")
        fractional = a != np.round(a)
        if fractional.any():
            example = float(a[np.flatnonzero(fractional)[0]])
            raise ReporterError(f"{name} holds fractional values (e.g. {example:.4g}), not class labels: "
                                + NO_LABELS_HINT)
        form = "whole numbers (float)"
    else:
        form = "integers"
    values = a.astype(np.int64)
    if len(values) and values.min() < 0:
        raise ReporterError(f"{name} holds negative values (e.g. {int(values.min())}), not class indices: "
                            + NO_LABELS_HINT)
    return Classes(values, form, int(values.max()) + 1 if len(values) else 0)


def _rows(a: np.ndarray, name: str) -> Classes:
    x = a.astype(np.float64)
    if not np.isfinite(x).all():
        raise ReporterError(f"{name} holds NaN/Inf where class scores should be: {NO_LABELS_HINT}")
    k = a.shape[1]
    values = np.argmax(x, axis=1).astype(np.int64)
    onehot = bool(np.isin(x, (0.0, 1.0)).all() and (x.sum(axis=1) == 1).all())
    form = f"one-hot rows ({k} classes), read by argmax" if onehot else f"class scores ({k} classes), read by argmax"
    return Classes(values, form, k)


def checked_classes(labels, n: int, n_names: int | None = None, where: str = "") -> np.ndarray:
    """``labels`` as (n,) int64 classes, checked again where they are drawn (after :func:`to_classes`).

    Raises ReporterError, in one line that names ``where`` and the option to fix, when there are
    not ``n`` of them, when one is not a whole number, or (given ``n_names``) one has no name.
    """
    head = f"{where}: " if where else ""
    lab = np.asarray(labels).reshape(-1)
    if lab.shape[0] != n:
        raise ReporterError(f"{head}{lab.shape[0]} labels for {n} points: check the --labels-regex option")
    if not np.all(np.isfinite(lab.astype(np.float64))) or np.any(lab != np.round(lab)):
        raise ReporterError(f"{head}labels must be whole numbers: check the --labels-regex option")
    lab = lab.astype(np.int64)
    if n_names is not None and n and (lab.min() < 0 or lab.max() >= n_names):
        raise ReporterError(f"{head}labels run from {lab.min()} to {lab.max()} but there are {n_names} class names")
    return lab


def class_names(n_classes: int, known=None) -> list[str]:
    """Legend names: the run's own (``latentlapse-run.json``) when it names enough, else the indices."""
    if isinstance(known, (list, tuple)) and len(known) >= n_classes:
        return [str(x) for x in known]
    return [str(i) for i in range(max(n_classes, 1))]
