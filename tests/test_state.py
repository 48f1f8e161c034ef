"""state.json: one typed definition, read back exactly as the reporter wrote it; transient vs bug errors."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from reporter import ReporterError
from reporter.config import from_args
from reporter.pipeline import run
from reporter.state import FrameRecord, ReportState, SkippedStep
from reporter.trial.store import StepUnreadable, TensorStore
from trial_writer import probe_arrays, write_trial


def test_a_written_state_reads_back_to_the_same_json(tmp_path):
    trial = write_trial(tmp_path / "t", [probe_arrays(60, s) for s in range(2)])
    out = tmp_path / "site"
    assert run(from_args(["--tensors", str(trial), "--out", str(out)], environ={})) == 0
    written = json.loads((out / "state.json").read_text())
    state = ReportState.from_json(written)
    assert state.to_json() == written
    assert [f.step for f in state.frames] == [0, 1] and state.status == "finished" and state.reason is None
    assert set(written) == {f.name for f in fields(ReportState)}  # every key, and only what the type defines


def test_missing_keys_take_defaults_and_bad_parts_are_errors():
    state = ReportState.from_json({"status": "running", "frames": [{"index": 2, "step": 5}],
                                   "skipped": [{"step": 3, "reason": "why"}]})
    assert state.frames[0] == FrameRecord(index=2, step=5, global_step=5, png="frames/frame-0002.png",
                                          csv="frames/frame-0002.csv", npz="frames/frame-0002.npz")
    assert state.skipped == [SkippedStep(step=3, reason="why")]
    assert state.done_steps() == {3, 5} and state.gif is None and state.tensors_inventory == []
    with pytest.raises(ReporterError, match="frame must be a JSON object"):
        ReportState.from_json({"frames": ["frame-0000.png"]})


def test_retry_waits_out_io_errors_but_a_bug_propagates(tmp_path):
    store = TensorStore(str(tmp_path), retries=3, retry_delay=0)
    tries = []

    def flaky():
        tries.append(1)
        raise OSError("connection reset")

    assert store._retry(flaky, default="gave up") == "gave up" and len(tries) == 3
    with pytest.raises(StepUnreadable, match="EVAL step 7: unreadable after 3 tries: OSError: connection reset"):
        store._retry(flaky, unreadable=7)

    def bug():
        tries.append(1)
        return {}["latent"]

    tries.clear()
    with pytest.raises(KeyError):
        store._retry(bug, default=None)
    assert len(tries) == 1  # a bug is not retried


def test_the_site_shows_skipped_steps_and_the_reason_nothing_else_writes(tmp_path):
    from reporter.site.page import write_site
    from site_fixture import build_output

    state, run_meta = build_output(tmp_path, n_frames=3, n_probe=60)
    state["skipped"] = [{"step": 1, "global_step": 26, "position": 1,
                         "reason": "event file truncated: 1,234 of 5,678 bytes"}]
    state["status"], state["reason"] = "failed", "EVAL step 2 holds 50 probe points, earlier frames 60"
    write_site(tmp_path, state, run_meta)
    text = (tmp_path / "index.html").read_text()
    assert "1 step skipped" in text
    assert "EVAL step 1 (global step 26), after frame 1: event file truncated: 1,234 of 5,678 bytes" in text
    assert "EVAL step 2 holds 50 probe points, earlier frames 60" in text
