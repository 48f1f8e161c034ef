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
- its clients give up on a refused connection after ~0.1 s (3 attempts), so a short outage of
  the server kills the run or hangs it at exit: ``configure_retries`` sets bounded retries with
  backoff (``AWS_RETRY_MODE=standard``, ``AWS_MAX_ATTEMPTS=10``, about 1-2 minutes of outage
  tolerated) unless the user chose their own.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlparse

from trainer import TrainerError

RETRY_MODE = "standard"
# Standard mode waits min(random * 2**attempt, 20 s) between attempts: 10 attempts ride out
# an outage of roughly one to two minutes, then the error surfaces instead of a silent hang.
MAX_ATTEMPTS = "10"
# Short on purpose: the checks run before training and must answer in seconds.
PREFLIGHT_CONNECT_TIMEOUT = 5
PREFLIGHT_ATTEMPTS = 2
# What smdebug (and we) write into a run; the same list as trainer.train.RUN_ENTRIES.
RUN_ENTRIES = ("index", "events", "collections", "training_job_end.ts", "framework",
               "latentlapse-run.json")

_CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                      "ExpiredToken", "AuthorizationHeaderMalformed", "InvalidClientTokenId"}


def parse_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into ``(bucket, prefix)``; the prefix has no trailing slash.

    Raises
    ------
    TrainerError
        If ``url`` is not an ``s3://`` URL with a bucket and a non-empty prefix.
    """
    parsed = urlparse(url)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    if parsed.scheme != "s3" or not bucket:
        raise TrainerError(f"{url!r} is not an S3 URL: write s3://bucket/prefix")
    if not prefix:
        raise TrainerError(f"{url} names a whole bucket: add a prefix for this run, "
                           f"e.g. s3://{bucket}/run-1")
    return bucket, prefix


def configure_retries(environ: dict | None = None) -> dict[str, str]:
    """Give every boto3 client made from now on (smdebug's too) bounded retries with backoff.

    Only fills in ``AWS_RETRY_MODE`` and ``AWS_MAX_ATTEMPTS`` when the user has not set them.
    Returns the two values in effect.
    """
    environ = os.environ if environ is None else environ
    environ.setdefault("AWS_RETRY_MODE", RETRY_MODE)
    environ.setdefault("AWS_MAX_ATTEMPTS", MAX_ATTEMPTS)
    return {"AWS_RETRY_MODE": environ["AWS_RETRY_MODE"],
            "AWS_MAX_ATTEMPTS": environ["AWS_MAX_ATTEMPTS"]}


def _client(preflight: bool = False):
    import boto3
    from botocore.config import Config

    if preflight:
        config = Config(connect_timeout=PREFLIGHT_CONNECT_TIMEOUT, read_timeout=20,
                        retries={"mode": "standard", "max_attempts": PREFLIGHT_ATTEMPTS})
    else:
        config = None  # the environment's retry settings (see configure_retries)
    return boto3.client("s3", config=config)


def _explain(error: Exception, url: str, client, doing: str) -> TrainerError:
    """Turn a boto3 failure into one line that says what to do."""
    from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError,
                                     NoCredentialsError, NoRegionError, PartialCredentialsError,
                                     ReadTimeoutError)

    endpoint = client.meta.endpoint_url if client is not None else "S3"
    bucket = urlparse(url).netloc
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return TrainerError(f"no AWS credentials for {url}: set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
    if isinstance(error, NoRegionError):
        return TrainerError(f"no AWS region for {url}: set AWS_DEFAULT_REGION")
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return TrainerError(f"cannot reach the S3 endpoint {endpoint} ({type(error).__name__}): "
                            "check AWS_ENDPOINT_URL_S3 and that the server is up")
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _CREDENTIAL_ERRORS:
            return TrainerError(f"{endpoint} rejected the AWS credentials ({code}) while {doing} "
                                f"{url}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        if code in ("NoSuchBucket", "404") or status == 404:
            return TrainerError(f"bucket {bucket!r} does not exist at {endpoint}: create it first "
                                f"(aws s3 mb s3://{bucket}) or fix --out")
        if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
            return TrainerError(f"access denied while {doing} {url} ({code}): the credentials need "
                                "s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on it")
        return TrainerError(f"S3 error while {doing} {url}: {code or status} "
                            f"{error.response.get('Error', {}).get('Message', '')}".rstrip())
    return TrainerError(f"S3 error while {doing} {url}: {error}")


def preflight(url: str) -> None:
    """Check, before training starts, that ``url`` can be listed with the current credentials.

    Also sets bounded retries for the run (see ``configure_retries``).

    Raises
    ------
    TrainerError
        One line naming the problem: no or wrong credentials, a missing bucket, an unreachable
        endpoint, or access denied.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_url(url)
    configure_retries()
    client = None
    try:
        client = _client(preflight=True)
        client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/", MaxKeys=1)
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, url, client, "listing") from None


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
    client = _client()
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
    client = _client()
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
    body = (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
    client = _client()
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, url, client, "writing") from None
