"""S3 access both sides share: URLs, bounded retries, clients, and one-line explanations of failures.

Configured only by boto3's standard environment (``AWS_ENDPOINT_URL_S3`` for an S3-compatible
server such as SeaweedFS or MinIO, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or
``AWS_PROFILE``, ``AWS_DEFAULT_REGION``), which smdebug's own clients honour as well. boto3 is
imported only when a client is made: the base install has it, the standard library does not.

What smdebug's clients do not do for us: they give up on a refused connection after ~0.1 s (3
attempts), so a short outage of the server kills a run or hangs it at exit. ``configure_retries``
sets bounded retries with backoff (``AWS_RETRY_MODE=standard``, ``AWS_MAX_ATTEMPTS=10``, about
1-2 minutes of outage tolerated) unless the user chose their own.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple
from urllib.parse import urlparse

RETRY_MODE = "standard"
# Standard mode waits min(random * 2**attempt, 20 s) between attempts: 10 attempts ride out
# an outage of roughly one to two minutes, then the error surfaces instead of a silent hang.
MAX_ATTEMPTS = "10"
# Short on purpose: the checks run before training or reading and must answer in seconds.
PREFLIGHT_CONNECT_TIMEOUT = 5
PREFLIGHT_ATTEMPTS = 2

_CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                      "ExpiredToken", "AuthorizationHeaderMalformed", "InvalidClientTokenId"}


def is_s3(path) -> bool:
    """Whether ``path`` names an S3 location (``s3://...``) rather than a local folder."""
    return str(path).startswith("s3://")


def split_url(url: str) -> Optional[Tuple[str, str]]:
    """``s3://bucket/prefix`` as ``(bucket, prefix)`` (no slashes at the prefix's ends), else None."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        return None
    return parsed.netloc, parsed.path.strip("/")


def not_an_s3_url(url: str) -> str:
    return f"{url!r} is not an S3 URL: write s3://bucket/prefix"


def configure_retries(environ: Optional[dict] = None) -> dict:
    """Give every boto3 client made from now on (smdebug's too) bounded retries with backoff.

    Only fills in ``AWS_RETRY_MODE`` and ``AWS_MAX_ATTEMPTS`` when the user has not set them.
    Returns the two values in effect.
    """
    environ = os.environ if environ is None else environ
    environ.setdefault("AWS_RETRY_MODE", RETRY_MODE)
    environ.setdefault("AWS_MAX_ATTEMPTS", MAX_ATTEMPTS)
    return {"AWS_RETRY_MODE": environ["AWS_RETRY_MODE"],
            "AWS_MAX_ATTEMPTS": environ["AWS_MAX_ATTEMPTS"]}


# Clients made so far, by kind and by the AWS_* environment they were made in. A client costs
# ~50 ms to make and the reporter asks for one every poll (about every second): made once, kept.
_clients: dict = {}


def client(preflight: bool = False):
    """A boto3 S3 client: the environment's retry settings, or short timeouts for a preflight check.

    Made once per kind and kept; a change to any ``AWS_*`` variable (another endpoint, other
    credentials, the retries ``configure_retries`` sets) gets a new one.
    """
    key = (preflight, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
    made = _clients.get(key)
    if made is not None:
        return made
    import boto3
    from botocore.config import Config

    if preflight:
        made = boto3.client("s3", config=Config(
            connect_timeout=PREFLIGHT_CONNECT_TIMEOUT, read_timeout=20,
            retries={"mode": "standard", "max_attempts": PREFLIGHT_ATTEMPTS}))
    else:
        made = boto3.client("s3")
    _clients[key] = made
    return made


class Explainer:
    """Turns boto3 failures into one line that says what to do, as one side of the contract words it.

    Parameters
    ----------
    error : type
        The side's exception for user errors (TrainerError, ReporterError).
    bucket_hint : str
        What to do about a missing bucket; ``{bucket}`` is filled in.
    permissions : str
        The S3 permissions this side needs, for "access denied".
    """

    def __init__(self, error: type, bucket_hint: str, permissions: str):
        self.error, self.bucket_hint, self.permissions = error, bucket_hint, permissions

    def __call__(self, failure: Exception, url: str, s3_client, doing: str) -> Exception:
        """The side's exception for ``failure`` (raised by ``s3_client`` while ``doing`` ``url``)."""
        return self.error(self.message(failure, url, s3_client, doing))

    def message(self, failure: Exception, url: str, s3_client, doing: str) -> str:
        from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError,
                                         NoCredentialsError, NoRegionError, PartialCredentialsError,
                                         ReadTimeoutError)

        endpoint = s3_client.meta.endpoint_url if s3_client is not None else "S3"
        bucket = urlparse(url).netloc
        if isinstance(failure, (NoCredentialsError, PartialCredentialsError)):
            return (f"no AWS credentials for {url}: set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
        if isinstance(failure, NoRegionError):
            return f"no AWS region for {url}: set AWS_DEFAULT_REGION"
        if isinstance(failure, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
            return (f"cannot reach the S3 endpoint {endpoint} ({type(failure).__name__}): "
                    "check AWS_ENDPOINT_URL_S3 and that the server is up")
        if isinstance(failure, ClientError):
            code = str(failure.response.get("Error", {}).get("Code", ""))
            status = failure.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _CREDENTIAL_ERRORS:
                return (f"{endpoint} rejected the AWS credentials ({code}) while {doing} {url}: "
                        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            if code in ("NoSuchBucket", "404") or status == 404:
                return (f"bucket {bucket!r} does not exist at {endpoint}: "
                        + self.bucket_hint.format(bucket=bucket))
            if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
                return (f"access denied while {doing} {url} ({code}): the credentials need "
                        f"{self.permissions} on it")
            return (f"S3 error while {doing} {url}: {code or status} "
                    f"{failure.response.get('Error', {}).get('Message', '')}").rstrip()
        return f"S3 error while {doing} {url}: {failure}"


def preflight(url: str, bucket: str, prefix: str, explain: Explainer) -> None:
    """Check that ``bucket``/``prefix`` can be listed now, and set bounded retries for later.

    Raises
    ------
    Exception
        ``explain``'s error, one line: no or wrong credentials, a missing bucket, an unreachable
        endpoint, or access denied.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    configure_retries()
    s3_client = None
    try:
        s3_client = client(preflight=True)
        s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/" if prefix else "", MaxKeys=1)
    except (BotoCoreError, ClientError) as failure:
        raise explain(failure, url, s3_client, "listing") from None
