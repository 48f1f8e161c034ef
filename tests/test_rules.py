"""The alert rules, one behaviour per test, on frame records shaped like state.json's."""

import math

import numpy as np
import pytest

from reporter import ReporterError
from reporter.rules import dead_units, evaluate, frame_train_losses


def frames_from(eval_losses, train_losses=None, every=25, **extra):
    """Frame records with an EVAL pass every ``every`` train steps, as the trainer makes them.

    smdebug's global step counts the EVAL passes too: EVAL step i is at global step i * (every + 1).
    """
    out = []
    for i, e in enumerate(eval_losses):
        f = {"index": i, "step": i, "global_step": i * (every + 1), "eval_loss": e, "nonfinite": False}
        f["train_loss"] = None if train_losses is None else train_losses[i]
        f.update(extra)
        out.append(f)
    return out


def rules_fired(alerts):
    return [a["rule"] for a in alerts]


def test_healthy_run_fires_nothing():
    losses = [0.1 * 0.9**i for i in range(12)]
    assert evaluate(frames_from(losses, [v * 1.05 for v in losses])) == []


def test_no_frames_no_alerts():
    assert evaluate([]) == []


def test_plateau_fires_loss_not_decreasing_at_the_frame_it_started():
    # Falls for 4 frames, then flat: with window 3 the first frame that has seen 3 flat frames
    # after the reference is index 3 + 3 = 6.
    losses = [0.10, 0.08, 0.06, 0.05] + [0.05] * 6
    alerts = evaluate(frames_from(losses), window=3)
    assert rules_fired(alerts) == ["loss_not_decreasing"]
    (alert,) = alerts
    assert (alert["train_step"], alert["last_train_step"]) == (6 * 25, 9 * 25)
    assert (alert["step"], alert["last_step"]) == (6 * 26, 9 * 26)  # the global steps stay in the data
    assert alert["active"] is True
    assert "not improved" in alert["message"] and "since step 75 (" in alert["message"]


def test_plateau_that_ended_is_reported_as_past():
    losses = [0.05] * 6 + [0.04, 0.03, 0.02]
    (alert,) = evaluate(frames_from(losses), window=3)
    assert alert["rule"] == "loss_not_decreasing"
    assert alert["train_step"] == 3 * 25 and alert["last_train_step"] == 5 * 25
    assert alert["active"] is False


def test_tiny_improvement_counts_as_flat():
    losses = [0.05 * (1 - 1e-5 * i) for i in range(8)]
    assert rules_fired(evaluate(frames_from(losses), window=3)) == ["loss_not_decreasing"]
    assert evaluate(frames_from(losses), window=3, min_improvement=1e-6) == []


def test_train_loss_used_when_there_is_no_eval_loss():
    train = [0.05] * 8
    alerts = evaluate(frames_from([None] * 8, train), window=3)
    assert rules_fired(alerts) == ["loss_not_decreasing"]
    assert "train loss" in alerts[0]["message"]


def test_eval_rising_while_train_falls_fires_overfitting():
    evals = [0.10, 0.08, 0.06, 0.05, 0.052, 0.055, 0.058, 0.062]
    trains = [0.10, 0.08, 0.06, 0.05, 0.045, 0.040, 0.035, 0.030]
    alerts = evaluate(frames_from(evals, trains), window=4)
    over = [a for a in alerts if a["rule"] == "overfitting"]
    assert len(over) == 1
    # The 4-frame fit first slopes up at frame 6 (frames 3-6: 0.05, 0.052, 0.055, 0.058).
    assert over[0]["train_step"] == 6 * 25
    assert over[0]["active"] is True
    assert "overfitting" in over[0]["message"]


def test_both_losses_rising_is_not_overfitting():
    evals = [0.05, 0.052, 0.055, 0.058, 0.062, 0.066]
    assert "overfitting" not in rules_fired(evaluate(frames_from(evals, evals), window=4))


def test_train_loss_per_frame_from_batch_losses():
    frames = frames_from([0.1, 0.09, 0.08])
    frames[1]["train_losses"] = [[10, 0.2], [20, 0.1]]
    frames[2]["train_losses"] = [[10, 0.2], [20, 0.1], [30, 0.06], [40, 0.04]]  # cumulative
    assert frame_train_losses(frames) == [None, pytest.approx(0.15), pytest.approx(0.05)]


def test_nonfinite_flag_fires_at_its_step():
    frames = frames_from([0.1, 0.09, 0.08, 0.07])
    frames[2]["nonfinite"] = True
    (alert,) = evaluate(frames)
    assert alert["rule"] == "nonfinite"
    assert alert["train_step"] == 50 and alert["active"] is False


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_loss_fires_even_without_the_flag(bad):
    frames = frames_from([0.1, 0.09, bad, bad])
    alerts = evaluate(frames)
    assert rules_fired(alerts) == ["nonfinite"]
    assert alerts[0]["train_step"] == 50 and alerts[0]["last_train_step"] == 75
    assert "from step 50 to step 75" in alerts[0]["message"]


def test_nonfinite_batch_loss_fires():
    frames = frames_from([0.1, 0.09])
    frames[1]["train_losses"] = [[30, 0.05], [40, math.nan]]
    assert rules_fired(evaluate(frames)) == ["nonfinite"]


def test_nonfinite_latents_fire_at_the_latest_frame():
    latents = np.ones((10, 20))
    latents[3, 4] = np.nan
    (alert,) = evaluate(frames_from([0.1, 0.09]), latents_last=latents)
    assert alert["rule"] == "nonfinite" and alert["train_step"] == 25


def test_dead_units_finds_columns_that_are_all_zero():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(100, 20))
    z[:, [3, 17]] = 0.0
    z[:50, 5] = 0.0  # zero for half the probe set only: alive
    assert dead_units(z) == [3, 17]
    z[:, 8] = 1e-9
    assert dead_units(z) == [3, 17]
    assert dead_units(z, atol=1e-6) == [3, 8, 17]


def test_dead_units_rejects_a_wrong_shape():
    with pytest.raises(ReporterError, match="latent-regex"):
        dead_units(np.zeros(20))


def test_dead_unit_alert_uses_the_history_for_its_step():
    frames = frames_from([0.1, 0.09, 0.08, 0.07])
    frames[1]["dead_units"] = [3]
    frames[2]["dead_units"] = [3, 7]
    z = np.random.default_rng(1).normal(size=(50, 20))
    z[:, [3, 7]] = 0
    (alert,) = evaluate(frames, latents_last=z)
    assert alert["rule"] == "dead_units"
    assert alert["train_step"] == 25  # unit 3 went dead at frame 1
    assert alert["units"] == [3, 7]
    assert "2 of 20 bottleneck unit(s) (3, 7)" in alert["message"] and "since step 25:" in alert["message"]


def test_units_that_came_back_to_life_do_not_fire():
    frames = frames_from([0.1, 0.09])
    frames[0]["dead_units"] = [3]
    z = np.random.default_rng(2).normal(size=(50, 20))
    assert evaluate(frames, latents_last=z) == []


def test_window_must_be_at_least_two():
    with pytest.raises(ReporterError, match="window"):
        evaluate(frames_from([0.1]), window=1)


def test_alerts_are_sorted_by_step():
    frames = frames_from([0.05] * 8)
    frames[1]["nonfinite"] = True
    alerts = evaluate(frames, window=3)
    assert [a["step"] for a in alerts] == sorted(a["step"] for a in alerts)
    assert rules_fired(alerts) == ["nonfinite", "loss_not_decreasing"]
