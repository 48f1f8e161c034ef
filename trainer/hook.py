"""The smdebug hook: which tensors are saved, and when.

Imported by the SageMaker launcher too (for the same collection and intervals), so this module
imports smdebug lazily and holds its constants at the top.
"""

from __future__ import annotations

import os
from pathlib import Path

from latentlapse.contract import ROLES

COLLECTION = "latentlapse"
# The probe images are the same at every EVAL step: saved at the first one only, which halves
# the bytes of a frame (the reporter takes them from there; older stores saved them every step).
PROBE_IMAGES_COLLECTION = "latentlapse_probe_images"

# The tensors a frame needs, by the same anchored regexes the reporter looks them up with
# (latentlapse.contract); the probe images have a collection of their own.
INCLUDE_REGEX = [r.pattern for r in ROLES if r.each_step]
PROBE_IMAGES_REGEX = [r.pattern for r in ROLES if not r.each_step]

# Every EVAL step is one forward call over the whole probe set: save each (one EVAL step = one frame).
EVAL_SAVE_INTERVAL = 1
DEFAULT_TRAIN_SAVE_INTERVAL = 10
MODES = ("train", "eval", "predict", "global")


def collections(train_save_interval: int = DEFAULT_TRAIN_SAVE_INTERVAL) -> dict:
    """What the hook saves: collection name -> (regexes, {mode: smdebug save-config settings}).

    The one description of both the local hook and a SageMaker job's hook config (which spells
    a setting ``eval.end_step``). ``end_step`` 1 saves only the mode's step 0.
    """
    train = {"save_interval": train_save_interval}
    every_eval = {"save_interval": EVAL_SAVE_INTERVAL}
    first_eval = {"save_interval": EVAL_SAVE_INTERVAL, "end_step": 1}
    return {
        COLLECTION: (INCLUDE_REGEX, {"train": train, "eval": every_eval, "predict": every_eval,
                                     "global": train}),
        PROBE_IMAGES_COLLECTION: (PROBE_IMAGES_REGEX, {"train": train, "eval": first_eval,
                                                       "predict": first_eval, "global": train}),
    }


def spelled_for_sagemaker(per_mode: dict) -> dict[str, str]:
    """{mode: settings} as SageMaker's hook and collection parameters spell it: {"eval.end_step": "1"}."""
    return {f"{mode}.{key}": str(value) for mode, settings in per_mode.items() for key, value in settings.items()}


def sagemaker_config_path() -> Path | None:
    """The hook config SageMaker writes into a training job, if this process runs in one."""
    from smdebug.core.config_constants import CONFIG_FILE_PATH_ENV_STR, DEFAULT_CONFIG_FILE_PATH

    path = Path(os.environ.get(CONFIG_FILE_PATH_ENV_STR, DEFAULT_CONFIG_FILE_PATH))
    return path if path.is_file() else None


def create_hook(out_dir: str, train_save_interval: int = DEFAULT_TRAIN_SAVE_INTERVAL):
    """A smdebug MXNet hook saving :func:`collections`: TRAIN every ``train_save_interval`` steps,
    every EVAL step, the probe images at the first EVAL step.

    Inside a SageMaker training job the hook comes from the job's JSON config instead, so the
    collections and intervals chosen at launch win (the launcher passes the same ones).
    """
    from smdebug.core.save_config import SaveConfigMode
    from smdebug.mxnet import SaveConfig, modes

    from trainer.digests import digesting_hook

    Hook = digesting_hook()  # smdebug's hook, also keeping each EVAL tensor's digest
    if sagemaker_config_path() is not None:
        return Hook.create_from_json_file()
    mode_keys = {"train": modes.TRAIN, "eval": modes.EVAL, "predict": modes.PREDICT, "global": modes.GLOBAL}
    declared = collections(train_save_interval)
    base = declared[COLLECTION][1]
    hook = Hook(out_dir=out_dir, include_collections=list(declared),
                save_config=SaveConfig(mode_save_configs={mode_keys[m]: SaveConfigMode(**base[m]) for m in MODES}))
    for name, (regexes, per_mode) in declared.items():
        collection = hook.get_collection(name)
        collection.include(regexes)
        collection.save_config = {mode_keys[m]: SaveConfigMode(**per_mode[m]) for m in MODES}
    return hook
