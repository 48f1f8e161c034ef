"""Reading a smdebug tensor store while the trainer is still writing it.

Everything smdebug raises while a run is being written (a step not yet complete, a tensor not yet
flushed, collection files not there yet) is waited out with a bound, never turned into a crash
and never into a silently skipped step.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentlapse.contract import RUN_FILE
from latentlapse.contract import TENSOR_NAMES as DEFAULT_NAMES  # by role; the trainer's hook saves these
from reporter import ReporterError

log = logging.getLogger("reporter.store")

REQUIRED = ("latent", "labels", "inputs", "recon")


@dataclass
class ProbeStep:
    """What one EVAL step holds for the probe set (one frame)."""

    step: int                       # EVAL-mode step
    global_step: int
    latents: np.ndarray             # (N, D)
    labels: np.ndarray              # (N,) int
    inputs: np.ndarray              # (N, 1, H, W) or (N, H, W)
    reconstructions: np.ndarray
    losses: np.ndarray | None       # (N,) per-sample, if a loss tensor was found
    train_losses: list = field(default_factory=list)  # [(global_step, mean loss)] since the last frame


class StepUnreadable(Exception):
    """A complete step whose tensors could not be read after every retry (corrupted or truncated).

    ``reason`` says why in words a person understands; ``step`` is the EVAL step.
    """

    def __init__(self, step: int, reason: str):
        super().__init__(f"EVAL step {step}: {reason}")
        self.step, self.reason = step, reason


class StepDamaged(Exception):
    """The files of a step are not what smdebug wrote (truncated, or not matching the trainer's digest)."""


def transient_errors() -> tuple[type[BaseException], ...]:
    """What a read of a store being written may raise and a later try may not: waited out, bounded.

    smdebug's "not there yet" errors, I/O errors, and S3 (botocore) errors. Anything else is a bug.
    """
    from smdebug.exceptions import (IndexReaderException, MissingCollectionFiles, StepNotYetAvailable,
                                    StepUnavailable, TensorUnavailable, TensorUnavailableForStep)

    errors: tuple[type[BaseException], ...] = (
        TensorUnavailableForStep, StepNotYetAvailable, StepUnavailable, TensorUnavailable,
        MissingCollectionFiles, IndexReaderException, OSError)
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # a local-only install
        return errors
    return errors + (BotoCoreError, ClientError)


def is_s3(path: str) -> bool:
    return str(path).startswith("s3://")


def _smdebug_quiet() -> None:
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")
    logging.getLogger("smdebug").setLevel(logging.WARNING)


class TensorStore:
    """A smdebug trial that may still be growing, read with bounded retries.

    Parameters
    ----------
    path : str
        The trainer's ``--out``: a folder or ``s3://bucket/prefix``.
    names : dict
        Regexes for ``latent``, ``labels``, ``inputs``, ``recon`` and ``loss`` (see DEFAULT_NAMES).
    retries : int
        How many times a read of a listed step is tried before the step counts as unreadable.
    retry_delay : float
        Seconds between those tries.
    """

    def __init__(self, path: str, names: dict | None = None, retries: int = 5, retry_delay: float = 1.0):
        self.path = str(path).rstrip("/") if is_s3(path) else str(path)
        self.patterns = {**DEFAULT_NAMES, **(names or {})}
        self.retries = retries
        self.retry_delay = retry_delay
        self.trial = None
        self.names: dict[str, str | None] = {}
        self._images: tuple[int, np.ndarray] | None = None  # (EVAL step, probe images saved there)

    # -- opening -------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the trainer has written its collections yet (smdebug blocks without them)."""
        if is_s3(self.path):
            from reporter import s3

            return s3.has_collections(self.path)
        return bool(glob.glob(os.path.join(self.path, "collections", "*", "*.json")))

    def open(self, timeout: float, poll: float = 1.0, on_wait=None) -> None:
        """Wait up to ``timeout`` seconds for a trial at the path, then open it."""
        _smdebug_quiet()
        if is_s3(self.path):
            from reporter import s3

            s3.preflight(self.path)
            s3.patch_smdebug_s3()
        elif not os.path.isdir(self.path) and timeout <= 0:
            raise ReporterError(f"{self.path} does not exist: pass the trainer's --out folder to --tensors")
        deadline = time.monotonic() + timeout
        waited = False
        while not self.exists():
            if time.monotonic() >= deadline:
                raise ReporterError(
                    f"no smdebug trial at {self.path}" + (f" after waiting {timeout:.0f} s" if timeout else "")
                    + ": pass the trainer's --out to --tensors (and start the trainer)")
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        from smdebug.trials import create_trial

        self.trial = create_trial(self.path)

    def resolve_names(self) -> dict[str, str | None]:
        """Match each regex to exactly one tensor; say which names exist when one matches nothing."""
        available = sorted(self.trial.tensor_names())
        resolved = {}
        for role, pattern in self.patterns.items():
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                raise ReporterError(f"--{role}-regex {pattern!r} is not a valid regex ({exc})") from None
            hits = [n for n in available if regex.search(n)]
            if not hits and role in REQUIRED:
                if not available:
                    return {}  # nothing saved yet: the caller waits and asks again
                raise ReporterError(
                    f"--{role}-regex {pattern!r} matches no tensor; the trial has: {', '.join(available)}")
            if len(hits) > 1:
                raise ReporterError(
                    f"--{role}-regex {pattern!r} matches {len(hits)} tensors ({', '.join(hits)}): "
                    "make it match exactly one")
            resolved[role] = hits[0] if hits else None
        self.names = resolved
        return resolved

    # -- what is there -------------------------------------------------------------------------

    def eval_steps(self) -> list[int]:
        """EVAL steps that are complete (smdebug lists a step once all its files are written)."""
        from smdebug import modes

        return self._retry(lambda: list(self.trial.steps(mode=modes.EVAL)), default=[])

    def all_steps(self) -> list[int]:
        return self._retry(lambda: list(self.trial.steps()), default=[])

    def training_ended(self) -> bool:
        from smdebug.core.access_layer.utils import has_training_ended

        return bool(self._retry(lambda: has_training_ended(self.path), default=False))

    def run_info(self) -> dict | None:
        """The trainer's ``latentlapse-run.json``, or None (another trainer, or not written yet)."""
        if is_s3(self.path):
            from reporter import s3

            return s3.read_json(self.path + "/" + RUN_FILE)
        try:
            return json.loads(Path(self.path, RUN_FILE).read_text())
        except (OSError, ValueError):
            return None

    # -- reading one frame ---------------------------------------------------------------------

    def read_probe_step(self, step: int, since_global_step: int | None) -> ProbeStep:
        """Read the probe set of one EVAL step, and the TRAIN losses saved since the last frame.

        Raises StepUnreadable when the step stays unreadable after every retry.
        """
        from smdebug import modes

        def read():
            values = {}
            for role in ("latent", "labels", "recon", "loss"):
                name = self.names.get(role)
                values[role] = None if name is None else np.asarray(
                    self.trial.tensor(name).value(step, mode=modes.EVAL))
            values["inputs"] = self._probe_images(step)
            return values

        values = self._retry(read, unreadable=step, diagnose=lambda error: self.damage(step, modes.EVAL, error))
        global_step = int(self.trial.global_step(modes.EVAL, step))
        latents = values["latent"].reshape(values["latent"].shape[0], -1)
        labels = values["labels"].reshape(-1)
        n = latents.shape[0]
        for role in ("labels", "inputs", "recon"):
            if values[role].shape[0] != n:
                raise ReporterError(
                    f"EVAL step {step}: {self.names[role]} has {values[role].shape[0]} rows but the latents "
                    f"have {n}: check --{role}-regex")
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)) or labels.min() < 0:
            raise ReporterError(f"{self.names['labels']} does not hold class indices: check --labels-regex")
        losses = values["loss"].reshape(-1) if values["loss"] is not None else None
        return ProbeStep(step, global_step, latents, labels.astype(np.int64), values["inputs"],
                         values["recon"], losses, self.train_losses(since_global_step, global_step))

    def global_step_of(self, step: int) -> int | None:
        """The global step of EVAL step ``step``, None if smdebug cannot tell."""
        from smdebug import modes

        return self._retry(lambda: int(self.trial.global_step(modes.EVAL, step)), default=None)

    def _probe_images(self, step: int) -> np.ndarray:
        """The probe images of EVAL step ``step``: saved at that step, or else at the latest before it.

        Our trainer saves them once, at the first EVAL step (they never change); older stores and
        other trainers save them at every step. The last images read are kept, not read again.
        """
        from smdebug import modes
        from smdebug.exceptions import TensorUnavailableForStep

        name = self.names["inputs"]
        tensor = self.trial.tensor(name)
        saved = [s for s in tensor.steps(mode=modes.EVAL) if s <= step]
        if not saved:
            raise TensorUnavailableForStep(name, step, modes.EVAL)
        source = max(saved)
        if self._images is None or self._images[0] != source:
            self._images = (source, np.asarray(tensor.value(source, mode=modes.EVAL)))
        return self._images[1]

    def train_losses(self, after: int | None, upto: int) -> list[tuple[int, float]]:
        """Mean TRAIN loss of every saved TRAIN step with ``after < global step < upto``."""
        from smdebug import modes

        name = self.names.get("loss")
        if name is None:
            return []
        tensor = self.trial.tensor(name)
        result = []
        for step in self._retry(lambda: list(tensor.steps(mode=modes.TRAIN)), default=[]):
            g = int(self.trial.global_step(modes.TRAIN, step))
            if (after is None or g > after) and g < upto:
                value = self._retry(lambda: tensor.value(step, mode=modes.TRAIN), default=None,
                                    diagnose=lambda error: self.damage(step, modes.TRAIN, error,
                                                                        roles=("loss",)))
                if value is not None:
                    result.append((g, float(np.mean(value))))
        return result

    def inventory(self) -> list[dict]:
        """Every tensor with its shape (at its last step), modes and number of steps."""
        from smdebug import modes

        rows = []
        for name in sorted(self.trial.tensor_names()):
            tensor = self.trial.tensor(name)
            seen, shape, count = [], None, 0
            # GLOBAL lists the steps of every mode again: only count it for tensors saved without a mode.
            for mode in (modes.TRAIN, modes.EVAL, modes.PREDICT, modes.GLOBAL):
                if mode == modes.GLOBAL and seen:
                    break
                steps = self._retry(lambda: list(tensor.steps(mode=mode)), default=[])
                if steps:
                    seen.append(mode.name)
                    count += len(steps)
                    # The probe set's shape (EVAL) says more than a training batch's.
                    if shape is None or mode == modes.EVAL:
                        shape = self._retry(lambda: list(tensor.shape(steps[-1], mode=mode)), default=None)
            rows.append({"name": name, "shape": shape, "modes": seen, "steps": count})
        return rows

    # -- checking -----------------------------------------------------------------------------

    def damage(self, step: int, mode, error: Exception | None = None,
               roles=("latent", "labels", "inputs", "recon", "loss")) -> str | None:
        """Why the event files holding ``roles`` at ``step`` are damaged, in words; None if they look whole.

        smdebug's index says where each tensor's record starts and how long it is: an event file
        shorter than that was cut off (smdebug itself then fails with a bare IndexError). A
        record whose length checksum fails (``error``, from smdebug's reader) was overwritten.
        """
        from smdebug.exceptions import SMDebugRuntimeError

        if isinstance(error, SMDebugRuntimeError) and "crc" in str(error):
            return "event file damaged: a record's length checksum does not match its length"
        needed: dict[str, int] = {}
        for role in roles:
            name = self.names.get(role)
            if name is None:
                continue
            # The record's place in its event file, from smdebug's index (no public accessor).
            location = self.trial.tensor(name)._step(step, mode=mode).location
            if location is not None:
                end = int(location.start_idx) + int(location.length)
                needed[location.event_file_name] = max(end, needed.get(location.event_file_name, 0))
        for event_file, end in sorted(needed.items()):
            size = _size_of(event_file)
            if size is not None and size < end:
                return f"event file truncated: {size:,} of {end:,} bytes ({os.path.basename(event_file)})"
        return None

    # -- retrying ------------------------------------------------------------------------------

    def _retry(self, action, default=None, unreadable: int | None = None, diagnose=None):
        """Run ``action``; on a transient error (see :func:`transient_errors`) wait and try again.

        Any other error is a bug and propagates, unless ``diagnose(error)`` finds the step's files
        damaged: then it is retried like a transient one (a file may still be arriving). After the
        last try, raise StepUnreadable for ``unreadable`` (an EVAL step), else return ``default``.
        """
        transient = transient_errors()
        last, reason = None, None
        for attempt in range(self.retries):
            try:
                return action()
            except ReporterError:
                raise
            except transient as exc:
                last, reason = exc, None
            except Exception as exc:
                found = diagnose(exc) if diagnose is not None else None
                if found is None:
                    raise
                last, reason = exc, found
            if attempt + 1 < self.retries:
                time.sleep(self.retry_delay)
        if reason is None:
            reason = f"unreadable after {self.retries} tr{'ies' if self.retries != 1 else 'y'}: " \
                     f"{type(last).__name__}: {last}"
        if unreadable is not None:
            raise StepUnreadable(unreadable, reason)
        log.warning("gave up: %s", reason)
        return default


def _size_of(path: str) -> int | None:
    """The size in bytes of a local file or an S3 object; None if it cannot be told."""
    if is_s3(path):
        from reporter import s3

        return s3.object_size(path)
    try:
        return os.path.getsize(path)
    except OSError:
        return None
