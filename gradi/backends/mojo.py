"""Mojo backends: the blog's loops on one thread or many, and a tuned SIMD kernel.

All three run in one compiled extension (mojo/gradi_mojo.mojo, built on first use by
``mojo_build``). Every call goes through ``call_kernel``, which checks the buffers before their
addresses reach Mojo: a bad address there kills the interpreter instead of raising. The
extension repeats the checks so a direct call with bad arguments raises too.

Fork hazard: once the Mojo runtime's thread pool has started, a forked child hangs on its
next parallel call. Use subprocess or multiprocessing's "spawn" after using these backends.
"""

import numpy as np

from .base import MAX_NITER, MAX_THREADS, Backend, State

# mojo-simd runs on one thread below SERIAL_BELOW points (fewer than two tiles of work to
# share) or below PARALLEL_MIN_WORK pair-updates per call (n * n * niter), where the ~0.25 ms
# a parallel call costs to start exceeds what a second thread saves. Measured with
# mojo/measure_threshold.py (see mojo/README.md).
SERIAL_BELOW = 192
PARALLEL_MIN_WORK = 5_000_000

TILE = 128  # the tuned kernel's tile edge (mojo/simd_kernel.mojo), for memory estimates

# Kernel + binding + wrapper, as the C++ backends count theirs; the build logic
# (mojo_build.py, like native/CMakeLists.txt) is not implementation.
_BINDING_SOURCES = ("mojo/gradi_mojo.mojo", "gradi/backends/mojo.py")


def simd_threads(n, niter, threads):
    """Threads mojo-simd really uses: one when the problem is too small to gain from more."""
    return 1 if n < SERIAL_BELOW or n * n * niter < PARALLEL_MIN_WORK else threads


def call_kernel(kernel, X, D, lr, niter, threads):
    """Run ``kernel`` ("seed" or "simd") on X in place after checking every argument; returns X."""
    if kernel not in ("seed", "simd"):
        raise ValueError(f"kernel must be 'seed' or 'simd', got {kernel!r}")
    if not isinstance(X, np.ndarray) or not isinstance(D, np.ndarray):
        raise TypeError("X and D must be numpy arrays")
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"X must be n x dim with dim >= 1, got shape {X.shape}")
    if D.shape != (X.shape[0], X.shape[0]):
        raise ValueError(f"D must be {X.shape[0]} x {X.shape[0]}, got shape {D.shape}")
    if X.dtype not in (np.float32, np.float64) or D.dtype != X.dtype:
        raise TypeError(f"X and D must both be float32 or both float64, got {X.dtype} and {D.dtype}")
    if not (X.flags.c_contiguous and D.flags.c_contiguous):
        raise ValueError("X and D must be C-contiguous")
    if not X.flags.writeable:
        raise ValueError("X must be writeable")
    if np.may_share_memory(X, D):
        raise ValueError("X and D must not overlap in memory")
    for name, value in (("niter", niter), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= niter <= MAX_NITER:
        raise ValueError(f"niter must be in [0, 2**40], got {niter}")
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads must be in [1, {MAX_THREADS}], got {threads}")
    if not np.isfinite(lr):
        raise ValueError(f"lr must be finite, got {lr}")
    module = _extension()
    getattr(module, kernel)(X, D, float(lr), int(niter), int(threads))
    return X


def _extension():
    # Imported here so that ``python -m gradi.backends.mojo_build`` runs a fresh module.
    from . import mojo_build

    return mojo_build.load_extension()


class _MojoBackend(Backend):
    language = "Mojo"
    kernel = "seed"

    def installed(self):
        from . import mojo_build

        try:
            mojo_build.source_dir()
            mojo_build.find_compiler()
        except mojo_build.MojoUnavailable as exc:
            return str(exc)
        return None

    def status(self):
        if "unavailable_reason" in self.__dict__:
            return super().status()
        reason = self.installed()
        return f"unavailable: {reason}" if reason else "available (compiled on first use, then cached)"

    def load(self):
        _extension()

    def prepare(self, problem, threads):
        # Build/import the extension and start the runtime's thread pool (~5 ms on the first
        # parallel call) outside any timed call.
        X = np.zeros((2, problem.dim), dtype=problem.dtype)
        D = np.zeros((2, 2), dtype=problem.dtype)
        call_kernel(self.kernel, X, D, 0.0, 1, threads)
        return State(problem, threads)

    def descend(self, state, X, niter):
        return call_kernel(self.kernel, X, state.problem.D, state.problem.lr, niter, state.threads)


class MojoSeed(_MojoBackend):
    name = "mojo"
    summary = "the blog's plain loops in Mojo, one thread"
    sources = ("mojo/seed_kernel.mojo",) + _BINDING_SOURCES

    def working_bytes(self, n, dim, itemsize, threads):
        return n * dim * itemsize  # the gradient buffer


class MojoParallel(MojoSeed):
    name = "mojo-parallel"
    parallel = True
    summary = "the same loops, rows split into `threads` chunks run by max.algorithm.parallelize"


class MojoSimd(_MojoBackend):
    name = "mojo-simd"
    tier = "tuned"
    parallel = True
    kernel = "simd"
    summary = ("structure of arrays, D^2 precomputed as symmetric tiles, SIMD over j, each pair "
               "visited once, `threads` workers (one thread below a measured size)")
    sources = ("mojo/simd_kernel.mojo",) + _BINDING_SOURCES

    def descend(self, state, X, niter):
        threads = simd_threads(X.shape[0], niter, state.threads)
        return call_kernel("simd", X, state.problem.D, state.problem.lr, niter, threads)

    def working_bytes(self, n, dim, itemsize, threads):
        # Packed upper-triangle D^2 tiles, SoA coordinates, per-tile partial sums, and (dim > 4)
        # one tile-sized buffer per worker; TILE as in mojo/simd_kernel.mojo.
        blocks = -(-n // TILE)
        tiles = blocks * (blocks + 1) // 2
        workers = threads if dim > 4 else 1
        return (tiles * TILE * TILE + dim * blocks * TILE + blocks * blocks * dim * TILE
                + workers * TILE * TILE) * itemsize


BACKENDS = (MojoSeed(), MojoParallel(), MojoSimd())
