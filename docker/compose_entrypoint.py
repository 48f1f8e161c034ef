#!/usr/bin/env python3
"""The glue between docker-compose.yml and the two command lines (installed as ``latentlapse-compose``).

Compose cannot compute a value per ``docker compose up``, so this script gives every run its own
folders without being told to:

``trainer``   picks the run's name (``$LATENTLAPSE_RUN``, or the UTC start time such as
              ``20261126T140300Z``), publishes it in ``/store/current-run``, and runs the trainer on
              ``/store/<run>``.
``reporter``  reads the run's name from ``/store/current-run`` and runs the reporter from
              ``/store/<run>`` to ``/out/<run>``, as the owner of the host's project folder, so the site
              on the host belongs to whoever ran compose (``$LATENTLAPSE_UID``/``$LATENTLAPSE_GID`` win).
``result``    prints where the finished site is (runs only when the reporter exited 0).
``s3``        the S3 profile's server: SeaweedFS (``weed``) with the one identity given by
              ``$LATENTLAPSE_S3_ACCESS_KEY``/``$LATENTLAPSE_S3_SECRET_KEY``, data in ``/data``.
``health trainer|reporter|s3``  the containers' healthchecks (``s3`` also creates the bucket).

With ``LATENTLAPSE_STORE=s3`` (docker/s3.env) the tensor store is ``s3://$LATENTLAPSE_S3_BUCKET/<run>``
on that server instead of ``/store/<run>``; the run's name still travels through the volume.

Nothing here imports the trainer or the reporter; it only sets their TRAINER_*/REPORTER_* variables.
It imports the small shared package ``latentlapse`` (file names, the report's layout and status
words, atomic writes, booleans), which every image installs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from latentlapse import report_layout as layout
from latentlapse.atomic import write_text
from latentlapse.contract import RUN_FILE
from latentlapse.options import OptionError, parse_bool

STORE = Path("/store")
OUT = Path("/out")
CURRENT_RUN = STORE / "current-run"
# The trainer container's own run: "<run> <start of this container's PID 1>". A restarted container
# keeps its files, so the start time tells this start's marker from the previous one's.
OWN_RUN = Path("/tmp/latentlapse-run")
PROJECT = Path("/project")
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The trainer rewrites its run file at every EVAL step (seconds apart); minutes of silence is a hang.
TRAINER_SILENT_AFTER = float(os.environ.get("LATENTLAPSE_HEALTH_SILENT_AFTER", "180"))
# The S3 profile: the compose service `s3` answers on this port inside the project's network.
S3_ENDPOINT = "http://s3:8333"
S3_DATA = Path("/data")
S3_IDENTITIES = Path("/tmp/latentlapse-s3-identities.json")
PROBE_KEY = ".latentlapse-health-probe"


def fail(message: str) -> None:
    """One line on stderr and exit 1: the compose log shows it beside the service's name."""
    print(f"latentlapse-compose: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def container_start() -> str:
    """Start time of PID 1 (the init process) in clock ticks since boot: new at every container start."""
    return Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[19]


def run_name() -> str:
    """The name the user gave (``$LATENTLAPSE_RUN``), else the UTC time now."""
    name = os.environ.get("LATENTLAPSE_RUN", "").strip()
    if not name:
        return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if not RUN_NAME.match(name):
        fail(f"LATENTLAPSE_RUN={name!r} is not a folder name: use letters, digits, '.', '_' or '-'")
    return name


def s3_store() -> bool:
    """True when the run's tensors go to the S3 profile's server (``LATENTLAPSE_STORE=s3``)."""
    store = os.environ.get("LATENTLAPSE_STORE", "").strip().lower()
    if store not in ("", "volume", "s3"):
        fail(f"LATENTLAPSE_STORE={store!r}: use s3 (with --env-file docker/s3.env) or leave it unset")
    return store == "s3"


def s3_settings() -> tuple[str, str, str]:
    """(bucket, access key, secret key) of the S3 profile, or one line saying what is missing."""
    values = [os.environ.get(f"LATENTLAPSE_S3_{name}", "").strip()
              for name in ("BUCKET", "ACCESS_KEY", "SECRET_KEY")]
    if not all(values):
        fail("the S3 profile needs LATENTLAPSE_S3_BUCKET, LATENTLAPSE_S3_ACCESS_KEY and "
             "LATENTLAPSE_S3_SECRET_KEY: run `docker compose --env-file docker/s3.env up`")
    return values[0], values[1], values[2]


def use_s3_server() -> str:
    """Point boto3 (and so smdebug) at the `s3` service; return the bucket."""
    bucket, key, secret = s3_settings()
    os.environ.update({
        "AWS_ENDPOINT_URL_S3": os.environ.get("LATENTLAPSE_S3_ENDPOINT") or S3_ENDPOINT,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        # smdebug's own CreateBucket fails outside us-east-1; the bucket exists anyway.
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        # Never probe the instance-metadata address for credentials.
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    return bucket


def s3_client():
    """A boto3 client for the `s3` service with short timeouts (healthchecks must answer fast)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(connect_timeout=2, read_timeout=5,
                                            retries={"mode": "standard", "max_attempts": 1}))


def trainer(args: list[str]) -> None:
    """Name the run, publish the name for the reporter, become the trainer writing /store/<run>."""
    name = run_name()
    store = STORE / name
    if s3_store():
        # The trainer itself refuses an S3 prefix that already holds a run (unless TRAINER_OVERWRITE).
        store = f"s3://{use_s3_server()}/{name}"
    try:
        overwrite = parse_bool(os.environ.get("TRAINER_OVERWRITE") or "0", "TRAINER_OVERWRITE")
    except OptionError as exc:
        fail(str(exc))
    if isinstance(store, Path) and (store / RUN_FILE).exists() and not overwrite:
        fail(f"run {name!r} already exists in the tensor store volume: unset LATENTLAPSE_RUN "
             "(each run then gets its own name) or choose a new one")
    try:
        write_text(OWN_RUN, f"{name} {container_start()}\n")
        write_text(CURRENT_RUN, name + "\n")
    except OSError as exc:
        fail(f"cannot write {exc.filename} ({exc.strerror}): the tensor store volume must be writable by "
             f"uid {os.getuid()}; remove it with `docker compose down -v` and start again")
    where = "on the S3 server at" if isinstance(store, str) else "in the volume at"
    print(f"latentlapse: run {name}: tensors {where} {store}", flush=True)
    os.environ["TRAINER_OUT"] = str(store)
    os.execvp("latentlapse-trainer", ["latentlapse-trainer", *args])


def _target_owner() -> tuple[int, int]:
    """Whose files the site should be: $LATENTLAPSE_UID/GID, else the owner of the project folder."""
    uid, gid = os.environ.get("LATENTLAPSE_UID", ""), os.environ.get("LATENTLAPSE_GID", "")
    if uid:
        if not uid.isdigit() or (gid and not gid.isdigit()):
            fail(f"LATENTLAPSE_UID={uid!r} / LATENTLAPSE_GID={gid!r} must be numbers, e.g. from `id -u`")
        return int(uid), int(gid or uid)
    try:
        st = PROJECT.stat()
    except OSError:
        return os.getuid(), os.getgid()
    return st.st_uid, st.st_gid


def _become(uid: int, gid: int, site: Path) -> None:
    """Drop root for good: the reporter itself never runs with more rights than the user.

    Docker creates a missing bind-mount source as root: an empty root-owned /out is handed to the
    user, and so is the run's own folder, made here. Nothing that already holds files changes owner.
    """
    if os.getuid() != 0 or uid == 0:
        return
    if OUT.stat().st_uid == 0 and not any(OUT.iterdir()):
        os.chown(OUT, uid, gid)
    if not site.exists():
        site.mkdir()
        os.chown(site, uid, gid)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def reporter(args: list[str]) -> None:
    """Find the run, take the site owner's uid, become the reporter from /store/<run> to /out/<run>."""
    name = os.environ.get("LATENTLAPSE_RUN", "").strip()
    if not name:
        deadline = time.monotonic() + 60
        while not CURRENT_RUN.exists():
            if time.monotonic() > deadline:
                fail(f"no run published in {CURRENT_RUN} after 60 s: is the trainer service running?")
            time.sleep(1)
        name = CURRENT_RUN.read_text().strip()
    if not RUN_NAME.match(name):
        fail(f"{CURRENT_RUN} holds {name!r}, not a run name: remove the volume with `docker compose down -v`")
    tensors = f"s3://{use_s3_server()}/{name}" if s3_store() else str(STORE / name)
    _become(*_target_owner(), site=OUT / name)
    os.environ["HOME"] = "/tmp"
    os.environ["REPORTER_TENSORS"] = tensors
    os.environ["REPORTER_OUT"] = str(OUT / name)
    # Beside the runs: ./out/index.html lists every report in ./out, rebuilt as statuses change.
    os.environ.setdefault("REPORTER_RUNS_INDEX", str(OUT / layout.PAGE))
    host_out = os.environ.get("LATENTLAPSE_OUT_HOST", "./out")
    print(f"latentlapse: run {name}: site in {host_out}/{name}/index.html (uid {os.getuid()})", flush=True)
    os.execvp("latentlapse-reporter", ["latentlapse-reporter", *args])


# Runs one comparison takes at most (reporter/compare/comparison.py; this image-side script has no numpy).
COMPARE_MOST = 8


def compare(args: list[str]) -> None:
    """Compare runs in ./out: the named ones (leading arguments), else the newest reports there.

    ``docker compose run --rm --no-deps --entrypoint latentlapse-compose reporter compare [RUN ...] [options]``
    writes ./out/compare/<A>-vs-<B>/ as the site owner; the options are ``latentlapse compare``'s.
    """
    names = []
    while args and not args[0].startswith("-"):
        names.append(args.pop(0))
    if not names:
        found = sorted((d.name for d in OUT.iterdir() if d.is_dir() and (d / layout.STATE).is_file()), reverse=True)
        names = sorted(found[:COMPARE_MOST])
        if len(names) < 2:
            fail(f"./out holds {len(names)} report(s): run `docker compose up` twice (e.g. with TRAINER_SEED=1 "
                 "and TRAINER_SEED=2) to have two runs to compare")
    for name in names:
        if not RUN_NAME.match(name) or not (OUT / name / layout.STATE).is_file():
            fail(f"{name!r} is not a report in ./out: name the folders of ./out to compare, or none for the newest")
    _become(*_target_owner(), site=OUT / layout.COMPARISONS)
    os.environ["HOME"] = "/tmp"
    host_out = os.environ.get("LATENTLAPSE_OUT_HOST", "./out")
    print(f"latentlapse: comparing {', '.join(names)} into {host_out}/{layout.COMPARISONS}/", flush=True)
    os.execvp("latentlapse-reporter", ["latentlapse-reporter", "compare", *[str(OUT / n) for n in names], *args])


def result() -> None:
    """Print one line saying where the finished run's site and GIF are on the host."""
    name = CURRENT_RUN.read_text().strip() if CURRENT_RUN.exists() else ""
    host = f"{os.environ.get('LATENTLAPSE_OUT_HOST', './out')}/{name}"
    try:
        state = layout.read_summary(OUT / name)
    except (OSError, ValueError) as exc:
        fail(f"the reporter finished but {host}/{layout.STATE} is unreadable ({exc})")
    if state is None:
        fail(f"the reporter finished but wrote no {host}/{layout.STATE}")
    print(f"latentlapse: run {name} {state.status}: {state.frames} frames. "
          f"Site: {host}/{layout.PAGE}  GIF: {host}/{state.gif} ({state.gif_bytes / 2**20:.1f} MiB)",
          flush=True)


def s3_server() -> None:
    """Write the server's one identity, then become ``weed server`` (master, volume, filer, S3)."""
    _, key, secret = s3_settings()
    # Only this user may read the secret, from the first byte on.
    write_text(S3_IDENTITIES, json.dumps({"identities": [{
        "name": "latentlapse",
        "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}), mode=0o600)
    # One volume per bucket, not seven (the default growth for an empty server).
    os.environ.setdefault("WEED_MASTER_VOLUME_GROWTH_COPY_1", "1")
    print(f"latentlapse: S3 server on {S3_ENDPOINT}, data in the s3data volume", flush=True)
    os.execvp("weed", [
        "weed", "server", f"-dir={S3_DATA}", "-ip=s3", "-ip.bind=0.0.0.0",
        "-master.telemetry=false",
        # The default (10 s) makes a restart on existing data take 15-18 s.
        "-master.electionTimeout=1s", "-master.volumeSizeLimitMB=256", "-volume.max=100",
        "-volume.preStopSeconds=0", "-filer", "-s3", "-s3.port=8333",
        f"-s3.config={S3_IDENTITIES}", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ])


def _s3_health() -> None:
    """Healthy once an object round-trips (listing answers seconds before GETs do); makes the bucket."""
    bucket = use_s3_server()
    os.environ["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:8333"
    client = s3_client()
    try:
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        token = os.urandom(8).hex().encode()
        client.put_object(Bucket=bucket, Key=PROBE_KEY, Body=token)
        if client.get_object(Bucket=bucket, Key=PROBE_KEY)["Body"].read() != token:
            fail("the probe object came back changed")
    except Exception as exc:  # any failure only means "not ready yet"
        fail(f"S3 not ready: {exc}")


def _trainer_clock(name: str) -> float:
    """When the trainer last wrote progress: its run file's mtime (in the volume or on S3)."""
    if not s3_store():
        run_file = STORE / name / RUN_FILE
        return (run_file if run_file.exists() else OWN_RUN).stat().st_mtime
    bucket = use_s3_server()
    client = s3_client()
    try:
        return client.head_object(Bucket=bucket, Key=f"{name}/{RUN_FILE}")["LastModified"].timestamp()
    except client.exceptions.ClientError:
        return OWN_RUN.stat().st_mtime  # not written yet: count from the start of the run
    except Exception as exc:
        fail(f"cannot read the run file on S3: {exc}")


def health(service: str) -> None:
    """Exit 0 when the service is doing its job, 1 (with a reason) when it is not."""
    if service == "trainer":
        marker = OWN_RUN.read_text().split() if OWN_RUN.exists() else []
        if len(marker) != 2 or marker[1] != container_start():
            fail("no run started yet")
        name = marker[0]
        if not CURRENT_RUN.exists() or CURRENT_RUN.read_text().strip() != name:
            fail(f"{CURRENT_RUN} does not name this container's run {name}")
        silent = time.time() - _trainer_clock(name)
        if silent > TRAINER_SILENT_AFTER:
            fail(f"no progress written for {silent:.0f} s")
    elif service == "reporter":
        try:
            state = layout.read_summary(OUT / CURRENT_RUN.read_text().strip()) if CURRENT_RUN.exists() else None
        except (OSError, ValueError) as exc:
            fail(f"the report's {layout.STATE} is unreadable ({exc})")
        if state is not None and state.status in layout.UNHEALTHY_STATUSES:
            fail(f"the run is {state.status}")
    elif service == "s3":
        _s3_health()
    else:
        fail(f"unknown service {service!r}: use trainer, reporter or s3")


def main(argv: list[str]) -> None:
    if argv == ["--check-imports"]:
        return  # the image build's check that this script's imports resolve (they ran above)
    if not argv:
        fail("usage: latentlapse-compose trainer|reporter|compare|result|s3|health SERVICE [options...]")
    command, args = argv[0], argv[1:]
    if command in ("trainer", "reporter") and ("-h" in args or "--help" in args):
        # `docker compose run --rm trainer --help`: no run to name, no folder to make.
        os.execvp(f"latentlapse-{command}", [f"latentlapse-{command}", *args])
    if command == "trainer":
        trainer(args)
    elif command == "reporter":
        reporter(args)
    elif command == "compare":
        compare(args)
    elif command == "result":
        result()
    elif command == "s3":
        s3_server()
    elif command == "health" and len(args) == 1:
        health(args[0])
    else:
        fail(f"unknown command {' '.join(argv)!r}: use trainer, reporter, compare, result, s3 or health SERVICE")


if __name__ == "__main__":
    main(sys.argv[1:])
