"""Training steps (what people count) from smdebug's steps, on a real trainer's store."""

from __future__ import annotations

from smdebug.core.modes import ModeKeys

from reporter.trial.steps import batch_steps, frame_train_step, step_text, total_steps, training_step
from reporter.trial.store import TensorStore


def test_the_run_file_says_the_training_step_of_each_eval_pass():
    run = {"steps": 937, "eval_steps": [0, 25, 50, 937]}
    assert training_step(3, 975, run) == 937 and total_steps(run) == 937
    assert step_text(training_step(3, 975, run), total_steps(run)) == "step 937 of 937"


def test_without_a_run_file_every_forward_call_that_was_not_an_eval_pass_was_a_train_step():
    # Another trainer (no run file): EVAL step 38 at global step 975 came after 38 EVAL passes.
    assert training_step(38, 975, None) == 937 and total_steps(None) is None
    assert step_text(training_step(38, 975, None), total_steps(None)) == "step 937"
    assert training_step(5, 105, {"eval_steps": [0, 20]}) == 100  # a run file that lacks the pass
    assert total_steps({"steps": "many"}) is None


def test_both_ways_agree_on_a_real_store(small_run):
    """smdebug's own numbering (real MXNet hook): 24 train steps, an EVAL pass every 10."""
    store = TensorStore(str(small_run))
    store.open(timeout=0)
    run = store.run_info()
    passes = [(k, store.trial.global_step(ModeKeys.EVAL, k)) for k in store.eval_steps()]
    assert [g for _, g in passes] == [0, 11, 22, 27]  # the global step counts EVAL passes too
    from_run_file = [training_step(k, g, run) for k, g in passes]
    from_global_steps = [training_step(k, g, None) for k, g in passes]
    assert from_run_file == from_global_steps == [0, 10, 20, 24] and total_steps(run) == 24



def test_train_batches_get_the_trainers_own_step_numbers_on_a_real_store(small_run):
    """TRAIN losses are kept at their global step; the charts draw them at the trainer's step."""
    store = TensorStore(str(small_run))
    store.open(timeout=0)
    run = store.run_info()
    frames = [{"step": k, "global_step": store.trial.global_step(ModeKeys.EVAL, k)} for k in store.eval_steps()]
    train = store.mode_steps(ModeKeys.TRAIN)
    assert len(train) >= 4  # saved every 5 train steps, across the EVAL passes
    globals_ = [store.trial.global_step(ModeKeys.TRAIN, s) for s in train]
    # smdebug counts TRAIN steps from 0; the trainer's step 1 is the first batch. Both anchors agree.
    expected = [s + 1 for s in train]
    assert [batch_steps(frames, run)(g) for g in globals_] == expected
    assert [batch_steps(frames)(g) for g in globals_] == expected
    # The batch of step 10 and the EVAL pass after it (the frame "step 10") share a place on the axis.
    assert frame_train_step(frames[1], run) == 10 and batch_steps(frames, run)(10) == 10


def test_a_batch_before_every_frame_counts_every_call_before_it():
    of = batch_steps([{"step": 0, "global_step": 40}, {"step": 1, "global_step": 51}])
    assert (of(0), of(39), of(45), of(60)) == (1, 40, 45, 59)
    assert frame_train_step({"step": 1, "global_step": 51}) == 50
    assert frame_train_step({"step": 1, "global_step": 51, "train_step": 7}) == 7  # the record's own
