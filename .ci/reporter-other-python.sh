#!/usr/bin/env bash
# The reporter installed into another Python with numpy 2, as a user installs it into their own
# environment: a fresh venv, `pip install ".[reporter]"` (ranges, not the 3.11 lock). Then:
#   - the latentlapse command's tests (tests/test_cli.py: a finished site from the PyTorch trial);
#   - a store written by our trainer (Python 3.11, .venv) reported by both Pythons: the same frames,
#     the embeddings equal within REL_TOL of the layout's extent (numpy versions may round apart).
# Usage: .ci/reporter-other-python.sh [PYTHON]   (default: python3.13 from PATH or pyenv)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
REL_TOL=1e-6

source .ci/other-python.sh "${1:-}"
work=$(mktemp -d /tmp/latentlapse-other-python.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
py=$work/venv/bin/python
"$py" -m pip install --quiet --disable-pip-version-check "$repo[reporter]" pytest==8.4.2 pytest-timeout==2.4.0
"$py" -c 'import sys, numpy; print(f"reporter-other-python: Python {sys.version.split()[0]}, numpy {numpy.__version__}"); sys.exit(int(numpy.__version__.split(".")[0]) < 2 and "numpy 2 expected")'

# Outside the checkout, so that the installed package is imported, not the source tree.
(cd "$work" && "$py" -m pytest -q -p no:cacheprovider --rootdir "$repo" -c "$repo/pyproject.toml" "$repo/tests/test_cli.py")

.venv/bin/latentlapse train --out "$work/store" --steps 60 --eval-every 20 --probe-size 200 >"$work/train.log" 2>&1 \
    || { tail -n 20 "$work/train.log"; exit 1; }
.venv/bin/latentlapse report --tensors "$work/store" --out "$work/site-3.11" >"$work/report-3.11.log" 2>&1 \
    || { tail -n 20 "$work/report-3.11.log"; exit 1; }
(cd "$work" && "$work/venv/bin/latentlapse" report --tensors "$work/store" --out "$work/site-other" >"$work/report-other.log" 2>&1) \
    || { tail -n 20 "$work/report-other.log"; exit 1; }
.venv/bin/python - "$work/site-3.11" "$work/site-other" "$REL_TOL" <<'PY'
import json, sys
from pathlib import Path
import numpy as np

ref, other, tol = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
a, b = (json.loads((p / "state.json").read_text()) for p in (ref, other))
assert a["status"] == b["status"] == "finished", (a["status"], b["status"])
assert [f["step"] for f in a["frames"]] == [f["step"] for f in b["frames"]] and a["frames"], "frames differ"
worst = 0.0
for fa, fb in zip(a["frames"], b["frames"]):
    with np.load(ref / fa["npz"]) as x, np.load(other / fb["npz"]) as y:
        for key in x.files:
            if key != "embedding":
                assert np.array_equal(x[key], y[key]), f"{fa['npz']}: {key} differs"
        worst = max(worst, float(np.abs(x["embedding"] - y["embedding"]).max() / np.ptp(x["embedding"])))
assert worst <= tol, f"embeddings differ by {worst:.3g} of the extent (tolerance {tol:g})"
print(f"reporter-other-python: {len(a['frames'])} frames of our trainer's store, embeddings within "
      f"{worst:.2g} of the extent of the 3.11 run's")
PY

# The two reports of the same store compared, by the other Python's latentlapse: the panels align
# to nothing left over (the same latents, the same seed: the same maps within REL_TOL).
(cd "$work" && "$work/venv/bin/latentlapse" compare site-3.11 site-other --out "$work/compare" >"$work/compare.log" 2>&1) \
    || { tail -n 20 "$work/compare.log"; exit 1; }
"$py" - "$work/compare/compare.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
worst = max(info["runs"][1]["residuals"])
assert info["shared_points"] == 200 and worst < 1e-4, (info["shared_points"], worst)
print(f"reporter-other-python: latentlapse compare of the two reports: 200 shared points, residual at most {worst:.2g}")
PY
