"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file another process may read (the run file, state.json, frames, the GIF, the compose
run name) is written through here: a temporary file in the same folder, flushed to disk, then
renamed over the target.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]


def write_bytes(path: PathLike, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    Parameters
    ----------
    path : str or path-like
        The file to replace; its folder is created if missing.
    data : bytes
        The whole new content.
    mode : int
        Permissions of the published file (mkstemp makes 0600 files; published files are
        readable like any other unless a caller asks otherwise, e.g. 0600 for secrets).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, str(path))
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text(path: PathLike, text: str, mode: int = 0o644) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"), mode)


def json_text(obj) -> str:
    """``obj`` as the project's JSON files hold it: indented, sorted keys, no NaN, a final newline."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: PathLike, obj, mode: int = 0o644) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    Raises
    ------
    ValueError
        If ``obj`` holds NaN or infinity (JSON has no such numbers): nothing is written then.
    """
    write_text(path, json_text(obj), mode)
