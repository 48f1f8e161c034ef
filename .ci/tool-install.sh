#!/usr/bin/env bash
# `uv tool install` and `pipx install` from the checkout, as README's "The reporter in your own
# Python environment" says: each gives a `latentlapse` command in its own venv, on another Python
# (3.13 here), that reports the committed PyTorch trial to a finished site.
# Usage: .ci/tool-install.sh [PYTHON]   (default: python3.13 from PATH or pyenv)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source .ci/other-python.sh "${1:-}"
work=$(mktemp -d /tmp/latentlapse-tool-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
roles=(--latent-regex '^encoder_output_0$' --labels-regex '^labels$' --inputs-regex '^ConvAutoencoder_input_0$'
       --recon-regex '^decoder_output_0$' --loss-regex '^PerSampleMSE_output_0$')

check_site() {  # check_site TOOL BIN_DIR
    local tool=$1 bin=$2
    "$bin/latentlapse" --version
    (cd "$work" && "$bin/latentlapse" report --tensors "$repo/tests/trials/torch-conv" --out "$work/site-$tool" "${roles[@]}" \
        >"$work/$tool.log" 2>&1) || { tail -n 20 "$work/$tool.log"; exit 1; }
    "$python" - "$work/site-$tool/state.json" "$tool" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
assert state["status"] == "finished" and len(state["frames"]) == 3, (state["status"], len(state["frames"]))
print(f"tool-install: {sys.argv[2]}: finished site, {len(state['frames'])} frames")
PY
}

# uv: the project's own pinned uv (in .venv), its tools and executables kept in the work folder.
UV_TOOL_DIR=$work/uv-tools UV_TOOL_BIN_DIR=$work/uv-bin .venv/bin/uv tool install --quiet --python "$python" "$repo[reporter]"
check_site uv "$work/uv-bin"

# pipx, itself installed from the registry into a throwaway venv.
"$python" -m venv "$work/pipx-venv"
"$work/pipx-venv/bin/pip" install --quiet --disable-pip-version-check pipx==1.18.4
PIPX_HOME=$work/pipx-home PIPX_BIN_DIR=$work/pipx-bin "$work/pipx-venv/bin/pipx" install --quiet --python "$python" "$repo[reporter]"
check_site pipx "$work/pipx-bin"
