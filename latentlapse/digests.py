"""Digests of the probe tensors as the trainer's hook wrote them, checked by the reporter.

smdebug stores no checksum of a tensor's payload (only of each record's length), so bytes changed
inside an event file, or a step mixed up with another, would read back as data. At every EVAL
step it saves, the trainer writes one small JSON file beside the store (see
:data:`latentlapse.contract.DIGEST_DIR`) with a SHA-256 of each tensor's bytes, its shape and its
dtype; the reporter recomputes them from what smdebug returns.

Standard library only: the arrays are anything with ``dtype.str``, ``shape`` and the buffer
protocol (numpy arrays, here).
"""

from __future__ import annotations

import hashlib

ALGORITHM = "sha256"
DIGEST_FORMAT = 1


def digest_file(folder: str, step: int) -> str:
    """The digest file of EVAL step ``step`` inside the store's digest ``folder`` (a relative path)."""
    return f"{folder}/eval-{int(step):012d}.json"


def tensor_digest(array) -> dict:
    """``{"dtype", "shape", "sha256"}`` of one array; the hash covers dtype and shape too."""
    # C order, so a transposed view of the same values hashes like the array smdebug writes.
    data = memoryview(array) if array.flags.c_contiguous else array.tobytes()
    h = hashlib.sha256(f"{array.dtype.str}{list(array.shape)}".encode("ascii"))
    h.update(data)
    return {"dtype": array.dtype.str, "shape": [int(n) for n in array.shape], ALGORITHM: h.hexdigest()}


def step_digests(mode: str, step: int, tensors: dict) -> dict:
    """The JSON object written for one step: ``tensors`` maps names to :func:`tensor_digest` records."""
    return {"format": DIGEST_FORMAT, "algorithm": ALGORITHM, "mode": mode, "step": int(step),
            "tensors": dict(sorted(tensors.items()))}


def mismatch(name: str, expected: dict | None, array) -> str | None:
    """How ``array`` (tensor ``name`` as read) differs from the trainer's record; None if it matches."""
    if expected is None:
        return f"{name}: the trainer recorded no digest of it"
    found = tensor_digest(array)
    if found["shape"] != expected.get("shape"):
        return f"{name}: shape {tuple(found['shape'])}, the trainer wrote {tuple(expected.get('shape') or ())}"
    if found["dtype"] != expected.get("dtype"):
        return f"{name}: dtype {found['dtype']}, the trainer wrote {expected.get('dtype')}"
    if found[ALGORITHM] != expected.get(ALGORITHM):
        return f"{name}: its bytes differ ({ALGORITHM} {found[ALGORITHM][:12]}…, the trainer's {str(expected.get(ALGORITHM))[:12]}…)"
    return None
