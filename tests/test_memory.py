"""The memory estimates (gradi.memory) bound what a solve, and a whole command, really hold.

A whole ``gradi solve`` (from a shape, a .npy, a CSV, with pictures) runs in a fresh process
that reports its peak resident memory at exit (VmHWM: the interpreter and every import
included), against the estimate its ``--dry-run`` prints. For ``gradi.solve`` alone, two
measures, as the allocations are made:

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
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import gradi
from gradi import memory, problem, shapes
from gradi.bench import sweep
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


# A whole command as a user runs it, in a fresh process that reports its peak resident memory
# (VmHWM: interpreter, imports, everything) when it exits.
WHOLE_COMMAND = """
import sys
from gradi.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(next(line for line in status if line.startswith("VmHWM:")), file=sys.stderr)
sys.exit(code)
"""
FAMILIES = [name for name in ("numpy", "cpp-simd", "mojo-simd", "jax") if name in gradi.backends.available()]


def _gradi(*argv):
    run = subprocess.run([sys.executable, "-c", WHOLE_COMMAND, *argv], capture_output=True, text=True,
                         cwd="/", timeout=600, env=os.environ | {"PYTHONWARNINGS": "ignore"})
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def _command_peak_and_estimate(*argv):
    """(peak resident bytes of ``gradi *argv``, the estimate its ``--dry-run`` prints), each
    from a fresh process."""
    planned = _gradi(*argv, "--dry-run").stdout
    value, unit = re.search(r"^memory +about (\S+) (KiB|MiB|GiB) at the peak", planned, re.M).groups()
    estimate = float(value) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc/self/status to read the peak resident size from")
    peak = int(re.search(r"^VmHWM:\s+(\d+) kB$", _gradi(*argv).stderr, re.M)[1]) * 1024
    return peak, estimate


@pytest.mark.parametrize("n", [1500, 3000])
@pytest.mark.parametrize("backend", FAMILIES)
def test_a_whole_solve_from_a_shape_stays_within_the_estimate_it_prints(backend, n):
    """Before: 2.9 times the estimate (numpy, N=6000): D was built in float64 with N x N
    temporaries, and neither it nor the process itself was counted."""
    peak, estimate = _command_peak_and_estimate("solve", "-n", str(n), "--shape", "sphere", "--niter", "3",
                                                "--backend", backend)
    _check(peak, estimate, f"gradi solve -n {n} --shape sphere --backend {backend}")


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """A user's distance files of a sphere of 1500 points: float64 .npy, and CSV."""
    folder = tmp_path_factory.mktemp("distances")
    D = gradi.distance_matrix(shapes.sphere(1500))
    np.save(folder / "d.npy", D)
    np.savetxt(folder / "d.csv", D[:600, :600], delimiter=",")
    return folder


@pytest.mark.parametrize("backend", FAMILIES)
def test_a_whole_solve_from_a_float64_npy_stays_within_the_estimate_it_prints(backend, user_files):
    """Before: the float64 file's mapped pages stayed resident beside the float32 copy."""
    peak, estimate = _command_peak_and_estimate("solve", "--distances", str(user_files / "d.npy"), "--dim", "3",
                                                "--niter", "3", "--backend", backend)
    _check(peak, estimate, f"gradi solve --distances d.npy --backend {backend}")


def test_a_whole_solve_from_a_csv_stays_within_the_estimate_it_prints(user_files):
    peak, estimate = _command_peak_and_estimate("solve", "--distances", str(user_files / "d.csv"), "--niter", "3")
    _check(peak, estimate, "gradi solve --distances d.csv")


@pytest.mark.parametrize("n", [300, 2000])
def test_a_solve_that_draws_every_picture_stays_within_the_estimate_it_prints(tmp_path, n):
    pictures = ["--plot", str(tmp_path / "p.png"), "--animate", str(tmp_path / "a.gif"),
                "--html", str(tmp_path / "h.html")]
    peak, estimate = _command_peak_and_estimate("solve", "-n", str(n), "--shape", "sphere", "--niter", "60",
                                                *pictures)
    _check(peak, estimate, f"gradi solve -n {n} with every picture")


def test_a_bench_case_too_large_is_skipped_before_its_distances_exist(monkeypatch):
    """Before: the sweep built D first (a traceback for a size beyond the address space)."""
    monkeypatch.setattr(gradi.host, "available_memory", lambda: 64 * 2**20)
    settings = sweep.Settings(backends=("numpy",), sizes=(5000,), dims=(2,), niter=2, repeats=1)
    tracemalloc.start()
    try:
        outcome = sweep.run_sweep(settings)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [measurement] = outcome.measurements
    assert measurement.status == "skipped"
    assert measurement.reason.startswith("problem too large: N=5000, dim=2 in float32 needs about ")
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB allocated before skipping"


if __name__ == "__main__":
    mode, backend, n, dim, dtype, threads, niter = sys.argv[1:]
    print(json.dumps(probe(mode, backend, int(n), int(dim), dtype, int(threads), int(niter))))
