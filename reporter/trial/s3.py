"""Reading a tensor store from ``s3://bucket/prefix``: checks, the run file, and smdebug's S3 fixes.

Configured only by boto3's standard environment (see ``latentlapse.s3``), which smdebug's own
clients honour as well.

``patch_smdebug_s3()`` fixes two ways smdebug 1.0.34 reads S3 wrongly. Call it once before
``create_trial``:

1. **Empty listings.** smdebug lists a "folder" with ``StartAfter`` equal to ``Prefix`` and no
   trailing slash (``Prefix='run/index', StartAfter='run/index'``). On S3 every key under
   ``run/index/`` sorts after ``run/index`` and comes back; SeaweedFS treats ``run/index`` as a
   directory it has already passed and returns nothing, so the trial never sees a step. The fix
   drops ``StartAfter`` when it equals ``Prefix`` and filters out a key equal to the prefix: the
   same set of keys by S3's own definition, on every server.
2. **Wrong values.** For 100 or more objects smdebug forks a process pool while the parent's
   boto3 client holds keep-alive connections; children then share sockets and read each other's
   responses (another step's index file or loss, silently). The fix keeps those reads in the
   calling process.

It also stops every ``tensor.value()`` from listing the whole ``events/`` prefix again (81 ms
per call at 130 event files, growing with the run): an event file, once listed, stays.
"""

from __future__ import annotations

import json

from latentlapse import s3 as shared
from reporter import ReporterError

_explain = shared.Explainer(ReporterError, bucket_hint="check --tensors (and AWS_ENDPOINT_URL_S3)",
                            permissions="s3:ListBucket and s3:GetObject")


def parse_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into ``(bucket, prefix)`` (prefix without slashes at the ends)."""
    parts = shared.split_url(url)
    if parts is None:
        raise ReporterError(shared.not_an_s3_url(url))
    return parts


def preflight(url: str) -> None:
    """Check that ``url`` can be listed before waiting on it (an empty prefix is fine: the run
    may not have started yet). Also sets bounded retries (see ``latentlapse.s3.configure_retries``).

    Raises
    ------
    ReporterError
        One line naming the problem: no or wrong credentials, a missing bucket, an unreachable
        endpoint, or access denied. Without this smdebug would log and wait forever.
    """
    bucket, prefix = parse_url(url)
    shared.preflight(url, bucket, prefix, _explain)


def has_collections(url: str) -> bool:
    """Whether the run at ``url`` has its collections file yet (smdebug's create_trial blocks
    until it does)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_url(url)
    client = shared.client()
    try:
        answer = client.list_objects_v2(Bucket=bucket, MaxKeys=1,
                                        Prefix=f"{prefix}/collections/" if prefix else "collections/")
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, url, client, "reading") from None
    return answer.get("KeyCount", len(answer.get("Contents", []))) > 0


def read_bytes(url: str) -> bytes | None:
    """The bytes of the object at ``url``, or None if there is no such object (yet).

    Raises
    ------
    ReporterError
        If S3 cannot be read.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_url(url)
    client = shared.client()
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise _explain(error, url, client, "reading") from None
    except BotoCoreError as error:
        raise _explain(error, url, client, "reading") from None


def read_json(url: str):
    """The JSON object stored at ``url``, or None if there is no such object (yet).

    Raises
    ------
    ReporterError
        If S3 cannot be read, or the object is not JSON.
    """
    body = read_bytes(url)
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError as error:
        raise ReporterError(f"{url} is not JSON ({error}): is it the right file?") from None


def listing_problem(url: str) -> str | None:
    """Why the store at ``url`` cannot be listed now, in one line with the fix; None if it can.

    smdebug only logs a failed listing and carries on with an empty one, so a store that cannot
    be listed looks like a store that stopped growing. This asks S3 directly (short timeouts).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_url(url)
    client = shared.client(preflight=True)
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/" if prefix else "", MaxKeys=1)
    except (BotoCoreError, ClientError) as error:
        return _explain.message(error, url, client, "listing")
    return None


def object_size(url: str) -> int | None:
    """The size in bytes of the object at ``url``; None if there is none or S3 cannot say."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_url(url)
    try:
        return int(shared.client().head_object(Bucket=bucket, Key=key)["ContentLength"])
    except (BotoCoreError, ClientError):
        return None


def patch_smdebug_s3() -> None:
    """Make smdebug's S3 reads list every key on every server and return the right bytes.

    Idempotent; see the module docstring for the two problems it fixes.
    """
    from smdebug.core.access_layer.s3handler import ListRequest, S3Handler
    from smdebug.core.index_reader import S3IndexReader
    from smdebug.core.utils import is_s3

    # A process pool forked beside live keep-alive connections mixes up responses: never fork.
    S3Handler.GET_OBJECTS_MULTIPROCESSING_THRESHOLD = 2**62
    if getattr(S3Handler.list_prefix, "_latentlapse", False):
        return
    original = S3Handler.list_prefix

    def list_prefix(lr):
        if lr.prefix and lr.start_after == lr.prefix:
            # StartAfter=P with Prefix=P means "every key under P except P itself" on S3.
            keys = original(ListRequest(Bucket=lr.bucket, Prefix=lr.prefix,
                                        Delimiter=lr.delimiter, StartAfter=""))
            return [key for key in keys if key != lr.prefix]
        return original(lr)

    list_prefix._latentlapse = True
    list_prefix.original = original
    S3Handler.list_prefix = staticmethod(list_prefix)

    def is_event_file_present(self, file):
        # Event files are written once and never change: list again only for one not seen yet.
        seen = self.__dict__.setdefault("_latentlapse_event_files", set())
        key = is_s3(file)[2]
        if key not in seen:
            seen.update(self.list_event_files())
        return key in seen

    S3IndexReader._is_event_file_present = is_event_file_present
