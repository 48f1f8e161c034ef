"""The tensor store's contract: what the trainer writes and the reporter reads.

Both sides import these names; nothing here is written anywhere else.
"""

from __future__ import annotations

# The trainer's run metadata beside the tensors (rewritten atomically at every EVAL step).
RUN_FILE = "latentlapse-run.json"
# The run file's format; a reader refuses nothing newer silently, it only reads known keys.
RUN_FORMAT = 1
# smdebug writes this when training ends; the reporter finishes its last frame after it.
END_MARKER = "training_job_end.ts"
# One file of tensor digests per EVAL step (latentlapse/digests.py), named in the run file's "digests".
DIGEST_DIR = "latentlapse-digests"
# What smdebug (and we) write into a tensor store; --overwrite deletes these and nothing else.
RUN_ENTRIES = ("index", "events", "collections", END_MARKER, "framework", RUN_FILE, DIGEST_DIR)

# The tensors a frame needs, by role, as the trainer's hook names them (mxnet 1.9.1, smdebug
# 1.0.34). Anchored at both ends: smdebug's include regexes match anywhere in a name
# (re.search) and the reporter's match whole names, so one anchored form means the same to both.
# The bottleneck is anchored on the block path: ".*dense0_output_0" also matches the decoder's
# first Dense layer.
TENSOR_NAMES = {
    "latent": r"^convolutionalautoencoder\d+_hybridsequential0_dense0_output_0$",  # (N, 20)
    "labels": r"^convolutionalautoencoder\d+_input_1$",    # the network's second input
    "inputs": r"^convolutionalautoencoder\d+_input_0$",    # images (N, 1, 28, 28)
    "recon": r"^l2loss\d+_input_0$",                       # reconstructions
    "loss": r"^l2loss\d+_output_0$",                       # per-sample loss (N,)
}
