"""Checking what smdebug returns against the digests the trainer wrote beside the store.

A store whose run file names a digest folder (``"digests"``: our trainer) has one JSON file per
EVAL step (latentlapse/digests.py); every tensor a frame is made from is checked against it, and
a mismatch is an error of the step (retried: an S3 read may race a write, then skipped with the
reason). Stores without digests (other trainers, older runs) are read as before and the frames
are marked not checked.
"""

from __future__ import annotations

import json
from pathlib import Path

from latentlapse.contract import RunInfo
from latentlapse.digests import digest_file, mismatch
from latentlapse.s3 import is_s3

NOT_MATCHING = "data does not match what the trainer wrote"


class StepDamaged(Exception):
    """The files of a step are not what the trainer wrote (truncated, overwritten, or not matching its digest)."""


class DigestCheck:
    """The trainer's digests of one store, read per step as needed.

    Parameters
    ----------
    store : str
        The store's path or ``s3://`` URL.
    """

    def __init__(self, store: str):
        self.store = store.rstrip("/")
        self.folder: str | None = None       # from the run file; None: the store has no digests
        self._cache: dict[int, dict] = {}

    def follow_run_info(self, info: RunInfo | None) -> None:
        """Take the digest folder the trainer's run file names (if any)."""
        folder = info.digests if info is not None else None
        if isinstance(folder, str) and folder and ".." not in folder and not folder.startswith("/"):
            self.folder = folder

    def check(self, step: int, arrays: dict) -> bool:
        """Check ``arrays`` ({tensor name: array}) of EVAL ``step``; True if checked, False if no digests.

        Raises
        ------
        StepDamaged
            With the reason in words, if the trainer's digest file is missing or any array differs.
        """
        if self.folder is None:
            return False
        recorded = self._digests(step)
        if recorded is None:
            raise StepDamaged(f"{NOT_MATCHING}: its digest file {digest_file(self.folder, step)} is missing")
        for name, array in sorted(arrays.items()):
            wrong = mismatch(name, recorded.get(name), array)
            if wrong is not None:
                self._cache.pop(step, None)  # read again on the next try
                raise StepDamaged(f"{NOT_MATCHING} ({wrong})")
        return True

    def _digests(self, step: int) -> dict | None:
        if step not in self._cache:
            found = self._read(digest_file(self.folder, step))
            if found is None:
                return None
            self._cache[step] = found.get("tensors") or {}
        return self._cache[step]

    def _read(self, relative: str) -> dict | None:
        """The digest file at ``relative`` in the store, None if it is missing; read the same way
        from a folder and from S3, so a damaged file is a damaged step on both."""
        if is_s3(self.store):
            from reporter.trial import s3

            body = s3.read_bytes(f"{self.store}/{relative}")
        else:
            try:
                body = Path(self.store, relative).read_bytes()
            except FileNotFoundError:
                body = None
        if body is None:
            return None
        try:
            found = json.loads(body)
        except ValueError as exc:
            raise StepDamaged(f"{NOT_MATCHING}: its digest file {relative} is not JSON ({exc})") from None
        if not isinstance(found, dict):
            raise StepDamaged(f"{NOT_MATCHING}: its digest file {relative} holds no JSON object")
        return found
