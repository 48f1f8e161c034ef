"""Which engine computes the embedding: openTSNE, or the optional C accelerator where it is built.

openTSNE is the engine and the reference: its bandwidth search, its Barnes-Hut and FFT
gradients and its gradient descent (``TSNEEmbedding.optimize``). ``reporter/embedding/_kernels.c``
is an optional accelerator of the same steps, built when a C compiler is at hand at install
time (setup.py skips it, with one line, when none is). When it is built it is used, unless
``LATENTLAPSE_ENGINE`` says otherwise:

- ``auto`` (the default): the accelerator when built, else openTSNE;
- ``opentsne``: openTSNE, even where the accelerator is built;
- ``c``: the accelerator, and an error where it is not built.

The two engines agree within the tolerances that tests/test_engine.py states; each gives
bit-identical outputs for equal inputs on one machine, so a report never changes engine on a
resume unless the environment does. Modules that can use the accelerator read :data:`KERNELS` at
call time (``accelerator.KERNELS``), so :func:`opentsne_path` switches all of them at once.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

try:
    from reporter.embedding import _kernels as _built
except ImportError:  # not compiled: the install had no C compiler, or the checkout was never built
    _built = None

ENGINE_ENV = "LATENTLAPSE_ENGINE"
ENGINES = ("auto", "opentsne", "c")


def _choose(value, built):
    """(the kernels module or None, a one-line problem or None) for an engine setting."""
    value = (value or "auto").strip().lower()
    if value not in ENGINES:
        return None, f"{ENGINE_ENV}={value!r} is not an engine: use one of {', '.join(ENGINES)}"
    if value == "c" and built is None:
        return None, (f"{ENGINE_ENV}=c, but the C accelerator (reporter/embedding/_kernels.c) is not built: "
                      "install with a C compiler and Python's headers, or unset it to run on openTSNE")
    return (None if value == "opentsne" else built), None


KERNELS, PROBLEM = _choose(os.environ.get(ENGINE_ENV), _built)


def engine() -> str:
    """The engine in use, in words (the reporter logs it once)."""
    if KERNELS is not None:
        return "openTSNE's algorithms with the C accelerator (reporter/embedding/_kernels.c)"
    why = "not built" if _built is None else f"{ENGINE_ENV}=opentsne"
    return f"openTSNE (the C accelerator: {why})"


def built() -> bool:
    """Whether the C accelerator is compiled into this install (used or not)."""
    return _built is not None


@contextmanager
def _using(kernels):
    global KERNELS
    saved, KERNELS = KERNELS, kernels
    try:
        yield
    finally:
        KERNELS = saved


def opentsne_path():
    """Run a ``with`` block on openTSNE's path whether or not the accelerator is built (tests, benchmarks)."""
    return _using(None)


def accelerated_path():
    """Run a ``with`` block with the C accelerator; raises RuntimeError where it is not built."""
    if _built is None:
        raise RuntimeError("the C accelerator (reporter/embedding/_kernels.c) is not built")
    return _using(_built)
