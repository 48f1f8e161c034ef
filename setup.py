"""Build hook: the optional C accelerator (reporter/embedding/_kernels.c).

Everything else is declared in pyproject.toml. The extension is optional, as in scientific
Python projects with a small C core: where no C compiler (or no Python headers) is at hand, the
build skips it with one line and the reporter runs on openTSNE's path
(reporter/embedding/accelerator.py). Set LATENTLAPSE_REQUIRE_ACCELERATOR=1 to make a failed
compile fail the install instead (CI and the Docker images do).
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = "LATENTLAPSE_REQUIRE_ACCELERATOR"


class OptionalBuildExt(build_ext):
    """build_ext that skips an extension it cannot compile, saying so in one line."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all: distutils' errors are not one class
            self._skipped(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skipped(exc)

    def _skipped(self, exc):
        if os.environ.get(REQUIRE) == "1":
            raise
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        print(f"latentlapse: the C accelerator (reporter/embedding/_kernels.c) was skipped ({reason}); "
              "the reporter runs on openTSNE's path", file=sys.stderr)


# -fopenmp-simd lets the compiler vectorise the loops (no threads, no fast-math); -fno-wrapv undoes
# the -fwrapv of Python's own flags, which stops that (measured: 1.7 ms instead of 0.65 ms a gradient
# at 1,000 points); -ffp-contract=off: no fused multiply-adds, the same rounding as NumPy's on every CPU.
SOURCE = "reporter/embedding/_kernels.c"
COMPILE_ARGS = ["-O3", "-fopenmp-simd", "-fno-wrapv", "-ffp-contract=off"]
KERNELS = Extension("reporter.embedding._kernels", sources=[SOURCE], extra_compile_args=COMPILE_ARGS)

setup(ext_modules=[KERNELS], cmdclass={"build_ext": OptionalBuildExt})
