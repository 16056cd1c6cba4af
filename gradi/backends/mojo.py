"""Mojo backends: the blog's loops on one thread or many, and a tuned SIMD kernel.

All three run in one compiled extension (mojo/gradi_mojo.mojo), built on first use and cached
by ``mojo_build``. The build and import happen in ``prepare``, so a solve's ``prepare_seconds``
includes the compile; ``load`` (what the runnability check asks) only checks that the compiler
runs. The extension checks every argument itself, in Mojo, from numpy's C-level data (the
buffer protocol), and raises TypeError/ValueError, so these wrappers pass arrays straight on.

mojo-simd's per-solve state is its workspace: one numpy array (owned by the state, released by
``State.close``) holding D^2 as symmetric tiles, filled once by ``simd_prepare`` with the
solve's threads and reused by every ``descend`` of the solve.

Fork hazard: once the Mojo runtime's thread pool has started, a forked child hangs on its
next parallel call. Use subprocess or multiprocessing's "spawn" after using these backends.
"""

import numpy as np

from ..errors import BackendUnavailableError
from .base import Backend, State, one_line
from .stress_step import check_stress_niter

TILE = 256  # the tuned kernel's tile edge (Layout in mojo/simd_kernel.mojo), for memory estimates

# mojo-simd runs on one thread below SERIAL_BELOW points (a single tile: no tile work to share)
# or below PARALLEL_MIN_WORK pair-updates per call (n * n * niter), where what a parallel call
# costs to start exceeds what a second thread saves (mojo/measure_threshold.py, mojo/README.md).
SERIAL_BELOW = TILE + 1
PARALLEL_MIN_WORK = 5_000_000

# Bytes a workspace has beyond its Layout: a 64-byte header (what it was prepared for, the busy
# flag) and up to a page of slack, so that the Layout starts on a page (mojo/gradi_mojo.mojo).
WORKSPACE_OVERHEAD = 64 + 4096
# The Layout's chunks (a block's coordinates, a tile's partial sums: dim x TILE) round up to
# this many elements, whole pages for 4- and 8-byte elements (PAGE_ELEMENTS in the kernel).
PAGE_ELEMENTS = 1024
# Elements of the Layout for one worker's two task counters (2 x COUNTER_ELEMENTS in the kernel).
COUNTER_ELEMENTS = 2 * 16
# Elements of the Layout for one tile's stress, a Float64 (STRESS_ELEMENTS in the kernel).
STRESS_ELEMENTS = 2

# Kernel + binding + wrapper, as the C++ backends count theirs; the build logic
# (mojo_build.py, like native/CMakeLists.txt) is not implementation.
_BINDING_SOURCES = ("mojo/gradi_mojo.mojo", "mojo/buffers.mojo", "gradi/backends/mojo.py")


def simd_threads(n, niter, threads):
    """Threads mojo-simd really uses: one when the problem is too small to gain from more."""
    return 1 if n < SERIAL_BELOW or n * n * niter < PARALLEL_MIN_WORK else threads


class Prepared:
    """What a Mojo backend keeps for one solve: the extension, and mojo-simd's workspace."""

    def __init__(self, module, workspace=None):
        self.module = module
        self.workspace = workspace

    def close(self):
        self.module = self.workspace = None


class _MojoBackend(Backend):
    language = "Mojo"

    def installed(self):
        mojo_build = _build()
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
        if reason is None:
            mojo_build = _build()
            try:
                return mojo_build.status()
            except mojo_build.MojoUnavailable as exc:
                reason = one_line(exc)
        return f"unavailable: {reason}"

    def load(self):
        # Cheap on purpose: the compile belongs to prepare (timed as prepare_seconds).
        mojo_build = _build()
        failure = mojo_build.failure()
        if failure is not None:
            raise failure
        mojo_build.entry_folder(mojo_build.env_target_cpu())

    def load_runtime(self):
        # The extension's libraries and the worker threads its runtime starts (one a core).
        self.extension()

    def extension(self):
        """The built and imported extension; BackendUnavailableError if it cannot be, and from
        then on every Mojo backend reports why it is unavailable."""
        mojo_build = _build()
        try:
            return mojo_build.load_extension()
        except mojo_build.MojoUnavailable as exc:
            for backend in {self, *BACKENDS}:  # they share the extension
                backend.__dict__["unavailable_reason"] = one_line(exc)
            raise BackendUnavailableError(f"backend {self.name!r} is unavailable: {one_line(exc)}") from exc


class MojoSeed(_MojoBackend):
    name = "mojo"
    summary = "the blog's plain loops in Mojo, one thread"
    sources = ("mojo/seed_kernel.mojo",) + _BINDING_SOURCES

    def prepare(self, problem, threads):
        module = self.extension()
        if threads > 1:  # start the runtime's thread pool outside any timed call
            module.seed(np.zeros((2, 1), problem.dtype), np.zeros((2, 2), problem.dtype), 0.0, 1, threads)
        return State(problem, threads, Prepared(module))

    def descend(self, state, X, niter, stress=False):
        check_stress_niter(niter, stress)
        problem = state.problem
        total = _module(state).seed(X, problem.D, problem.lr, niter, state.threads, int(stress))
        return (X, total) if stress else X

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
    summary = ("structure of arrays, D^2 laid out once per solve as symmetric tiles, SIMD over j, "
               "each pair visited once, `threads` workers (one thread below a measured size)")
    sources = ("mojo/simd_kernel.mojo",) + _BINDING_SOURCES

    def prepare(self, problem, threads):
        module = self.extension()
        n, dim, dtype = problem.n, problem.dim, problem.dtype
        workspace = np.empty(module.simd_workspace_size(n, dim, threads, dtype.itemsize), dtype)
        module.simd_prepare(workspace, problem.D, dim, threads)
        return State(problem, threads, Prepared(module, workspace))

    def descend(self, state, X, niter, stress=False):
        check_stress_niter(niter, stress)
        threads = simd_threads(X.shape[0], niter, state.threads)
        total = _module(state).simd(state.data.workspace, X, state.problem.lr, niter, threads, int(stress))
        return (X, total) if stress else X

    def working_bytes(self, n, dim, itemsize, threads):
        # The workspace (Layout in mojo/simd_kernel.mojo): packed upper-triangle D^2 tiles, the
        # coordinates (a chunk per block), per-tile partial sums (a chunk each), for dim > 4 one
        # tile-sized buffer per worker, each worker's two task counters, each tile's stress,
        # plus its header and alignment slack.
        blocks = -(-n // TILE)
        tiles = blocks * (blocks + 1) // 2
        chunk = -(-dim * TILE // PAGE_ELEMENTS) * PAGE_ELEMENTS
        scratch = threads * TILE * TILE if dim > 4 else 0
        elements = (tiles * (TILE * TILE + STRESS_ELEMENTS) + blocks * chunk + blocks * blocks * chunk + scratch
                    + threads * COUNTER_ELEMENTS)
        return elements * itemsize + WORKSPACE_OVERHEAD


def _build():
    # Imported on use so that ``python -m gradi.backends.mojo_build`` runs a fresh module.
    from . import mojo_build

    return mojo_build


def _module(state):
    if state.data is None or state.data.module is None:
        raise ValueError("this state was closed; prepare a new one")
    return state.data.module


BACKENDS = (MojoSeed(), MojoParallel(), MojoSimd())
