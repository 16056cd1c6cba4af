"""``cpp``, ``cpp-parallel``, ``cpp-simd``: the C++ extension ``gradi._native`` (native/).

The extension is compiled by ``pip install .``. ``GRADI_CPP_ISA`` (``avx512``, ``avx2`` or
``baseline``; default: the widest this CPU runs) forces cpp-simd's kernel, so that one machine can
measure the narrower instruction set's path too; a kernel this CPU cannot run makes cpp-simd
unavailable, with the reason. Each backend's ``prepare`` builds one native
state object for the solve (``SeedState`` or ``SimdState``: D or D^2 in the kernel's layout,
scratch, the thread count), which every ``descend`` reuses and ``State.close()`` releases. A
state works on the numpy buffers themselves (zero copy, X updated in place, GIL released) and
checks them again, so a direct call with a wrong buffer raises instead of crashing.
"""

import importlib
import importlib.util
import os

from .base import Backend, State
from .stress_step import check_stress_niter

ISA_ENV = "GRADI_CPP_ISA"
ISAS = ("avx512", "avx2", "baseline")  # the kernels native/ compiles (x86-64; baseline elsewhere)


def _native():
    """The compiled module; ImportError saying so when it was not built."""
    try:
        return importlib.import_module("gradi._native")
    except ImportError as exc:
        raise ImportError(f"C++ extension not built: {exc}") from exc


class _Cpp(Backend):
    """Shared by the three C++ backends: ``state_class`` names the native per-solve state."""

    language = "C++"
    state_class = ""
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
        make = getattr(self.native, self.state_class)
        return State(problem, threads, make(problem.D, problem.dim, problem.lr, threads, **self.state_options()))

    def state_options(self):
        """Keyword arguments of the native state beyond (D, dim, lr, threads)."""
        return {}

    def descend(self, state, X, niter, stress=False):
        check_stress_niter(niter, stress)
        total = state.data.descend(X, niter, stress)
        return (X, total) if stress else X

    def working_bytes(self, n, dim, itemsize, threads):
        """What the native state allocates, as the extension itself computes it."""
        return getattr(_native(), self.state_class).working_bytes(n, dim, itemsize, threads)


class Cpp(_Cpp):
    name = "cpp"
    tier = "seed"
    state_class = "SeedState"
    summary = "Eigen matrices over the numpy buffers, plain loops, one thread"
    sources = ("native/src/seed.hpp", "native/src/team.hpp", "native/src/module.cpp",
               "gradi/backends/cpp.py")


class CppParallel(Cpp):
    name = "cpp-parallel"
    parallel = True
    summary = "the cpp loops with OpenMP over rows, exactly `threads` threads"


class CppSimd(_Cpp):
    name = "cpp-simd"
    tier = "tuned"
    parallel = True
    state_class = "SimdState"
    summary = ("structure of arrays, D^2 in symmetric tiles (each pair once), SIMD over j "
               "(AVX-512/AVX2 chosen at run time), OpenMP over tiles")
    sources = ("native/src/simd.hpp", "native/src/simd.cpp", "native/src/simd_kernel.hpp",
               "native/src/team.hpp", "native/src/module.cpp", "gradi/backends/cpp.py")

    def installed(self):
        isa = self.asked_isa()
        if isa not in ("auto", *ISAS):
            return f"{ISA_ENV}={isa} is not a cpp-simd kernel (one of {', '.join(ISAS)})"
        return super().installed()

    def load(self):
        super().load()
        isa = self.asked_isa()
        if isa != "auto" and isa not in self.native.simd_isas():
            raise ImportError(f"{ISA_ENV}={isa} is not a cpp-simd kernel this CPU runs "
                              f"(one of {', '.join(self.native.simd_isas())})")

    def state_options(self):
        return {"isa": self.asked_isa()}

    @staticmethod
    def asked_isa():
        """The kernel $GRADI_CPP_ISA asks for, or "auto" (the widest this CPU runs)."""
        return os.environ.get(ISA_ENV) or "auto"

    def isa(self):
        """The instruction set this backend's kernel uses here."""
        if self.native is None:
            self.load()
        isa = self.asked_isa()
        return self.native.simd_isa() if isa == "auto" else isa


BACKENDS = [Cpp(), CppParallel(), CppSimd()]
