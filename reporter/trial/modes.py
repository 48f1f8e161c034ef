"""Which steps make the frames: the smdebug mode (--mode) and, in a multi-worker trial, the worker (--worker).

EVAL is the default whenever the trial has EVAL steps: an EVAL pass over a fixed probe set shows
the same points at every step, so each frame is warm-started from the last and points move
instead of jumping. A trial without EVAL steps is read in the mode it has (PREDICT, then TRAIN)
once training has ended; while it runs, frames wait for an EVAL step unless --mode says otherwise.

TRAIN steps hold different batches (different points, often of a different size) at every
step. Warm-starting a frame from another set of points would be meaningless, so in TRAIN mode
each frame is embedded on its own (from scratch) and the site says so; frames then jump from
one to the next by design. (Refusing would leave self-supervised runs that save no evaluation
pass without any report.)

Data-parallel training writes one event file per worker per step; each worker saves its own
batch. The frames show one worker's points (the first in smdebug's sorted order unless
--worker names another), and the site says which.
"""

from __future__ import annotations

from reporter import ReporterError

MODES = ("eval", "train", "predict")


def parse_mode(text: str | None) -> str | None:
    """``--mode``: eval, train, predict (any case), or empty for the default; None for the default."""
    if text is None or str(text).strip() == "":
        return None
    mode = str(text).strip().lower()
    if mode not in MODES:
        raise ReporterError(f"--mode {text!r} is not one of {', '.join(MODES)}")
    return mode


class FrameSource:
    """The mode and worker whose steps become frames; decided once, then fixed for the report.

    Parameters
    ----------
    mode : str or None
        ``eval``, ``train`` or ``predict``; None chooses (see the module docstring).
    worker : str or None
        A worker name as smdebug lists it (``worker_0``, ...); None takes the first.
    """

    def __init__(self, mode: str | None = None, worker: str | None = None):
        self.requested = parse_mode(mode)
        self.requested_worker = worker or None
        self.mode = None       # smdebug ModeKeys, once decided
        self.worker = self.requested_worker
        self.workers: list[str] = []
        self.chosen_because = ""

    @property
    def independent(self) -> bool:
        """Whether each frame is embedded on its own: its points are not the last frame's."""
        return self.mode is not None and self.mode.name == "TRAIN"

    def check_worker(self, workers: list[str]) -> None:
        """Take the first worker, or check that --worker names one of the trial's."""
        self.workers = sorted(str(w) for w in workers)
        if self.requested_worker is None:
            self.worker = self.workers[0] if self.workers else None
        elif self.workers and self.requested_worker not in self.workers:
            raise ReporterError(f"--worker {self.requested_worker!r} is not in this trial: it has "
                                f"{', '.join(self.workers)}")

    def mode_of(self, store) -> object | None:
        """The smdebug mode of the frames, deciding it on first use; None while it cannot be decided yet."""
        if self.mode is not None:
            return self.mode
        from smdebug import modes

        if self.requested is not None:
            self.mode = getattr(modes, self.requested.upper())
            self.chosen_because = "--mode " + self.requested
            return self.mode
        if store.mode_steps(modes.EVAL):
            self.mode, self.chosen_because = modes.EVAL, "the trial has EVAL steps (the default)"
        elif store.training_ended():
            for candidate in (modes.PREDICT, modes.TRAIN):
                if store.mode_steps(candidate):
                    self.mode = candidate
                    self.chosen_because = f"the trial has no EVAL steps, but {candidate.name} steps"
                    break
        return self.mode

    def describe(self) -> dict:
        """What the site says about where the frames come from."""
        mode = self.mode.name if self.mode is not None else (self.requested or "eval").upper()
        facts = {"mode": mode, "mode_reason": self.chosen_because, "worker": self.worker,
                 "workers": list(self.workers), "independent": self.independent}
        if self.independent:
            facts["embedding_note"] = ("each frame is embedded on its own: TRAIN steps hold a different batch "
                                       "at every step, so a frame cannot start from the last one's layout and "
                                       "points jump between frames")
        return facts


def trial_facts(roles, source: FrameSource, pictures=(None, None), label_form: str | None = None) -> dict:
    """What ``state.json`` records (and the site shows) about where the frames come from.

    Parameters
    ----------
    roles : reporter.trial.roles.Roles
        The tensor of each role, and why absent roles are absent.
    source : FrameSource
        The mode and worker of the frames.
    pictures : (ImageView or None, ImageView or None)
        How the latest frame showed its inputs and reconstructions.
    label_form : str, optional
        How the labels tensor was read (reporter.trial.labels.Classes.form).
    """
    facts = {"roles": dict(roles.names), "role_notes": dict(roles.notes), **source.describe()}
    inputs, recon = pictures
    facts["inputs_note"] = inputs.note if inputs is not None else None
    facts["recon_note"] = recon.note if recon is not None else None
    facts["label_form"] = label_form
    facts["no_reconstructions"] = _why_no_grid(roles, inputs, recon)
    return facts


def _why_no_grid(roles, inputs, recon) -> str | None:
    """Why the site has no reconstruction grid, in words; None when it has one."""
    if roles.get("inputs") is None:
        return "the trial has no input images (" + roles.notes.get("inputs", "no --inputs-regex") + ")"
    if roles.get("recon") is None:
        return "the trial has no reconstructions (" + roles.notes.get("recon", "no --recon-regex") + ")"
    for view in (inputs, recon):
        if view is not None and not view.shown:
            return view.note
    return None


def site_notes(trial: dict) -> list[str]:
    """Sentences the site shows above the time-lapse: where the frames come from, what is missing and why."""
    if not trial:
        return []
    notes = []
    roles = trial.get("roles") or {}
    mode, worker, workers = trial.get("mode") or "EVAL", trial.get("worker"), trial.get("workers") or []
    if len(workers) > 1:
        notes.append(f"Frames show the {mode} steps of worker {worker}, one of {len(workers)} "
                     f"({', '.join(workers)}); pass --worker to see another.")
    elif mode != "EVAL":
        notes.append(f"Frames show {mode} steps ({trial.get('mode_reason') or '--mode'}).")
    if trial.get("embedding_note"):
        notes.append(trial["embedding_note"][0].upper() + trial["embedding_note"][1:] + ".")
    if roles and roles.get("labels") is None:
        notes.append("No labels (" + (trial.get("role_notes") or {}).get("labels", "none given")
                     + "): points are drawn in one colour, and the quality figures are the label-free ones: "
                     "trustworthiness and neighbourhood preservation between frames.")
    elif trial.get("label_form") and trial["label_form"] != "integers":
        notes.append(f"Labels ({roles.get('labels')}) read as {trial['label_form']}.")
    if roles and roles.get("inputs") is None:
        notes.append("No input images (" + (trial.get("role_notes") or {}).get("inputs", "none given")
                     + "): each frame is the embedding alone.")
    for key in ("inputs_note", "recon_note"):
        if trial.get(key):
            notes.append(trial[key][0].upper() + trial[key][1:] + ".")
    if roles and roles.get("loss") is None:
        notes.append("No loss tensor (" + (trial.get("role_notes") or {}).get("loss", "none given")
                     + "): the loss chart stays empty.")
    return notes


def role_rows(trial: dict) -> list[tuple[str, str]]:
    """(role, tensor) rows for the site's facts table; absent roles say "none"."""
    roles = trial.get("roles") or {}
    return [(f"{role} tensor", name or "none") for role, name in roles.items()]
