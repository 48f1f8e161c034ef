"""``reporter --training-job NAME``: find where a SageMaker training job's tensors are.

SageMaker copies the job's smdebug output to ``<DebugHookConfig.S3OutputPath>/<job>/debug-output``.
Only boto3 is needed (the SageMaker SDK takes ~9 s to import); the region and credentials come
from the usual AWS variables or profile.
"""

from __future__ import annotations

import logging
import time

from reporter import ReporterError

log = logging.getLogger("reporter")


def describe(job_name: str, client=None) -> dict:
    """DescribeTrainingJob for ``job_name``, with every failure turned into one clear line."""
    from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError,
                                     NoCredentialsError, NoRegionError)

    try:
        if client is None:
            import boto3

            client = boto3.client("sagemaker")
        return client.describe_training_job(TrainingJobName=job_name)
    except NoRegionError:
        raise ReporterError("no AWS region: set AWS_DEFAULT_REGION to the training job's region") from None
    except NoCredentialsError:
        raise ReporterError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                            "(or AWS_PROFILE) to look up the training job") from None
    except EndpointConnectionError as error:
        raise ReporterError(f"cannot reach SageMaker ({error}): check the network and "
                            "AWS_DEFAULT_REGION") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        region = client.meta.region_name if client is not None else "this region"
        if code == "ValidationException" and "not found" in message.lower():
            raise ReporterError(f"no training job named {job_name!r} in {region}: check "
                                "--training-job and AWS_DEFAULT_REGION") from None
        raise ReporterError(f"DescribeTrainingJob {job_name!r} failed: {code} {message}".rstrip()) from None
    except BotoCoreError as error:
        raise ReporterError(f"DescribeTrainingJob {job_name!r} failed: {error}") from None


def debugger_path(job_name: str, client=None) -> str:
    """The ``s3://`` tensor store of SageMaker training job ``job_name``.

    Parameters
    ----------
    job_name : str
        The training job's name (as printed by ``python -m trainer.sagemaker``).
    client : botocore client, optional
        A ``sagemaker`` client; default: one from boto3's usual configuration.

    Raises
    ------
    ReporterError
        If the job cannot be found or was launched without a debugger hook.
    """
    job = describe(job_name, client)
    hook = job.get("DebugHookConfig") or {}
    if not hook.get("S3OutputPath"):
        raise ReporterError(f"training job {job_name!r} has no debugger hook config, so it saved no "
                            "tensors: launch it with python -m trainer.sagemaker")
    return f"{hook['S3OutputPath'].rstrip('/')}/{job_name}/debug-output"


# A training job in one of these states writes nothing more.
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")
# DescribeTrainingJob is throttled per account: asking twice a minute is plenty for a job.
STATUS_INTERVAL = 30.0


class JobWatcher:
    """Tells when a SageMaker training job has ended, asking DescribeTrainingJob at most every ``interval`` s.

    Inside a SageMaker job smdebug does not write its end-of-training marker, so a reporter
    following the job's tensors learns of the end from the job itself. A failed lookup (network,
    throttling) is logged and asked again later: it never ends the report.
    """

    def __init__(self, job_name: str, client=None, interval: float = STATUS_INTERVAL, clock=time.monotonic):
        self.job_name, self.client, self.interval = job_name, client, interval
        self._clock = clock
        self._next = float("-inf")
        self.status: str | None = None
        self.failure_reason: str | None = None

    def ended(self) -> bool:
        """True once the job's status is Completed, Failed or Stopped."""
        if self.status in TERMINAL_STATUSES:
            return True
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self.interval
        try:
            job = describe(self.job_name, self.client)
        except ReporterError as error:
            log.warning("%s; asking again in %.0f s", error, self.interval)
            return False
        self.status = job.get("TrainingJobStatus")
        self.failure_reason = job.get("FailureReason")
        return self.status in TERMINAL_STATUSES
