"""Space kept in reserve beside a report, so that a full disk can still be reported on the site.

When the disk fills during a frame, the reporter releases the reserve and writes its final
"failed" state and page into the space it frees; without it the page would keep saying
"running". The reserve is a hidden file in the output folder (``.latentlapse-reserve``), made
again at the next start.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from latentlapse import report_layout as layout

RESERVE_FILE = layout.RESERVE
# At least this much, and at least twice what one save writes (state.json, index.html, metrics.csv).
MIN_BYTES = 1024 * 1024
SAVED_FILES = layout.SAVED_EACH_FRAME


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says the device (or a file-size limit) has no room left."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Reserve:
    """A file of ``size`` bytes, really allocated, in ``folder``."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / RESERVE_FILE

    def needed(self) -> int:
        """Twice what one save writes now, at least MIN_BYTES."""
        saved = 0
        for name in SAVED_FILES:
            try:
                saved += (self.path.parent / name).stat().st_size
            except OSError:
                pass
        return max(MIN_BYTES, 2 * saved)

    def keep(self) -> None:
        """Grow the reserve to :meth:`needed` bytes (never shrinks it); raises OSError on a full disk."""
        size = self.needed()
        try:
            held = self.path.stat().st_size
        except FileNotFoundError:
            held = 0
        if held >= size:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            # Blocks really allocated (a sparse file would free nothing when removed).
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            os.ftruncate(fd, 0)  # a filesystem without fallocate: write the bytes
            os.write(fd, bytes(size))
        finally:
            os.close(fd)

    def release(self) -> None:
        """Give the reserved space back (to write the final state into)."""
        self.path.unlink(missing_ok=True)
