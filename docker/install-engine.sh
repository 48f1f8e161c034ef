#!/usr/bin/env bash
# Install a Docker engine, compose v2 and buildx on a Debian bookworm machine where they are missing.
#
# Usage (as root):  docker/install-engine.sh
#
# - dockerd, containerd, runc and debootstrap come from the machine's own apt sources (Debian's docker.io).
# - Debian bookworm only packages compose v1, so compose v2 and buildx come from Debian trixie's
#   docker-compose and docker-buildx packages (static Go binaries; they need libc6 >= 2.34 only).
#   They are fetched through a PRIVATE apt state (own sources list, lists and cache folders) that
#   names the trixie suite of the mirror the machine already uses: the system's sources stay untouched.
# - Nothing here names a mirror: docker/debian-mirror.sh reads it from the machine's apt sources at
#   run time (DEBIAN_MIRROR=URL overrides it).
#
# Does nothing for a part that is already there. Prints how long each part took.
set -euo pipefail

log() { printf '[install-engine] %s\n' "$*" >&2; }
die() { printf '[install-engine] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages)"
command -v apt-get >/dev/null || die "this script installs Debian packages; on another system install Docker Engine, compose v2 and buildx from your distribution"

export DEBIAN_FRONTEND=noninteractive

has_plugin() { docker "$1" version >/dev/null 2>&1; }

t0=$SECONDS

# 1. Engine and debootstrap from the machine's own suite.
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
# The docker.io package brings its own CLI; a CLI that is already installed stays first on PATH.
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from the machine's apt sources"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
log "engine: $(dockerd --version) ($((SECONDS - t0)) s)"

# 2. compose v2 and buildx from trixie, through a private apt state.
t1=$SECONDS
want=()
has_plugin compose || want+=(docker-compose)
has_plugin buildx || want+=(docker-buildx)
if [ ${#want[@]} -gt 0 ]; then
    mirror=${DEBIAN_MIRROR:-$("$(dirname "$0")/debian-mirror.sh")}
    state=$(mktemp -d /tmp/latentlapse-apt.XXXXXX)
    trap 'rm -rf "$state"' EXIT
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f "$keyring" ] || die "missing $keyring: apt-get install debian-archive-keyring"
    printf 'deb [signed-by=%s] %s trixie main\n' "$keyring" "$mirror" >"$state/sources.list"
    apt_private=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
        -o "APT::Sandbox::User=root")
    log "fetching ${want[*]} from the trixie suite of the machine's mirror (private apt state)"
    apt-get "${apt_private[@]}" update -qq
    (cd "$state/debs" && apt-get "${apt_private[@]}" download "${want[@]}" >/dev/null)
    # Both depend on libc6 (>= 2.34) only (bookworm has 2.36); they install into /usr/libexec/docker/cli-plugins.
    dpkg -i "$state/debs"/*.deb >/dev/null
    has_plugin compose || die "docker compose still missing after installing docker-compose from trixie"
    has_plugin buildx || die "docker buildx still missing after installing docker-buildx from trixie"
fi
log "$(docker compose version) ; buildx $(docker buildx version | awk '{print $2}') ($((SECONDS - t1)) s)"
log "done in $((SECONDS - t0)) s"
