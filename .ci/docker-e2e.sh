#!/usr/bin/env bash
# End-to-end test of `docker compose up` with a real Docker engine (called by .ci/run, as root).
#
#   1. install the engine, compose v2 and buildx where missing (docker/install-engine.sh)
#   2. start dockerd unless one already answers; stop it by its PID on exit, even on failure
#   3. base image: $LATENTLAPSE_BASE_IMAGE, else python:3.11-slim-bookworm if present locally, else
#      latentlapse-base:bookworm from Debian packages (docker/build-base-image.sh; no registry needed)
#   3b. scenario "no certs": a copy of the tracked files (docker/certs/ holds no certificate, as on a
#                         laptop without a proxy) builds the images' first stage, the one that copies
#                         docker/certs/ (the later stages run pip, which needs this machine's proxy CA)
#   4. build both images (the machine's CA certificates are copied into docker/certs/ as a build input)
#   5. scenario "run":    a small run (docker/ci.env) -> exit 0, site + GIF on the host with every frame,
#                         and the final cut's GIF (on by default) of the same frames;
#                         then the same command again -> a second run in its own folder, the first intact
#   6. scenario "bad":    a bad setting -> one clear line in the logs, non-zero exit
#   7. scenario "killed": the trainer is killed mid-run -> reporter marks the run stalled/failed, keeps
#                         its frames, exits 3, compose exits non-zero; the first run's site is untouched;
#                         the site belongs to LATENTLAPSE_UID, not root
#   7b. scenario "down": `docker compose down` mid-run -> the reporter gets SIGTERM (compose's init passes
#                         it on; the entrypoint execs the reporter) and its site says "stopped" with the
#                         reason, every frame it names on disk, and no longer reloads itself
#   9. scenario "compare": the compose one-liner compares the two runs of 5 and 5b into ./out/compare/
#   8. scenario "s3":     the s3 profile (docker/ci.env + docker/s3.env): tensors on a SeaweedFS container,
#                         exit 0, site + GIF on the host with every frame, nothing of the run in the volume
# Prints how long each phase took. Set KEEP_DOCKER_E2E=1 to keep the work folder.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
project=latentlapse-e2e
work=$(mktemp -d /tmp/latentlapse-docker-e2e.XXXXXX)
out=$work/out
dockerd_pid=""
copied_certs=()
timings=()
start=$SECONDS

log() { printf '[docker-e2e] %s\n' "$*"; }
fail() { printf '[docker-e2e] FAILED: %s\n' "$*" >&2; exit 1; }
phase_done() { timings+=("$(printf '%-28s %5d s' "$1" $((SECONDS - $2)))"); log "$1: $((SECONDS - $2)) s"; }
compose() { docker compose -p "$project" --env-file docker/ci.env "$@"; }

cleanup() {
    local rc=$?
    set +e
    if [ "$rc" != 0 ]; then
        log "failed (exit $rc); last compose and dockerd log lines:"
        for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 25 "$f"; }; done
    fi
    if docker info >/dev/null 2>&1; then
        LATENTLAPSE_OUT=$out compose --env-file docker/s3.env down -v --remove-orphans >/dev/null 2>&1
    fi
    for c in "${copied_certs[@]}"; do rm -f "$c"; done
    if [ -n "$dockerd_pid" ]; then
        kill -TERM "$dockerd_pid" 2>/dev/null
        for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$dockerd_pid" 2>/dev/null; then
            log "dockerd $dockerd_pid ignored TERM for 30 s: killing it"
            kill -KILL "$dockerd_pid"
        fi
        log "stopped dockerd (pid $dockerd_pid)"
    fi
    [ "${KEEP_DOCKER_E2E:-0}" = 1 ] && log "work folder kept: $work" || rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
# A CI timeout or Ctrl-C still stops the containers and dockerd.
trap 'exit 143' TERM
trap 'exit 130' INT

# --- 1. engine --------------------------------------------------------------------------------------
t=$SECONDS
docker/install-engine.sh
phase_done "install engine" "$t"

# --- 2. dockerd -------------------------------------------------------------------------------------
t=$SECONDS
if docker info >/dev/null 2>&1; then
    log "using the Docker engine that already answers (left running)"
else
    dockerd >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 120); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || fail "dockerd exited at start (see $work/dockerd.log)"
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || fail "dockerd did not answer within 60 s"
    log "started dockerd (pid $dockerd_pid)"
fi
phase_done "start dockerd" "$t"

# --- 3. base image ----------------------------------------------------------------------------------
t=$SECONDS
if [ -n "${LATENTLAPSE_BASE_IMAGE:-}" ]; then
    base=$LATENTLAPSE_BASE_IMAGE
elif docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1; then
    base=python:3.11-slim-bookworm
else
    base=latentlapse-base:bookworm
    docker image inspect "$base" >/dev/null 2>&1 || docker/build-base-image.sh "$base"
fi
export LATENTLAPSE_BASE_IMAGE=$base
log "base image: $base"
phase_done "base image" "$t"

# --- 3b. a clean checkout: no certificate in docker/certs/ ------------------------------------------
t=$SECONDS
clean=$work/clean-checkout
mkdir -p "$clean"
git ls-files -z | xargs -0 cp --parents -t "$clean"
[ -z "$(find "$clean/docker/certs" -name '*.crt')" ] || fail "the clean copy holds certificates"
docker build -f "$clean/docker/Dockerfile" --target base --build-arg "BASE_IMAGE=$base" \
    -t latentlapse-e2e-nocerts "$clean" >"$work/build-nocerts.log" 2>&1 \
    || fail "building with an empty docker/certs/ (see $work/build-nocerts.log)"
left=$(docker run --rm --entrypoint ls latentlapse-e2e-nocerts -A /usr/local/share/ca-certificates/latentlapse)
[ -z "$left" ] || fail "the image's certificate folder holds '$left' with no certificate given"
docker image rm latentlapse-e2e-nocerts >/dev/null
log "no certs: the first stage builds from a clean checkout"
phase_done "build without certs" "$t"

# --- 4. images --------------------------------------------------------------------------------------
t=$SECONDS
for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$crt" ] || continue
    target=docker/certs/$(basename "$crt")
    [ -e "$target" ] && continue
    cp "$crt" "$target"
    copied_certs+=("$repo/$target")
done
compose --env-file docker/s3.env build --progress plain >"$work/build.log" 2>&1 || fail "docker compose build (see $work/build.log)"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^latentlapse-' | sed 's/^/[docker-e2e]   /'
phase_done "build images" "$t"

# Reads a run's site with the reporter image's own Python (the host needs nothing but Docker).
check_site() {
    docker run --rm -i --entrypoint python -v "$out:/out:ro" "latentlapse-reporter:latest" - "$@" <<'EOF'
import json, sys
from pathlib import Path
import imageio.v3 as iio

run, want_status, min_frames = sys.argv[1], sys.argv[2].split("|"), int(sys.argv[3])
site = Path("/out") / run
state = json.loads((site / "state.json").read_text())
frames = state["frames"]
expected = json.loads((site / "run.json").read_text())["expected_frames"] if want_status == ["finished"] else None
assert state["status"] in want_status, f"status {state['status']!r}, expected {want_status}"
assert len(frames) >= min_frames, f"{len(frames)} frames, expected at least {min_frames}"
if expected is not None:
    assert len(frames) == expected, f"{len(frames)} frames, run.json expects {expected}"
for frame in frames:
    for key in ("png", "csv", "npz"):
        assert (site / frame[key]).is_file(), f"missing {frame[key]}"
gif = iio.imread(site / "latentlapse.gif", index=None)
assert gif.shape[0] == len(frames), f"GIF has {gif.shape[0]} frames, state.json {len(frames)}"
if want_status == ["finished"]:
    # The final cut is on by default: a finished run has its second GIF, of the same frames.
    assert state["final"]["status"] == "made", f"final cut {state['final']}"
    cut = iio.imread(site / "final" / "latentlapse.gif", index=None)
    assert cut.shape == gif.shape, f"the final cut's GIF is {cut.shape}, the live one {gif.shape}"
    assert (site / "final" / "cut.json").is_file() and (site / "final" / "figure.pdf").is_file()
assert (site / "index.html").stat().st_size > 1000, "index.html is (nearly) empty"
print(f"{run}: status {state['status']}, {len(frames)} frames, GIF {gif.shape}, "
      f"{(site / 'latentlapse.gif').stat().st_size} bytes")
EOF
}

# Runs check_site and insists on its closing line: a check that ran nothing must not pass.
assert_site() {
    local report
    report=$(check_site "$@") || fail "the site of run $1 failed its checks"
    case "$report" in "$1: status "*) log "$report" ;; *) fail "the site check of run $1 printed: $report" ;; esac
}

site_sum() { (cd "$out/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }

runs_in_out() { find "$out" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort; }

# --- 5. scenario: a small run ---------------------------------------------------------------------
t=$SECONDS
mkdir -p "$out"
LATENTLAPSE_OUT=$out compose up >"$work/run.log" 2>&1 || fail "docker compose up exited $? (see $work/run.log)"
mapfile -t runs < <(runs_in_out)
[ "${#runs[@]}" = 1 ] || fail "expected one run folder in $out, found: ${runs[*]:-none}"
first=${runs[0]}
assert_site "$first" finished 2
grep -q "latentlapse: run $first finished" "$work/run.log" || fail "compose did not print the result line"
[ "$(stat -c %u "$out/$first/index.html")" = "$(stat -c %u "$repo")" ] \
    || fail "site owned by uid $(stat -c %u "$out/$first/index.html"), not by the project's owner"
first_sum=$(site_sum "$first")
phase_done "scenario run (small)" "$t"

# --- 5b. the same command again: the stopped containers restart and make a second, separate run ---
t=$SECONDS
LATENTLAPSE_OUT=$out compose up >"$work/again.log" 2>&1 || fail "the second docker compose up exited $? (see $work/again.log)"
grep -q "Recreate" "$work/again.log" && fail "the second up recreated containers: it should restart them"
mapfile -t runs < <(runs_in_out)
[ "${#runs[@]}" = 2 ] || fail "expected two run folders after the second up, found: ${runs[*]}"
again=${runs[1]}
assert_site "$again" finished 2
[ "$(site_sum "$first")" = "$first_sum" ] || fail "the second up changed the first run's site"
phase_done "scenario run again" "$t"

# --- 6. scenario: a bad setting ---------------------------------------------------------------------
t=$SECONDS
if TRAINER_STEPS=many LATENTLAPSE_OUT=$out compose up >"$work/bad.log" 2>&1; then
    fail "docker compose up with TRAINER_STEPS=many exited 0"
fi
grep -q "trainer: error: TRAINER_STEPS='many' is not a number" "$work/bad.log" \
    || fail "no clear error line for TRAINER_STEPS=many (see $work/bad.log)"
[ "$(runs_in_out | wc -l)" = 2 ] || fail "a failed start left a site folder behind"
phase_done "scenario bad setting" "$t"

# Waits until compose (pid $1, log $work/$2.log) has a run folder not among the names after $2 whose
# state names a frame; prints that run's name.
first_frame_of_new_run() {
    local pid=$1 name=$2 run="" _
    shift 2
    local known=("$@")
    for _ in $(seq 300); do
        run=$(runs_in_out | grep -vxF -f <(printf '%s\n' "${known[@]}") || true)
        if [ -n "$run" ] && [ -f "$out/$run/state.json" ] && grep -q '"png"' "$out/$run/state.json"; then
            echo "$run"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "compose up ended before the first frame (see $work/$name.log)"
        sleep 1
    done
    fail "no new run folder with a frame appeared within 300 s (see $work/$name.log)"
}

# --- 7. scenario: the trainer is killed mid-run -----------------------------------------------------
t=$SECONDS
# A long run (it is killed after the first frames) owned by a uid that is neither root nor the caller.
TRAINER_STEPS=5000 LATENTLAPSE_UID=4242 LATENTLAPSE_GID=4242 LATENTLAPSE_OUT=$out \
    compose up >"$work/killed.log" 2>&1 &
up_pid=$!
second=$(first_frame_of_new_run "$up_pid" killed "$first" "$again")
LATENTLAPSE_OUT=$out compose kill -s SIGKILL trainer >/dev/null 2>&1
killed_at=$SECONDS
log "killed the trainer of run $second"
if wait "$up_pid"; then fail "docker compose up exited 0 after the trainer was killed"; fi
waited=$((SECONDS - killed_at))
reporter_exit=$(docker inspect -f '{{.State.ExitCode}}' "$(docker compose -p "$project" ps -aq reporter)")
[ "$reporter_exit" = 3 ] || fail "reporter exited $reporter_exit after the trainer was killed, expected 3"
# ci.env: stalled after 20 s of silence, exit 3 after 60 s: allow generous slack for a loaded machine.
[ "$waited" -le 150 ] || fail "the reporter took $waited s to give up on a killed trainer"
assert_site "$second" "stalled|failed" 1
[ "$(stat -c %u:%g "$out/$second/state.json")" = 4242:4242 ] \
    || fail "killed run's site owned by $(stat -c %u:%g "$out/$second/state.json"), expected LATENTLAPSE_UID 4242"
[ "$(site_sum "$first")" = "$first_sum" ] || fail "the first run's site changed during the killed run"
log "reporter gave up $waited s after the kill, exit 3; compose exited non-zero"
phase_done "scenario trainer killed" "$t"

# --- 7b. scenario: `docker compose down` during a run ---------------------------------------------
t=$SECONDS
before=$(runs_in_out)
TRAINER_STEPS=5000 LATENTLAPSE_OUT=$out compose up >"$work/down.log" 2>&1 &
up_pid=$!
downrun=$(first_frame_of_new_run "$up_pid" down $before)
LATENTLAPSE_OUT=$out compose down >"$work/down-cmd.log" 2>&1 || fail "docker compose down exited $? (see $work/down-cmd.log)"
wait "$up_pid" || true
log "docker compose down during run $downrun"
assert_site "$downrun" stopped 1
grep -q '"reason": "stopped by SIGTERM after ' "$out/$downrun/state.json" \
    || fail "state.json of run $downrun does not say it was stopped by SIGTERM"
grep -q 'stopped by SIGTERM after ' "$out/$downrun/index.html" || fail "the site of run $downrun does not say why it stopped"
grep -q 'id="auto-refresh"' "$out/$downrun/index.html" && fail "the stopped site of run $downrun still reloads itself"
[ "$(site_sum "$first")" = "$first_sum" ] || fail "the first run's site changed during the down scenario"
phase_done "scenario compose down" "$t"

# --- 8. scenario: the s3 profile -------------------------------------------------------------------
t=$SECONDS
before=$(runs_in_out)
# Naming the three services makes `up` return when they are done (the server keeps running until `down`).
LATENTLAPSE_OUT=$out compose --env-file docker/s3.env up trainer reporter result >"$work/s3.log" 2>&1 \
    || fail "docker compose up with the s3 profile exited $? (see $work/s3.log)"
s3run=$(runs_in_out | grep -vxF "$before" || true)
[ "$(printf '%s' "$s3run" | grep -c .)" = 1 ] || fail "expected one new run folder from the s3 profile, found: ${s3run:-none}"
grep -q "latentlapse: run $s3run: tensors on the S3 server at s3://latentlapse/$s3run" "$work/s3.log" \
    || fail "the trainer did not write to the S3 server (see $work/s3.log)"
assert_site "$s3run" finished 2
grep -q "latentlapse: run $s3run finished" "$work/s3.log" || fail "compose did not print the result line"
# The tensors went to S3, not to the volume; the site shows no credential.
docker run --rm -v "${project}_tensors:/store:ro" --entrypoint sh "latentlapse-reporter:latest" \
    -c "test ! -e /store/$s3run" || fail "the s3 run also wrote tensors to the volume"
grep -rqF "latentlapse-local-only-secret" "$out/$s3run" && fail "the site shows the S3 secret key"
[ "$(site_sum "$first")" = "$first_sum" ] || fail "the s3 run changed the first run's site"
phase_done "scenario s3 profile" "$t"

# --- 9. scenario: compare the two runs of 5 and 5b with the documented one-liner (docs/docker.md) ---
t=$SECONDS
LATENTLAPSE_OUT=$out compose run --rm --no-deps --entrypoint latentlapse-compose reporter compare "$first" "$again" \
    >"$work/compare.log" 2>&1 || fail "the compare one-liner exited $? (see $work/compare.log)"
made="$out/compare/$first-vs-$again"
[ -f "$made/index.html" ] && [ -f "$made/comparison.gif" ] && [ -f "$made/figure.pdf" ] \
    || fail "the compare one-liner wrote no complete comparison in $made (see $work/compare.log)"
python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); assert c["shared_points"] > 0 and len(c["runs"]) == 2, c' \
    "$made/compare.json" || fail "$made/compare.json does not hold two aligned runs"
[ "$(stat -c %u "$made/index.html")" = "$(stat -c %u "$repo")" ] || fail "the comparison is not owned by the project's owner"
grep -q "compare/$first-vs-$again/index.html" "$out/index.html" || fail "./out/index.html does not link the comparison"
[ "$(site_sum "$first")" = "$first_sum" ] || fail "the comparison changed the first run's site"
phase_done "scenario compare" "$t"

log "phases:"
printf '[docker-e2e]   %s\n' "${timings[@]}"
log "docker e2e: 7 scenarios passed in $((SECONDS - start)) s"
