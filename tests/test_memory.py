"""The memory estimate (gradi.memory) bounds what a solve really allocates, on every backend.

Two measures, as the allocations are made:

- NumPy and Python objects (gradi's own work, the python, numpy-loops and numpy backends) are
  traced exactly with tracemalloc, in this process.
- Native and JAX allocations (C++, Mojo, XLA) are invisible to tracemalloc: for those, a fresh
  process (``python tests/test_memory.py ...``) measures its peak resident memory. It resets
  the high-water mark (/proc/self/clear_refs) just before the measured step and reads it
  (VmHWM) after, so neither imports nor building D count. (Not ``ru_maxrss``: it also keeps
  the high-water mark of the moment any thread exited, before the reset.) The measured step
  is either a whole ``solve`` (against ``memory.needed``) or the backend's ``prepare`` and two
  ``descend`` calls after validation (against ``Backend.working_bytes``), each in its own
  process so that nothing is cached or reused from another measurement.
"""

import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import gradi
from gradi import memory, problem, shapes
from gradi.validation import validate

NATIVE = [name for name in gradi.backends.available() if name not in ("python", "numpy-loops", "numpy")]
TRACED = [name for name in ("python", "numpy-loops", "numpy") if name in gradi.backends.available()]
# One of each kind of working memory, for the quick run: D^2 padded (C++), packed tiles (Mojo),
# XLA buffers (JAX). The slow run measures every backend.
QUICK = [name for name in ("cpp-simd", "mojo-simd", "jax", "jax-scan") if name in NATIVE]


def _threads(name):
    """The threads a solve uses by default (jax-sharded: its JAX devices)."""
    return gradi.backends.get(name).default_threads()


def _distances(n, dim):
    """D of a seeded cloud, built in row blocks (no N x N temporaries beyond D itself)."""
    points = shapes.cube(n, dim)
    D = np.empty((n, n))
    for start, stop in problem.row_blocks(n, n):
        D[start:stop] = np.sqrt(problem.squared_distances(points, start, stop))
    return D


def _run(mode, backend, D, dim, dtype, threads, niter):
    """The measured step: a whole solve, or prepare and two descend calls (1 and niter - 1
    iterations, as a solve's first chunks) on an already validated problem."""
    if mode == "solve":
        return lambda: gradi.solve(D, dim, backend=backend, niter=niter, dtype=dtype, threads=threads)
    runner = gradi.backends.get(backend)
    validated = validate(D, dim, niter=niter, dtype=dtype)
    X = np.array(validated.X0, dtype=runner.working_dtype(validated.dtype))

    def prepare_and_descend():
        with runner.prepare(validated, threads) as state:
            runner.descend(state, X, 1)
            runner.descend(state, X, niter - 1)
    return prepare_and_descend


def _allowed(mode, backend, n, dim, dtype, threads):
    runner = gradi.backends.get(backend)
    if mode == "solve":
        return memory.needed(runner, n, dim, dtype, threads)
    return runner.working_bytes(n, dim, np.dtype(dtype).itemsize, threads)


def _vm_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def probe(mode, backend, n, dim, dtype, threads, niter):
    """Peak resident bytes added by the measured step, in this (fresh) process; None if unknown."""
    D = _distances(n, dim)
    gradi.solve(_distances(20, dim), dim, backend=backend, niter=2, dtype=dtype, threads=threads)
    step = _run(mode, backend, D, dim, dtype, threads, niter)
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # resets the peak resident size to the current one
    except OSError:
        return None
    before = _vm_kib("VmRSS")
    step()
    return (_vm_kib("VmHWM") - before) * 1024


PAGES = 16 * 4096  # resident memory counts whole pages: a buffer can touch a page beyond its size


def _measure_in_a_fresh_process(mode, backend, n, dim, dtype, niter=3):
    """(peak resident bytes, estimate + PAGES) of the measured step, in a fresh process."""
    threads = _threads(backend)
    command = [sys.executable, __file__, mode, backend, str(n), str(dim), dtype, str(threads), str(niter)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env=os.environ | {"PYTHONWARNINGS": "ignore"})
    assert output.returncode == 0, output.stderr[-2000:]
    peak = json.loads(output.stdout.splitlines()[-1])
    if peak is None:
        pytest.skip("the peak resident size cannot be reset here (/proc/self/clear_refs)")
    return peak, _allowed(mode, backend, n, dim, dtype, threads) + PAGES


def _traced_peak(mode, backend, n, dim, dtype, niter=2):
    D = _distances(n, dim)
    threads = _threads(backend)
    gradi.solve(_distances(20, dim), dim, backend=backend, niter=2, dtype=dtype, threads=threads)
    step = _run(mode, backend, D, dim, dtype, threads, niter)
    tracemalloc.start()
    try:
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, _allowed(mode, backend, n, dim, dtype, threads)


def _check(peak, allowed, what):
    assert peak <= allowed, (f"{what}: measured peak {peak / 2**20:.2f} MiB exceeds the estimate "
                             f"{allowed / 2**20:.2f} MiB")


@pytest.mark.parametrize("mode", ["solve", "backend"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", TRACED)
def test_the_estimate_bounds_traced_allocations(backend, dtype, mode):
    n = 300 if backend == "numpy" else 120  # tracing every Python float of the seed tiers is slow
    peak, allowed = _traced_peak(mode, backend, n, 2, dtype)
    _check(peak, allowed, f"{mode} {backend} {dtype} N={n}")


@pytest.mark.parametrize("backend", QUICK)
def test_the_estimate_bounds_the_peak_resident_memory_of_a_solve(backend):
    peak, allowed = _measure_in_a_fresh_process("solve", backend, 1500, 2, "float32")
    _check(peak, allowed, f"solve {backend} float32 N=1500")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["solve", "backend"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", NATIVE + TRACED)
def test_the_estimate_bounds_the_peak_resident_memory_at_n4000(backend, dtype, mode):
    n, niter = (1000, 2) if backend in ("python", "numpy-loops") else (4000, 3)
    peak, allowed = _measure_in_a_fresh_process(mode, backend, n, 3, dtype, niter)
    _check(peak, allowed, f"{mode} {backend} {dtype} N={n}")


def test_gradis_own_work_is_d_plus_a_few_row_blocks():
    """Before: validation peaked at 4 float64 N x N arrays and the reference stress at dim + 3."""
    n, dim = 4000, 3
    D = _distances(n, dim)
    tracemalloc.start()
    try:
        validated = validate(D, dim, dtype="float32")
        validation_peak = tracemalloc.get_traced_memory()[1]
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        gradi.stress(validated.X0, validated.D)
        stress_peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    blocks = memory.BLOCK_TEMPORARIES * 8 * n * problem.block_rows(n, n) + memory.SMALL_BYTES
    assert validation_peak <= n * n * 4 + blocks + memory.POSITION_COPIES * 8 * n * dim
    assert stress_peak <= blocks < n * n * 8


if __name__ == "__main__":
    mode, backend, n, dim, dtype, threads, niter = sys.argv[1:]
    print(json.dumps(probe(mode, backend, int(n), int(dim), dtype, int(threads), int(niter))))
