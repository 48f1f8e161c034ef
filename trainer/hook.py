"""The smdebug hook: which tensors are saved, and when.

Imported by the SageMaker launcher too (for the same collection and intervals), so this module
imports smdebug lazily and holds its constants at the top.
"""

from __future__ import annotations

import os
from pathlib import Path

COLLECTION = "latentlapse"

# Anchored on the block path: a bare ".*dense0_output_0" would also catch the decoder's first Dense.
INCLUDE_REGEX = [
    r"convolutionalautoencoder\d+_hybridsequential0_dense0_output_0",  # bottleneck (N, 20)
    r"convolutionalautoencoder\d+_input_[01]",                          # images, labels
    r"l2loss\d+_input_0",                                               # reconstructions
    r"l2loss\d+_output_0",                                              # per-sample loss
]

# Every EVAL step is one forward call over the whole probe set: save each (one EVAL step = one frame).
EVAL_SAVE_INTERVAL = 1
DEFAULT_TRAIN_SAVE_INTERVAL = 10


def sagemaker_config_path() -> Path | None:
    """The hook config SageMaker writes into a training job, if this process runs in one."""
    from smdebug.core.config_constants import CONFIG_FILE_PATH_ENV_STR, DEFAULT_CONFIG_FILE_PATH

    path = Path(os.environ.get(CONFIG_FILE_PATH_ENV_STR, DEFAULT_CONFIG_FILE_PATH))
    return path if path.is_file() else None


def create_hook(out_dir: str, train_save_interval: int = DEFAULT_TRAIN_SAVE_INTERVAL):
    """A smdebug MXNet hook saving our collection: TRAIN every ``train_save_interval`` steps, EVAL always.

    Inside a SageMaker training job the hook comes from the job's JSON config instead, so the
    collections and intervals chosen at launch win (the launcher passes the same ones).
    """
    from smdebug.core.save_config import SaveConfigMode
    from smdebug.mxnet import Hook, SaveConfig, modes

    if sagemaker_config_path() is not None:
        return Hook.create_from_json_file()
    save_config = SaveConfig(mode_save_configs={
        modes.TRAIN: SaveConfigMode(save_interval=train_save_interval),
        modes.EVAL: SaveConfigMode(save_interval=EVAL_SAVE_INTERVAL),
        modes.PREDICT: SaveConfigMode(save_interval=EVAL_SAVE_INTERVAL),
        modes.GLOBAL: SaveConfigMode(save_interval=train_save_interval),
    })
    hook = Hook(out_dir=out_dir, save_config=save_config, include_collections=[COLLECTION])
    hook.get_collection(COLLECTION).include(INCLUDE_REGEX)
    return hook
