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

@dataclass(frozen=True)
class Role:
    """One tensor a frame uses: its name in our trainer's store and how people call it.

    ``pattern`` is anchored at both ends: smdebug's include regexes match anywhere in a name
    (re.search) and the reporter's match whole names, so one anchored form means the same to both.
    """

    name: str          # the role: --<name>-regex, the key everywhere
    pattern: str       # the tensor our trainer's hook saves (mxnet 1.9.1, smdebug 1.0.34)
    words: str         # in a sentence: "the <words> are ..."
    noun: str          # short, in a caption: "inputs", "reconstructions"
    help: str          # --help of the --<name>-regex option
    hints: tuple       # name fragments that make another trainer's tensor a likelier candidate (lower-case)
    each_step: bool = True   # saved at every EVAL step (the probe images: once, they never change)
    required: bool = False   # the report cannot do without it


# The tensors a frame needs, in the order the reporter lists them. The bottleneck is anchored on
# the block path: ".*dense0_output_0" also matches the decoder's first Dense layer.
ROLES = (
    Role("latent", r"^convolutionalautoencoder\d+_hybridsequential0_dense0_output_0$",  # (N, 20)
         "latent vectors (the bottleneck)", "latents", "the bottleneck tensor",
         ("latent", "bottleneck", "encoder", "embed", "code", "z_", "mu"), required=True),
    Role("labels", r"^convolutionalautoencoder\d+_input_1$",  # the network's second input
         "class labels", "labels",
         "the labels tensor (integers, whole floats, one-hot or class scores; 'none': no labels)",
         ("label", "target", "class", "input_1", "_y")),
    Role("inputs", r"^convolutionalautoencoder\d+_input_0$",  # images (N, 1, 28, 28)
         "input images", "inputs", "the input images tensor ('none': no images)",
         ("input_0", "image", "_x", "data"), each_step=False),
    Role("recon", r"^l2loss\d+_input_0$",  # reconstructions
         "reconstructions", "reconstructions", "the reconstructions tensor ('none': no reconstructions)",
         ("recon", "decoder", "output", "loss_input_0", "l2loss")),
    Role("loss", r"^l2loss\d+_output_0$",  # per-sample loss (N,)
         "per-sample loss", "loss", "the per-sample loss tensor ('none': no loss)", ("loss",)),
)
ROLE = {r.name: r for r in ROLES}
# Regex by role, as the trainer's hook names the tensors.
TENSOR_NAMES = {r.name: r.pattern for r in ROLES}
# The roles read at every step (the probe images are read where they were saved).
STEP_ROLES = tuple(r.name for r in ROLES if r.each_step)


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
