#!/usr/bin/env bash
# Print the Debian mirror this machine's apt uses (first non-security URI), without a trailing slash.
#
# Read from /etc/apt/sources.list.d/*.sources (deb822 "URIs:" lines) or /etc/apt/sources.list,
# so that no mirror host is ever written into the repository. Exits 1 with one line if none is found.
set -euo pipefail

uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -v -- '-security' | head -n1 || true)
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    # One-line format: "deb [options] URI suite components"; skip the bracketed options.
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i !~ /=/) { print $i; break } }' \
        /etc/apt/sources.list | grep -v -- '-security' | head -n1 || true)
fi
if [ -z "$uri" ]; then
    echo "error: no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set DEBIAN_MIRROR=URL" >&2
    exit 1
fi
printf '%s\n' "${uri%/}"
