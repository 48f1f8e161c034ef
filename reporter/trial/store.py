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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentlapse.contract import RUN_FILE, STEP_ROLES, RunInfo
from latentlapse.contract import TENSOR_NAMES as DEFAULT_NAMES  # by role; the trainer's hook saves these
from latentlapse.s3 import is_s3
from reporter import ReporterError
from reporter.trial.integrity import DigestCheck, StepDamaged
from reporter.trial.modes import FrameSource
from reporter.trial.roles import ROLES, probe_arrays, resolve

log = logging.getLogger("reporter.trial.store")



@dataclass
class ProbeStep:
    """What one step of the frames' mode (EVAL by default) holds for its points (one frame)."""

    step: int                       # step of the frames' mode
    global_step: int
    latents: np.ndarray             # (N, D): the latent tensor flattened per point
    labels: np.ndarray | None       # (N,) int classes, None for a trial without labels
    inputs: np.ndarray | None       # as saved: (N, H, W), (N, C, H, W), (N, H, W, C), (N, D), ...; None if absent
    reconstructions: np.ndarray | None
    losses: np.ndarray | None       # (N,) per-sample, if a loss tensor was found
    train_losses: list = field(default_factory=list)  # [(global_step, mean loss)] since the last frame
    label_form: str | None = None   # how the labels tensor was read (reporter.trial.labels.Classes.form)
    checked: bool = False           # every tensor matched the trainer's digests (False: the store has none)


class StepUnreadable(Exception):
    """A complete step whose tensors could not be read after every retry (corrupted or truncated).

    ``reason`` says why in words a person understands; ``step`` is the EVAL step.
    """

    def __init__(self, step: int, reason: str):
        super().__init__(f"EVAL step {step}: {reason}")
        self.step, self.reason = step, reason


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

    def __init__(self, path: str, names: dict | None = None, retries: int = 5, retry_delay: float = 1.0,
                 mode: str | None = None, worker: str | None = None):
        self.path = str(path).rstrip("/") if is_s3(path) else str(path)
        self.patterns = {**DEFAULT_NAMES, **(names or {})}
        self.retries = retries
        self.retry_delay = retry_delay
        self.trial = None
        self.names: dict[str, str | None] = {}
        self._images: tuple[int, np.ndarray] | None = None  # (EVAL step, probe images saved there)
        self.roles = None  # reporter.trial.roles.Roles, once resolved
        self.frames = FrameSource(mode, worker)
        self.digests = DigestCheck(self.path)

    # -- opening -------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the trainer has written its collections yet (smdebug blocks without them)."""
        if is_s3(self.path):
            from reporter.trial import s3

            return s3.has_collections(self.path)
        return bool(glob.glob(os.path.join(self.path, "collections", "*", "*.json")))

    def open(self, timeout: float, poll: float = 1.0, on_wait=None) -> None:
        """Wait up to ``timeout`` seconds for a trial at the path, then open it."""
        _smdebug_quiet()
        if is_s3(self.path):
            from reporter.trial import s3

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
        """Match each role's regex to one tensor (see reporter/trial/roles.py); {} while nothing is saved yet."""
        if not list(self.trial.tensor_names()):
            return {}  # nothing saved yet: the caller waits and asks again
        self.frames.check_worker(self._retry(lambda: self.trial.workers(), default=[]))
        self.roles = resolve(self.patterns, DEFAULT_NAMES, self.inventory())
        self.names = dict(self.roles.names)
        return self.names

    # -- what is there -------------------------------------------------------------------------

    def eval_steps(self) -> list[int]:
        """Complete steps of the frames' mode (EVAL unless --mode says otherwise; see FrameSource)."""
        mode = self.frames.mode_of(self)
        if mode is None:
            return []
        return self._retry(lambda: list(self.trial.steps(mode=mode)), default=[])

    def mode_steps(self, mode) -> list[int]:
        """Complete steps of one smdebug mode."""
        return self._retry(lambda: list(self.trial.steps(mode=mode)), default=[])

    def all_steps(self) -> list[int]:
        return self._retry(lambda: list(self.trial.steps()), default=[])

    def training_ended(self) -> bool:
        from smdebug.core.access_layer.utils import has_training_ended

        return bool(self._retry(lambda: has_training_ended(self.path), default=False))

    def listing_problem(self) -> str | None:
        """Why the store cannot be listed now, in one line with the fix; None if it can.

        smdebug answers a failed listing with an empty one, so a store that cannot be listed
        looks like one whose trainer stopped writing: ask before saying so.
        """
        if is_s3(self.path):
            from reporter.trial import s3

            problem = s3.listing_problem(self.path)
            return None if problem is None else f"cannot list the tensor store {self.path}: {problem}"
        try:
            os.listdir(self.path)
        except OSError as exc:
            return f"cannot list the tensor store {self.path} ({exc.strerror}): check that the folder is there and readable"
        return None

    def run_info(self) -> RunInfo | None:
        """The trainer's ``latentlapse-run.json``, or None (another trainer, or not written yet)."""
        if is_s3(self.path):
            from reporter.trial import s3

            info = s3.read_json(self.path + "/" + RUN_FILE)
        else:
            try:
                info = json.loads(Path(self.path, RUN_FILE).read_text())
            except (OSError, ValueError):
                info = None
        run = RunInfo.from_json(info)
        self.digests.follow_run_info(run)
        return run

    # -- reading one frame ---------------------------------------------------------------------

    def read_probe_step(self, step: int, since_global_step: int | None) -> ProbeStep:
        """Read the points of one step of the frames' mode, and the TRAIN losses saved since the last frame.

        Raises StepUnreadable when the step stays unreadable after every retry, ReporterError
        when the tensors do not fit together (see reporter.trial.roles.probe_arrays).
        """
        from smdebug import modes

        # Decided by eval_steps() in the loop; a caller that names a step directly means EVAL by default.
        mode, worker = self.frames.mode_of(self) or modes.EVAL, self.frames.worker
        self.frames.mode = mode

        def read():
            values = {}
            for role in STEP_ROLES:
                name = self.names.get(role)
                values[role] = None if name is None else np.asarray(
                    self.trial.tensor(name).value(step, mode=mode, worker=worker))
            values["inputs"] = self._probe_images(step) if self.names.get("inputs") else None
            # The trainer digests what it writes at EVAL steps (one worker): check those.
            values["checked"] = mode == modes.EVAL and self.digests.check(step, {
                self.names[role]: values[role] for role in STEP_ROLES
                if values[role] is not None})
            return values

        values = self._retry(read, unreadable=step, diagnose=lambda error: self.damage(step, mode, error))
        global_step = int(self.trial.global_step(mode, step))
        arrays = probe_arrays(values, self.names, where=f"{mode.name} step {step}")
        return ProbeStep(step, global_step, arrays["latent"], arrays["labels"], arrays["inputs"],
                         arrays["recon"], arrays["loss"], self.train_losses(since_global_step, global_step),
                         label_form=arrays["label_form"], checked=values["checked"])

    def global_step_of(self, step: int) -> int | None:
        """The global step of EVAL step ``step``, None if smdebug cannot tell."""
        from smdebug import modes

        return self._retry(lambda: int(self.trial.global_step(self.frames.mode or modes.EVAL, step)), default=None)

    def _probe_images(self, step: int) -> np.ndarray:
        """The probe images of step ``step`` (frames' mode): saved at that step, or else at the latest before it.

        Our trainer saves them once, at the first EVAL step (they never change); older stores and
        other trainers save them at every step. The last images read are kept, not read again.
        """
        from smdebug import modes
        from smdebug.exceptions import TensorUnavailableForStep

        mode, worker = self.frames.mode, self.frames.worker
        name = self.names["inputs"]
        tensor = self.trial.tensor(name)
        saved = [s for s in tensor.steps(mode=mode) if s <= step]
        # TRAIN batches differ at every step: only that step's own images are its images.
        if self.frames.independent:
            saved = [s for s in saved if s == step]
        if not saved:
            raise TensorUnavailableForStep(name, step, mode)
        source = max(saved)
        if self._images is None or self._images[0] != source:
            images = np.asarray(tensor.value(source, mode=mode, worker=worker))
            if mode == modes.EVAL:  # against the digests of the step that saved them
                self.digests.check(source, {name: images})
            self._images = (source, images)
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
               roles=ROLES) -> str | None:
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
            except StepDamaged as exc:  # not what the trainer wrote: perhaps still being written, so retried
                last, reason = exc, str(exc)
            except transient as exc:
                last, reason = exc, None
            except Exception as exc:
                found = diagnose(exc) if diagnose is not None else None
                if found is None:
                    # smdebug raises its own error for a listing S3 refuses (AccessDenied): say so.
                    problem = self.listing_problem() if type(exc).__module__.startswith("smdebug") else None
                    if problem is not None:
                        raise ReporterError(problem) from None
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
        from reporter.trial import s3

        return s3.object_size(path)
    try:
        return os.path.getsize(path)
    except OSError:
        return None
