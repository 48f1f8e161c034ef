"""Orthogonal Procrustes: turn one embedding onto another without changing its shape.

t-SNE is free to rotate or mirror an embedding between runs; aligning each frame onto the
previous one removes that freedom so that a time-lapse shows movement, not spin. Only a
rotation/reflection and a translation are allowed: scaling would hide real growth or shrinkage
of the clusters.
"""

import numpy as np


def procrustes(Y, reference):
    """Rotate, reflect and translate ``Y`` to best match ``reference`` (no scaling).

    Both sets are centred; the orthogonal matrix ``R`` minimising ``||Yc R - Rc||_F`` comes
    from the SVD of ``Yc^T Rc``; the result is moved to the centroid of ``reference``.

    Parameters
    ----------
    Y : array_like, shape (N, d)
        The points to move, in the same row order as ``reference``.
    reference : array_like, shape (N, d)
        The points to match.

    Returns
    -------
    np.ndarray, shape (N, d), float64
        ``Y`` rotated/reflected and translated; pairwise distances are unchanged.

    Raises
    ------
    ValueError
        If the two arrays do not have the same shape, are not 2-D, or hold NaN/Inf.
    """
    Y = np.asarray(Y, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if Y.ndim != 2 or Y.shape != reference.shape:
        raise ValueError(
            f"procrustes needs two (N, d) arrays of the same shape, got {Y.shape} and {reference.shape}"
        )
    if not (np.isfinite(Y).all() and np.isfinite(reference).all()):
        raise ValueError("procrustes needs finite coordinates")
    y_mean = Y.mean(axis=0)
    ref_mean = reference.mean(axis=0)
    Yc = Y - y_mean
    Rc = reference - ref_mean
    U, _, Vt = np.linalg.svd(Yc.T @ Rc)
    rotation = U @ Vt
    return Yc @ rotation + ref_mean
