"""The tensor store's contract: what the trainer writes and the reporter reads.

Both sides import these names; nothing here is written anywhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

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


@dataclass
class RunInfo:
    """The run file (``RUN_FILE``): what the trainer says about its run, beside the tensors.

    The trainer writes it with :meth:`to_json` at the start, at every EVAL step and at the end;
    the reporter reads it with :meth:`from_json`. Reading is lenient, as for any file another
    process writes: a key of the wrong type reads as absent, and keys this version does not know
    are kept in ``extra`` (so the site's redacted copy still holds them).
    """

    format: int = RUN_FORMAT
    dataset: Optional[str] = None            # "mnist", "fashion-mnist"
    class_names: List[str] = field(default_factory=list)
    probe_size: Optional[int] = None         # images in the probe set
    probe_indices_sha: Optional[str] = None  # which images (the same in every frame)
    parameters: Optional[int] = None         # the model's parameter count
    config: Dict[str, Any] = field(default_factory=dict)  # the trainer's options
    steps: Optional[int] = None              # train steps of the whole run
    eval_steps: List[int] = field(default_factory=list)   # the train step of each EVAL pass
    expected_frames: Optional[int] = None    # EVAL passes of the whole run
    versions: Dict[str, Any] = field(default_factory=dict)
    data_source: Optional[str] = None
    digests: Optional[str] = None            # the folder of tensor digests (DIGEST_DIR)
    last_layer_kernel: Optional[str] = None
    started: Optional[str] = None            # ISO-8601 UTC
    progress: Dict[str, Any] = field(default_factory=dict)  # step, images_per_second, eval_loss, updated
    finished: Optional[str] = None           # ISO-8601 UTC; None while it trains
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any) -> Optional["RunInfo"]:
        """The run file parsed from ``obj`` (its JSON), None when ``obj`` is not a JSON object."""
        if isinstance(obj, RunInfo):
            return obj
        if not isinstance(obj, dict):
            return None
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        values: Dict[str, Any] = {}
        for key, value in obj.items():
            if key in known and _fits(value, _RUN_TYPES[key]):
                values[key] = value
        extra = {k: v for k, v in obj.items() if k not in known}
        return cls(**values, extra=extra)

    def to_json(self) -> Dict[str, Any]:
        """The run file's JSON object (known keys, then the unknown ones read with it)."""
        obj = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        obj.update(self.extra)
        return obj

    @property
    def total_steps(self) -> Optional[int]:
        """Train steps of the whole run (``steps``, else the trainer's option); None when not known."""
        for value in (self.steps, self.config.get("steps")):
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def eval_train_step(self, eval_step: int) -> Optional[int]:
        """The train step of EVAL pass ``eval_step`` by the trainer's own account, None if not listed."""
        if 0 <= eval_step < len(self.eval_steps) and isinstance(self.eval_steps[eval_step], int):
            return int(self.eval_steps[eval_step])
        return None


# What each key of the run file must hold to be read (else it reads as absent).
_RUN_TYPES = {
    "format": int, "dataset": str, "class_names": list, "probe_size": int, "probe_indices_sha": str,
    "parameters": int, "config": dict, "steps": int, "eval_steps": list, "expected_frames": int,
    "versions": dict, "data_source": str, "digests": str, "last_layer_kernel": str, "started": str,
    "progress": dict, "finished": str,
}


def _fits(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def read_run_file(text: str) -> Optional[RunInfo]:
    """The run file from its text; None when it is not JSON or not a JSON object (a half-written or foreign file)."""
    try:
        return RunInfo.from_json(json.loads(text))
    except ValueError:
        return None
