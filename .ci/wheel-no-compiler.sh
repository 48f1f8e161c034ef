#!/usr/bin/env bash
# A wheel and an sdist (python -m build), each installed where no C compiler can be found, then a
# finished site from the committed PyTorch trial:
#   - the wheel carries the built C accelerator: it installs and runs without a compiler;
#   - the sdist's install skips the accelerator with one line and the reporter runs on openTSNE's path.
# "No compiler": PATH holds only the venv's and Python's own bin folders (no cc, gcc, ld), CC and
# LDSHARED point at a file that does not exist. One dependency is not ours: smdebug 1.0.34 needs
# pyinstrument 3.4.2, whose pyinstrument-cext is an sdist only on PyPI; its wheel is built first,
# with the compiler, as a user without one would take it from a wheelhouse (docs/install.md says so).
# Usage: .ci/wheel-no-compiler.sh   (python3.11 from PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d /tmp/latentlapse-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
python=${PYTHON:-python3.11}

"$python" -m venv "$work/build-env"
"$work/build-env/bin/pip" install --quiet --disable-pip-version-check build==1.3.0
# From a copy of the tracked files: no .venv, no locally built extension in the sdist.
git -C "$repo" archive --format=tar HEAD | tar -x -C "$work" --one-top-level=src
"$work/build-env/bin/python" -m build --outdir "$work/dist" "$work/src" >"$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/latentlapse-*.whl)
sdist=$(ls "$work"/dist/latentlapse-*.tar.gz)
unzip -l "$wheel" >"$work/wheel.list"; tar -tzf "$sdist" >"$work/sdist.list"  # (grep -q on a pipe: SIGPIPE)
grep -q 'reporter/embedding/_kernels.*\.so' "$work/wheel.list" || { echo "wheel-no-compiler: the wheel has no accelerator"; exit 1; }
grep -q 'reporter/embedding/_kernels\.c$' "$work/sdist.list" || { echo "wheel-no-compiler: the sdist has no _kernels.c"; exit 1; }
grep -q '/setup\.py$' "$work/sdist.list" || { echo "wheel-no-compiler: the sdist has no setup.py"; exit 1; }
for f in reporter/compare/cli.py reporter/site_template/compare.html.j2 reporter/site_template/runs.js; do
    grep -q " $f\$" "$work/wheel.list" || { echo "wheel-no-compiler: the wheel has no $f"; exit 1; }
done
"$work/build-env/bin/pip" wheel --quiet --disable-pip-version-check --no-deps pyinstrument-cext==0.2.4 -w "$work/wheelhouse"

no_compiler() {  # a command with no C compiler in reach
    local venv=$1; shift
    env PATH="$venv/bin:$(dirname "$(readlink -f "$(command -v "$python")")")" CC=/nonexistent/cc \
        LDSHARED=/nonexistent/cc "$@"
}
for cc in cc gcc; do
    if no_compiler "$work/build-env" sh -c "command -v $cc" >/dev/null 2>&1; then
        echo "wheel-no-compiler: $cc is still on the restricted PATH"; exit 1
    fi
done

report() {  # venv name: install done; report the PyTorch trial to a finished site
    local venv=$work/$1
    (cd "$work" && no_compiler "$venv" "$venv/bin/latentlapse" report --tensors "$repo/tests/trials/torch-conv" \
        --out "$work/site-$1" --latent-regex '^encoder_output_0$' --labels-regex '^labels$' \
        --inputs-regex '^ConvAutoencoder_input_0$' --recon-regex '^decoder_output_0$' \
        --loss-regex '^PerSampleMSE_output_0$' >"$work/report-$1.log" 2>&1) \
        || { tail -n 20 "$work/report-$1.log"; exit 1; }
    "$venv/bin/python" - "$work/site-$1" <<'PY'
import json, sys
from pathlib import Path
site = Path(sys.argv[1])
state = json.loads((site / "state.json").read_text())
assert state["status"] == "finished" and len(state["frames"]) == 3, (state["status"], len(state["frames"]))
assert (site / "index.html").is_file() and (site / "latentlapse.gif").stat().st_size > 0
PY
    # latentlapse compare from the installed package: the site compared with itself.
    (cd "$work" && "$venv/bin/latentlapse" compare "site-$1" "site-$1" --out "compare-$1" >"$work/compare-$1.log" 2>&1) \
        || { tail -n 20 "$work/compare-$1.log"; exit 1; }
    [ -s "$work/compare-$1/index.html" ] && [ -s "$work/compare-$1/comparison.gif" ] \
        || { echo "wheel-no-compiler: $1: compare wrote no site"; exit 1; }
}

for kind in wheel sdist; do
    venv=$work/$kind
    "$python" -m venv "$venv"
    target=$wheel; [ "$kind" = sdist ] && target=$sdist
    no_compiler "$venv" "$venv/bin/pip" install -v --disable-pip-version-check --find-links "$work/wheelhouse" \
        "$target[reporter]" >"$work/install-$kind.log" 2>&1 || { tail -n 30 "$work/install-$kind.log"; exit 1; }
    built=$(cd "$work" && "$venv/bin/python" -c 'from reporter.embedding import accelerator; print(accelerator.built())')
    skipped=$(grep -c "latentlapse: the C accelerator (reporter/embedding/_kernels.c) was skipped" "$work/install-$kind.log" || true)
    if [ "$kind" = wheel ]; then
        [ "$built" = True ] && [ "$skipped" = 0 ] || { echo "wheel-no-compiler: the wheel's accelerator is missing"; exit 1; }
    else
        [ "$built" = False ] && [ "$skipped" -ge 1 ] || { echo "wheel-no-compiler: the sdist did not skip the accelerator in one line (built=$built)"; exit 1; }
        grep -m1 "latentlapse: the C accelerator" "$work/install-$kind.log" | sed 's/^ *//'
    fi
    report "$kind"
    grep -h "embedding engine:" "$work/report-$kind.log" | sed "s/^.*embedding engine:/wheel-no-compiler: $kind, no compiler: embedding engine:/"
done
echo "wheel-no-compiler: $(basename "$wheel") and $(basename "$sdist") installed without a C compiler; both gave a finished site"
