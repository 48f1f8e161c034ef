"""Writing a tensor store to ``s3://bucket/prefix``: checks before training, and the run file.

smdebug writes the tensors itself through boto3, so everything here is configured by boto3's
standard environment: ``AWS_ENDPOINT_URL_S3`` (an S3-compatible server such as SeaweedFS or
MinIO), ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or ``AWS_PROFILE``),
``AWS_DEFAULT_REGION``. Nothing here imports MXNet or smdebug.

What smdebug does not do for us, and this module does:

- it never refuses an ``s3://`` prefix that already holds a run (a reused prefix mixes two runs,
  and the old end marker stops a new reader early): ``prefix_holds_run`` / ``delete_run``;
- wrong credentials or a missing bucket make it crash at step 0, and an unreachable endpoint
  surfaces as a traceback from inside the forward pass: ``preflight`` says so in one line first;
- bounded retries for its clients: ``latentlapse.s3.configure_retries``, set by ``preflight``.
"""

from __future__ import annotations

from latentlapse import s3 as shared
from latentlapse.atomic import json_text
from latentlapse.contract import RUN_ENTRIES
from trainer import TrainerError

_explain = shared.Explainer(
    TrainerError, bucket_hint="create it first (aws s3 mb s3://{bucket}) or fix --out",
    permissions="s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject")


def parse_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into ``(bucket, prefix)``; the prefix has no trailing slash.

    Raises
    ------
    TrainerError
        If ``url`` is not an ``s3://`` URL with a bucket and a non-empty prefix.
    """
    parts = shared.split_url(url)
    if parts is None:
        raise TrainerError(shared.not_an_s3_url(url))
    bucket, prefix = parts
    if not prefix:
        raise TrainerError(f"{url} names a whole bucket: add a prefix for this run, "
                           f"e.g. s3://{bucket}/run-1")
    return bucket, prefix


def preflight(url: str) -> None:
    """Check, before training starts, that ``url`` can be listed with the current credentials.

    Also sets bounded retries for the run (see ``latentlapse.s3.configure_retries``).

    Raises
    ------
    TrainerError
        One line naming the problem: no or wrong credentials, a missing bucket, an unreachable
        endpoint, or access denied.
    """
    bucket, prefix = parse_url(url)
    shared.preflight(url, bucket, prefix, _explain)


def _keys(client, bucket: str, prefix: str):
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            yield item["Key"]


def _entry(key: str, prefix: str) -> str:
    return key[len(prefix) + 1:].split("/", 1)[0]


def prefix_holds_run(url: str) -> bool:
    """True if ``url`` already holds (part of) a run; smdebug itself never checks this for S3.

    Raises
    ------
    TrainerError
        If the prefix holds objects that are not a tensor store (nothing is deleted then, not
        even with ``--overwrite``), or S3 cannot be listed.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_url(url)
    client = shared.client()
    try:
        entries = {_entry(key, prefix) for key in _keys(client, bucket, prefix)}
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, url, client, "listing") from None
    others = sorted(entries - set(RUN_ENTRIES))
    if others:
        raise TrainerError(f"{url} holds objects that are not a tensor store "
                           f"({', '.join(others[:3])}): choose an empty or new prefix")
    return bool(entries)


def delete_run(url: str) -> int:
    """Delete the run under ``url`` (smdebug's files and ours, nothing else); return the count."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_url(url)
    client = shared.client()
    deleted = 0
    try:
        keys = [k for k in _keys(client, bucket, prefix) if _entry(k, prefix) in RUN_ENTRIES]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = keys[start:start + 1000]
            answer = client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise TrainerError(f"could not delete s3://{bucket}/{first['Key']} "
                                   f"({first.get('Code')}): delete the old run by hand or choose a new prefix")
            deleted += len(batch)
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, url, client, "deleting the old run in") from None
    return deleted


def write_json(url: str, obj) -> None:
    """Write ``obj`` as JSON to the object ``url`` (``s3://bucket/prefix/name.json``).

    A PUT replaces an object atomically: a reader gets the old version or the new one.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_url(url)
    body = json_text(obj).encode("utf-8")
    client = shared.client()
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, url, client, "writing") from None
