"""smdebug reading ``s3://`` stores: every step listed, every value the one written.

A real smdebug run (MXNet hook, 130 steps, a known loss per step) is written to a local folder,
uploaded as-is to SeaweedFS (what SageMaker does with a job's tensors too), and read back through
smdebug's own trial API after ``patch_smdebug_s3()``. smdebug's listings are compared with
moto's S3, whose listing follows S3's rules, to show the fix changes nothing there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s3server import upload_folder

pytestmark = pytest.mark.e2e  # a real S3 server, browser, training run or reporter process

pytest_plugins = ["s3server"]  # the s3_server and s3_env fixtures


STEPS = 130  # above smdebug's 100-object threshold, where it used to fork a process pool


def _losses(step: int) -> np.ndarray:
    # Distinct per step and per element, so a value from another step can never pass.
    return np.array([step + 0.125, step * 2 + 0.5, -step - 0.25], dtype=np.float32)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    """A real smdebug run written by the MXNet hook: tensor ``echo*_output_0`` = _losses(step)."""
    import mxnet as mx
    from smdebug.mxnet import Hook, SaveConfig

    class Echo(mx.gluon.Block):
        def forward(self, x):
            return x * 1

    out = tmp_path_factory.mktemp("smdebug-run") / "run"
    hook = Hook(out_dir=str(out), save_config=SaveConfig(save_interval=1),
                include_collections=["echo"])
    hook.get_collection("echo").include(r"echo\d+_output_0")
    block = Echo()
    hook.register_block(block)
    for step in range(STEPS):
        block(mx.nd.array(_losses(step)))
    hook.close()
    assert (out / "training_job_end.ts").exists()
    return out


def _read_all(url: str) -> dict[int, np.ndarray]:
    from smdebug.trials import create_trial

    trial = create_trial(url)
    assert trial.steps() == list(range(STEPS))
    assert trial.loaded_all_steps  # the end marker was seen
    names = trial.tensor_names(regex=r"echo\d+_output_0")
    assert len(names) == 1, names
    tensor = trial.tensor(names[0])
    return {step: tensor.value(step) for step in trial.steps()}


def test_values_read_over_s3_are_the_values_written(s3_env, local_run):
    from reporter.trial.s3 import patch_smdebug_s3

    bucket = s3_env.create_bucket()
    count = upload_folder(s3_env.client(), bucket, "run-values", local_run)
    assert count > 2 * STEPS  # an index file and an event file per step, plus collections
    patch_smdebug_s3()
    values = _read_all(f"s3://{bucket}/run-values")
    wrong = [step for step, value in values.items() if not np.array_equal(value, _losses(step))]
    assert wrong == []


def test_seaweedfs_skips_a_prefix_used_as_start_after(s3_env):
    """The server behaviour the listing fix exists for (if SeaweedFS changes, revisit the fix)."""
    client = s3_env.client()
    bucket = s3_env.create_bucket()
    client.put_object(Bucket=bucket, Key="run/index/000/1.json", Body=b"{}")
    raw = client.list_objects_v2(Bucket=bucket, Prefix="run/index", StartAfter="run/index")
    assert raw.get("KeyCount", 0) == 0
    plain = client.list_objects_v2(Bucket=bucket, Prefix="run/index")
    assert [o["Key"] for o in plain["Contents"]] == ["run/index/000/1.json"]


# Keys around the prefixes smdebug lists, including look-alikes that sort just before and after.
TRICKY_KEYS = [
    "run/index/000000000/000000000000_worker_0.json",
    "run/index/000000000/000000000001_worker_0.json",
    "run/index-old/x.json", "run/index.json", "run/indexes/y.json",
    "run/events/000000000000/a.tfevents", "run/events/000000000001/b.tfevents",
    "run/collections/000000000/worker_0_collections.json",
    "run/training_job_end.ts", "run-2/index/000000000/000000000000_worker_0.json",
]
LOOKALIKES = {"run/index-old/x.json", "run/index.json", "run/indexes/y.json",
              "run-2/index/000000000/000000000000_worker_0.json"}


def _listings(bucket: str, list_prefix) -> list:
    """What smdebug's own listing functions return with ``list_prefix`` in place."""
    from smdebug.core.access_layer.s3handler import S3Handler
    from smdebug.core.access_layer.utils import has_training_ended
    from smdebug.core.s3_utils import list_s3_objects

    saved = S3Handler.__dict__["list_prefix"]
    S3Handler.list_prefix = staticmethod(list_prefix)
    try:
        found = [list_s3_objects(bucket, prefix)[0]
                 for prefix in ("run/index", "run/events/", "run/collections/000000000/", "run/", "run")]
        # A growing listing's next page starts after the last key seen.
        found.append(list_s3_objects(bucket, "run/index", TRICKY_KEYS[0])[0])
        found.append(has_training_ended(f"s3://{bucket}/run"))
    finally:
        S3Handler.list_prefix = saved
    return found


def _without(listings: list, keys: set) -> list:
    return [[k for k in x if k not in keys] if isinstance(x, list) else x for x in listings]


def _sorted(listings: list) -> list:
    return [sorted(x) if isinstance(x, list) else x for x in listings]


def _fixed_and_original():
    from smdebug.core.access_layer.s3handler import S3Handler

    from reporter.trial.s3 import patch_smdebug_s3

    patch_smdebug_s3()
    fixed = S3Handler.__dict__["list_prefix"].__func__
    return fixed, fixed.original


def test_listing_fix_lists_on_seaweedfs_what_s3_lists(s3_env, monkeypatch):
    fixed, original = _fixed_and_original()
    bucket = s3_env.create_bucket()
    client = s3_env.client()
    for key in TRICKY_KEYS:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    seaweed_original = _listings(bucket, original)
    seaweed_fixed = _listings(bucket, fixed)
    # smdebug alone sees no index file on SeaweedFS (only look-alikes that sort after the folder).
    assert not [key for key in seaweed_original[0] if key.startswith("run/index/")]

    from moto import mock_aws
    from smdebug.core.access_layer.s3handler import S3Handler
    import boto3

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    with mock_aws():
        S3Handler.client.cache_clear()
        aws = boto3.client("s3")
        aws.create_bucket(Bucket=bucket)
        for key in TRICKY_KEYS:
            aws.put_object(Bucket=bucket, Key=key, Body=b"x")
        s3_original = _listings(bucket, original)
        s3_fixed = _listings(bucket, fixed)
    S3Handler.client.cache_clear()

    assert s3_fixed == s3_original  # the fix changes nothing where S3's rules hold, order included
    # SeaweedFS orders a listing folder by folder ("index/" before "index-old/"), S3 by bytes.
    # For the keys smdebug writes the two agree exactly, order included (it pages by last key).
    assert _without(seaweed_fixed, LOOKALIKES) == _without(s3_original, LOOKALIKES)
    # Look-alikes included, full listings hold the same keys.
    assert _sorted(seaweed_fixed[:5]) == _sorted(s3_original[:5])
    assert set(TRICKY_KEYS[:2]) <= set(s3_original[0])
    assert s3_original[-1] is True
