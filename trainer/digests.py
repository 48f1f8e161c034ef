"""The trainer's half of the end-to-end check: a digest of every tensor the hook writes at an EVAL step.

:func:`digesting_hook` is smdebug's MXNet hook that also remembers, per EVAL step, the digest of
each array it hands to smdebug's writer (the very array serialised, so nothing is computed
twice); the training loop writes them beside the store after each EVAL pass with
:func:`write_step_digests`. See latentlapse/digests.py and docs/architecture.md.
"""

from __future__ import annotations

from latentlapse.contract import DIGEST_DIR
from latentlapse.digests import digest_file, step_digests, tensor_digest


_HOOK_CLASS = None


def digesting_hook():
    """smdebug.mxnet.Hook's subclass that keeps EVAL digests (made on first use: smdebug imports slowly)."""
    global _HOOK_CLASS
    if _HOOK_CLASS is not None:
        return _HOOK_CLASS
    from smdebug.core.modes import ModeKeys
    from smdebug.mxnet import Hook

    class DigestingHook(Hook):
        """smdebug's MXNet hook; at EVAL steps it also keeps each written tensor's digest."""

        def _write_raw_tensor_simple(self, tensor_name, tensor_value, tensor_ref=None, timestamp=None):
            array = self._make_numpy_array(tensor_value)  # smdebug converts the same way just below
            if self.mode == ModeKeys.EVAL and not self.dry_run and array.size > 0:
                step = self.mode_steps[self.mode]
                self.__dict__.setdefault("_eval_digests", {}).setdefault(step, {})[tensor_name] = \
                    tensor_digest(array)
            super()._write_raw_tensor_simple(tensor_name, array, tensor_ref=tensor_ref, timestamp=timestamp)

        def take_eval_digests(self) -> dict:
            """{EVAL step: {tensor name: digest}} kept since the last call."""
            return self.__dict__.pop("_eval_digests", {})

    _HOOK_CLASS = DigestingHook
    return _HOOK_CLASS


def write_step_digests(hook, write_json) -> list[int]:
    """Write the digests the hook kept, one file per EVAL step, with ``write_json(relative path, obj)``.

    ``write_json`` must write atomically (readers poll the store). Returns the steps written.
    """
    steps = []
    for step, tensors in sorted(hook.take_eval_digests().items()):
        write_json(digest_file(DIGEST_DIR, step), step_digests("EVAL", step, tensors))
        steps.append(step)
    return steps
