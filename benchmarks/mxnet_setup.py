"""Running MXNet in a benchmark the way the trainer runs it (shared by the training studies).

``set_threads`` must run before MXNet is imported: the thread count is fixed at import.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The same model in PyTorch, run under its own Python (--torch-python).
PEER = ROOT / "benchmarks" / "torch_peer.py"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def set_threads(threads: int) -> None:
    """What trainer/cli.py does before MXNet is imported. MKLDNN stays at MXNet's default (on), as
    in the trainer."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
