"""Write small smdebug trials with smdebug's own writer, for shapes of input our trainer never makes
(NaN latents, a probe set that changes size, other tensor names, a corrupted event file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from smdebug import modes
from smdebug.core.collection_manager import CollectionManager
from smdebug.core.writer import FileWriter

WORKER = "worker_0"
NAMES = {
    "latent": "convolutionalautoencoder0_hybridsequential0_dense0_output_0",
    "inputs": "convolutionalautoencoder0_input_0",
    "labels": "convolutionalautoencoder0_input_1",
    "recon": "l2loss0_input_0",
    "loss": "l2loss0_output_0",
}


def probe_arrays(n: int, step: int, seed: int = 0, dim: int = 20) -> dict[str, np.ndarray]:
    """Clustered latents (10 classes drifting apart over steps) and images of the right shapes."""
    rng = np.random.RandomState(seed + step)
    labels = np.repeat(np.arange(10), n // 10).astype(np.float32)
    centres = np.random.RandomState(seed).normal(size=(10, dim)) * (1.0 + step)
    latent = centres[labels.astype(int)] + rng.normal(size=(n, dim))
    images = rng.uniform(size=(n, 1, 28, 28)).astype(np.float32)
    return {"latent": latent.astype(np.float32), "labels": labels, "inputs": images,
            "recon": (images * 0.5).astype(np.float32), "loss": rng.uniform(0.01, 0.05, n).astype(np.float32)}


def write_step(path: Path, step: int, arrays: dict[str, np.ndarray], names: dict[str, str] = NAMES) -> None:
    """Add EVAL step ``step`` (global step ``step``) to a trial, as a trainer would while a reporter follows."""
    path = Path(path)
    writer = FileWriter(trial_dir=str(path), worker=WORKER, step=step, mode=modes.EVAL)
    for role, array in arrays.items():
        writer.write_tensor(tdata=array, tname=names[role], mode=modes.EVAL, mode_step=step)
    writer.close()
    if not (path / "collections").is_dir():
        manager = CollectionManager()
        manager.get("default")
        manager.export(str(path), f"{WORKER}_collections.json")


def write_trial(path: Path, eval_steps: list[dict[str, np.ndarray]], names: dict[str, str] = NAMES,
                end: bool = True) -> Path:
    """One EVAL step per dict (role -> array), one global step each; the end marker if ``end``."""
    path = Path(path)
    manager = CollectionManager()
    manager.get("default")
    for step, arrays in enumerate(eval_steps):
        writer = FileWriter(trial_dir=str(path), worker=WORKER, step=step, mode=modes.EVAL)
        for role, array in arrays.items():
            writer.write_tensor(tdata=array, tname=names[role], mode=modes.EVAL, mode_step=step)
        writer.close()
    manager.export(str(path), f"{WORKER}_collections.json")
    if end:
        (path / "training_job_end.ts").write_text("0")
    return path
