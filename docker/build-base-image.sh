#!/usr/bin/env bash
# Build a Python 3.11 base image from Debian packages, for machines that cannot pull from an image registry.
#
# Usage (as root, with a running Docker engine and debootstrap installed):
#     docker/build-base-image.sh [TAG]        # TAG defaults to latentlapse-base:bookworm
# then build the services on it:
#     LATENTLAPSE_BASE_IMAGE=latentlapse-base:bookworm docker compose build
#
# debootstrap makes a minimal Debian bookworm root file system from the machine's own Debian mirror
# (read from its apt sources by docker/debian-mirror.sh, or DEBIAN_MIRROR=URL) holding python3,
# python3-venv and ca-certificates: Debian bookworm's python3 is 3.11, like the default
# python:3.11-slim-bookworm base. `docker import` turns the folder into an image. The Dockerfile's build
# stage adds the compiler and headers (from the image's apt source, the same mirror) only where they
# are missing. BASE_PACKAGES=a,b,c replaces the package list. Needs the Debian mirror, no registry.
set -euo pipefail

tag=${1:-latentlapse-base:bookworm}
suite=${DEBIAN_SUITE:-bookworm}
here=$(cd "$(dirname "$0")" && pwd)
packages=${BASE_PACKAGES:-python3,python3-venv,ca-certificates}

log() { printf '[build-base-image] %s\n' "$*" >&2; }
die() { printf '[build-base-image] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap (or run docker/install-engine.sh)"
docker info >/dev/null 2>&1 || die "no Docker engine answers: start dockerd first"
mirror=${DEBIAN_MIRROR:-$("$here/debian-mirror.sh")}

root=$(mktemp -d /tmp/latentlapse-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

t0=$SECONDS
log "debootstrap $suite (minbase + $packages)"
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
    tail -n 20 "$root.log" >&2
    die "debootstrap failed (full log: $root.log)"
fi
rm -f "$root.log"
# What the image does not need at run time: downloaded packages and package lists.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/log/*
log "root file system ready ($((SECONDS - t0)) s, $(du -sh "$root" | cut -f1))"

t1=$SECONDS
tar --numeric-owner -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' \
    -m "Debian $suite minbase + python3 (latentlapse docker/build-base-image.sh)" \
    - "$tag" >/dev/null
log "imported as $tag ($((SECONDS - t1)) s); $(docker run --rm "$tag" python3 --version)"
