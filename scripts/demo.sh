#!/usr/bin/env bash
# The demo: the trainer and the reporter side by side, as docker compose runs them, in a new run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
run="runs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run"
echo "demo: run folder $run (tensors in $run/tensors, site in $run/site)"

# One core each: MXNet slows down sharply when its threads compete with a busy neighbour.
"$PY" -m trainer --out "$run/tensors" --threads 1 "$@" > "$run/trainer.log" 2>&1 &
trainer=$!
trap 'kill "$trainer" 2>/dev/null || true' INT TERM

status=0
"$PY" -m reporter --tensors "$run/tensors" --out "$run/site" --follow --threads 1 \
  --runs-index runs/index.html || status=$?
if ! wait "$trainer"; then
  echo "demo: the trainer failed; its log:" >&2
  tail -n 20 "$run/trainer.log" >&2
  exit 1
fi
[ "$status" -eq 0 ] || exit "$status"
ln -sfn "$(basename "$run")" runs/latest
echo
echo "demo: open $run/site/index.html  (GIF: $run/site/latentlapse.gif; every run: runs/index.html)"
echo "demo: video $run/site/latentlapse.mp4, paper figure $run/site/figure.pdf"
