"""``cpp``, ``cpp-parallel``, ``cpp-simd``: the C++ extension ``gradi._native`` (native/).

The extension is compiled by ``pip install .``; these wrappers only pick its entry point. Each
entry point works on the numpy buffers themselves (zero copy, X updated in place, GIL released)
and checks them again, so a direct call with a wrong buffer raises instead of crashing.
"""

import importlib
import importlib.util

from .base import Backend, State


def _native():
    """The compiled module; ImportError saying so when it was not built."""
    try:
        return importlib.import_module("gradi._native")
    except ImportError as exc:
        raise ImportError(f"C++ extension not built: {exc}") from exc


class _Cpp(Backend):
    """Shared by the three C++ backends: load the module, call ``entry(X, D, lr, niter[, threads])``."""

    language = "C++"
    entry = ""
    native = None

    def installed(self):
        if importlib.util.find_spec("gradi._native") is None:
            return "C++ extension not built (pip install . compiles it from native/)"
        return None

    def load(self):
        module = _native()
        if self.parallel and not module.has_openmp():
            raise ImportError("built without OpenMP")
        self.native = module

    def prepare(self, problem, threads):
        if self.native is None:
            self.load()
        return State(problem, threads)

    def descend(self, state, X, niter):
        run = getattr(self.native, self.entry)
        problem = state.problem
        if self.parallel:
            run(X, problem.D, problem.lr, niter, state.threads)
        else:
            run(X, problem.D, problem.lr, niter)
        return X


class Cpp(_Cpp):
    name = "cpp"
    tier = "seed"
    entry = "descend"
    summary = "Eigen matrices over the numpy buffers, plain loops, one thread"
    sources = ("native/src/seed.hpp", "native/src/module.cpp", "gradi/backends/cpp.py")

    def working_bytes(self, n, dim, itemsize, threads):
        return n * dim * itemsize  # the gradient


class CppParallel(Cpp):
    name = "cpp-parallel"
    parallel = True
    entry = "descend_parallel"
    summary = "the cpp loops with OpenMP over rows, exactly `threads` threads"


class CppSimd(_Cpp):
    name = "cpp-simd"
    tier = "tuned"
    parallel = True
    entry = "descend_simd"
    summary = ("structure of arrays, D^2 precomputed, SIMD over j (AVX-512/AVX2 chosen at run "
               "time), OpenMP over rows")
    sources = ("native/src/simd.cpp", "native/src/simd_kernel.hpp", "native/src/module.cpp",
               "gradi/backends/cpp.py")

    def working_bytes(self, n, dim, itemsize, threads):
        lanes = 64 // itemsize
        stride = -(-n // lanes) * lanes  # rows padded to whole 64-byte vectors
        d2 = n * stride * itemsize
        if d2 >= 4 << 20:  # large buffers are rounded up to whole 2 MiB huge pages
            d2 = -(-d2 // (2 << 20)) * (2 << 20)
        # D^2, positions before and after a step (+ a few KB of accumulators per thread if dim > 8)
        return d2 + 2 * dim * stride * itemsize


BACKENDS = [Cpp(), CppParallel(), CppSimd()]
