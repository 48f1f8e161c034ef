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


def similarity(Y, reference, reflect=None):
    """Rotate, optionally reflect, scale and translate ``Y`` onto ``reference``: orthogonal Procrustes, same spread.

    Where :func:`procrustes` keeps one run's frames at their own scale, two runs' maps have no
    common scale: ``latentlapse compare`` scales each onto the comparison's reference too.

    Parameters
    ----------
    Y, reference : array_like, shape (N, 2)
        The same points in the same order; finite.
    reflect : bool, optional
        Force a mirror image (True) or forbid one (False); None: whichever fits better. A run
        is given one handedness for all its frames, so its panel cannot flip from step to step.

    Returns
    -------
    aligned : np.ndarray, shape (N, 2), float64
    residual : float
        ``|aligned - reference| / |reference - its centroid|``: 0 where ``Y`` is a rotated,
        scaled copy of ``reference``; sqrt(2) for two unrelated maps (the most, as the best
        rotation never anti-correlates them).
    reflected : bool
        Whether the result is a mirror image of ``Y``.
    """
    Y = np.asarray(Y, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if Y.shape != reference.shape or Y.ndim != 2 or Y.shape[1] != 2:
        raise ValueError(f"similarity needs two (N, 2) arrays of the same shape, got {Y.shape} and {reference.shape}")
    if not (np.isfinite(Y).all() and np.isfinite(reference).all()):
        raise ValueError("similarity needs finite coordinates")
    Yc = Y - Y.mean(axis=0)
    Rc = reference - reference.mean(axis=0)
    U, S, Vt = np.linalg.svd(Yc.T @ Rc)
    mirror = np.linalg.det(U @ Vt) < 0        # the unconstrained best is a reflection
    if reflect is not None and bool(reflect) != mirror:
        U = U.copy()
        U[:, -1] *= -1                         # the best of the other handedness (Kabsch)
        S = S * np.array([1.0, -1.0])
        mirror = bool(reflect)
    rotation = U @ Vt
    spread, total = float((Yc ** 2).sum()), float((Rc ** 2).sum())
    # The spread of the reference, not the least-squares scale: that one shrinks a map in
    # proportion to how little it agrees, so a run unlike the reference would look small.
    scale = float(np.sqrt(total / spread)) if spread > 0 else 1.0
    aligned = scale * (Yc @ rotation) + reference.mean(axis=0)
    residual = float(np.sqrt(((aligned - reference) ** 2).sum() / total)) if total > 0 else 0.0
    return aligned, residual, bool(mirror)
