"""Training steps, as people count them, from smdebug's steps.

smdebug numbers every forward call of the registered block: its global step counts EVAL passes
too (the last frame of a 937-step run with 39 EVAL passes is "global step 975"), and an EVAL
step's own number counts EVAL passes only. People mean the number of train steps done
("step 925 of 937"). The frames, the GIF, the figure and the site say that; the data files keep
the global step as well.
"""

from __future__ import annotations

import bisect

from latentlapse.contract import RunInfo


def training_step(eval_step: int, global_step: int, run_info: RunInfo | dict | None = None) -> int:
    """Train steps done when EVAL step ``eval_step`` (at ``global_step``) ran.

    Parameters
    ----------
    eval_step : int
        smdebug's EVAL-mode step: how many EVAL forward calls came before this one.
    global_step : int
        smdebug's global step of it: how many forward calls of any mode came before.
    run_info : RunInfo or its JSON, optional
        The trainer's run file. Its ``eval_steps`` (the train step of each EVAL pass) is the
        trainer's own account and is used when it covers this pass.

    Returns
    -------
    int
        From the run file when it has this pass; otherwise ``global_step - eval_step``: every
        forward call before this one that was not an EVAL pass was a train step (a trial
        from another trainer with only TRAIN and EVAL modes).
    """
    run = RunInfo.from_json(run_info)
    listed = run.eval_train_step(eval_step) if run is not None else None
    return listed if listed is not None else max(int(global_step) - int(eval_step), 0)


def total_steps(run_info: RunInfo | dict | None) -> int | None:
    """Train steps of the whole run from the trainer's run file (:attr:`RunInfo.total_steps`); None when not known."""
    run = RunInfo.from_json(run_info)
    return run.total_steps if run is not None else None


def step_text(step: int, total: int | None = None) -> str:
    """The training step as people say it: "step 925 of 937", or "step 925" without a total."""
    if total:
        return f"step {int(step):,} of {int(total):,}"
    return f"step {int(step):,}"


def frame_train_step(frame: dict, run_info: dict | None = None) -> int:
    """A frame record's training step: its ``train_step``, else derived from its EVAL and global steps.

    Records written before they held ``train_step`` (and test records) take the rule of
    :func:`training_step`.
    """
    if frame.get("train_step") is not None:
        return int(frame["train_step"])
    step = int(frame.get("step", frame.get("index", 0)) or 0)  # the defaults of FrameRecord.from_json
    return training_step(step, int(frame.get("global_step", step) or 0), run_info)


def batch_steps(frames: list[dict], run_info: dict | None = None):
    """A function from a TRAIN batch's global step (``train_losses`` points) to its training step.

    Every forward call between two EVAL passes is a train step, so a batch ``g - G`` calls after
    the last frame before it (global step ``G``) is training step ``frame_train_step + g - G``:
    the trainer's own number of that batch (its step 25 is the 25th batch; the EVAL pass after
    it is "step 25" too). A batch before every frame: all calls before it were train steps.
    An EVAL pass that has no frame between the two counts as a train step (one step late).

    Parameters
    ----------
    frames : list of dict
        Frame records (``step``, ``global_step``, optionally ``train_step``).
    run_info : dict, optional
        The trainer's run file, for the frames' training steps.
    """
    anchors = sorted((int(f["global_step"]), frame_train_step(f, run_info)) for f in frames
                     if f.get("global_step") is not None)
    globals_ = [g for g, _ in anchors]

    def of(global_step) -> int:
        g = int(global_step)
        i = bisect.bisect_left(globals_, g) - 1  # the last frame strictly before the batch
        if i < 0:
            return training_step(0, g) + 1
        return anchors[i][1] + g - anchors[i][0]

    return of
