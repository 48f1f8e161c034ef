"""Which tensor takes which role; when a regex matches nothing the message names the likely tensors."""

from __future__ import annotations

import pytest

from reporter import ReporterError
from reporter.trial.roles import resolve, suggest
from reporter.trial.store import DEFAULT_NAMES

# The inventory of the MLP trial (tests/trials/mxnet_trials.py mlp-flat): its own block names.
MLP = [
    {"name": "flat_loss_input_0", "shape": [100, 64]},
    {"name": "flat_loss_output_0", "shape": [100]},
    {"name": "flatmlp_encoder_output_0", "shape": [100, 8]},
    {"name": "flatmlp_input_0", "shape": [100, 64]},
    {"name": "flatmlp_input_1", "shape": [100]},
]


def test_defaults_that_match_nothing_leave_optional_roles_out_with_a_suggestion():
    roles = resolve({**DEFAULT_NAMES, "latent": "encoder_output"}, DEFAULT_NAMES, MLP)
    assert roles.names == {"latent": "flatmlp_encoder_output_0", "labels": None, "inputs": None,
                           "recon": None, "loss": None}
    assert "flatmlp_input_1" in roles.notes["labels"] and "--labels-regex" in roles.notes["labels"]
    assert "flat_loss_output_0" in roles.notes["loss"]


def test_latent_matching_nothing_names_the_likely_tensor_and_the_option():
    with pytest.raises(ReporterError) as info:
        resolve(DEFAULT_NAMES, DEFAULT_NAMES, MLP)
    message = str(info.value)
    assert "most likely flatmlp_encoder_output_0" in message
    assert "--latent-regex '^flatmlp_encoder_output_0$'" in message and "\n" not in message


def test_a_user_regex_must_match_and_none_switches_a_role_off():
    with pytest.raises(ReporterError, match="--labels-regex 'targets' matches no tensor.*flatmlp_input_1"):
        resolve({**DEFAULT_NAMES, "latent": "encoder", "labels": "targets"}, DEFAULT_NAMES, MLP)
    roles = resolve({**DEFAULT_NAMES, "latent": "encoder", "loss": "none"}, DEFAULT_NAMES, MLP)
    assert roles.names["loss"] is None and "switched off" in roles.notes["loss"]
    with pytest.raises(ReporterError, match="cannot be 'none'"):
        resolve({**DEFAULT_NAMES, "latent": "none"}, DEFAULT_NAMES, MLP)


def test_a_regex_matching_two_tensors_is_refused():
    with pytest.raises(ReporterError, match=r"--inputs-regex 'input_0' matches 2 tensors \(flat_loss_input_0, "
                                            r"flatmlp_input_0\)"):
        resolve({**DEFAULT_NAMES, "latent": "encoder", "inputs": "input_0"}, DEFAULT_NAMES, MLP)


def test_suggestions_follow_the_shapes():
    assert suggest("latent", MLP)[0] == "flatmlp_encoder_output_0"
    assert suggest("labels", MLP)[0] == "flatmlp_input_1"
    assert suggest("loss", MLP)[0] == "flat_loss_output_0"
    assert set(suggest("inputs", MLP)) == {"flatmlp_input_0", "flat_loss_input_0"}
    assert "flatmlp_input_0" not in suggest("recon", MLP, exclude={"flatmlp_input_0"})
