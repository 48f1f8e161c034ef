"""Reading a trainer run's probe tensors back in the training studies, by the contract's names."""

from __future__ import annotations

import numpy as np
from mxnet_setup import ROOT  # noqa: F401  (puts the project on sys.path)

from latentlapse.contract import TENSOR_NAMES


def tensor_name(trial, role: str) -> str:
    """The one tensor of ``trial`` that plays ``role`` (``latent``, ``inputs``, ``recon``, ``loss`` ...)."""
    names = trial.tensor_names(regex=TENSOR_NAMES[role])
    if len(names) != 1:
        raise SystemExit(f"{len(names)} tensors match {TENSOR_NAMES[role]} in {trial.path}: expected one")
    return names[0]


def probe_images(trial) -> np.ndarray:
    """The probe images: the same at every EVAL step, saved at the first one (older stores: at each)."""
    from smdebug import modes

    tensor = trial.tensor(tensor_name(trial, "inputs"))
    return tensor.value(tensor.steps(mode=modes.EVAL)[0], mode=modes.EVAL)
