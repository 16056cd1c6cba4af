"""What every benchmark module shares: the problems, the skip rules, the iteration count, the check.

A benchmark's problem is the blog's: the circle (dim 2) or the sphere (dim 3) with N points,
float32, ``lr="auto"``, gradi's seeded start. ``prepared`` validates it (not timed), lets the
backend compile or warm up (not timed, gradi.bench.prepared) and checks the backend's positions once against the float64
NumPy reference, so a backend that is fast but wrong raises in setup and posts no number.
The references come from asv's ``setup_cache`` (``references``): computed once per benchmark
class, in a process of their own, so their memory never shows in a ``peakmem_`` result.

Parameter lists are literal, never read from the registry: asv runs a combination by its index
in the other commit's process, so a list that changed between commits would mislabel rows. A
backend this commit does not have skips with that reason. Every benchmark class sets an explicit
``version`` (bump it when its workload changes, here or in this module), so editing a file's text
does not orphan its history and a changed workload never mixes with the old one in a graph.
"""

import gradi
from gradi.backends import BACKENDS
from gradi.bench import prepared as prepared_timing
from gradi.bench.prepared import PreparedRun
from gradi.bench.sweep import target
from gradi.testing import assert_agrees, reference_descend
from gradi.validation import validate

BACKEND_NAMES = ["python", "numpy-loops", "numpy", "jax-scan", "jax", "jax-sharded", "cpp",
                 "cpp-parallel", "cpp-simd", "mojo", "mojo-parallel", "mojo-simd"]
SIZES = [10, 100, 1000]
DIMS = [2, 3]
THREADS = [1, 2]
DTYPE = "float32"
# Every timed call runs the same number of steps for every backend, so rows compare directly.
ITERATIONS = 10

# Largest N per backend where the default is too slow for a 2-core run: python takes about 3 s
# and numpy-loops about 6 s per iteration at N=1000 (30 s and 60 s per timed call).
MAX_N = {"python": 100, "numpy-loops": 100}

_prepared = {}


def default_threads(backend):
    """Threads a solve uses when the caller does not say: all cores if parallel, else one."""
    if backend not in BACKENDS:
        raise NotImplementedError(f"backend {backend!r} is not in this commit's registry")
    return BACKENDS[backend].default_threads()


def skip_unless_runnable(backend, problem, threads):
    """Raise NotImplementedError (asv's skip) with the reason when this combination is not run.

    The reason is the backend's own ``check`` (gradi's single runnability rule), or the
    suite's size limit for the slow seed tiers.
    """
    if backend not in BACKENDS:
        raise NotImplementedError(f"backend {backend!r} is not in this commit's registry")
    reason = BACKENDS[backend].check(problem, threads)
    if reason is None and problem.n > MAX_N.get(backend, problem.n):
        reason = f"{backend} is benchmarked up to N={MAX_N[backend]} (too slow beyond)"
    if reason is not None:
        raise NotImplementedError(reason)


def significant(value, digits):
    """``value`` rounded to ``digits`` significant digits: asv prints a track's value as JSON,
    so an unrounded ratio would show as 0.0038328256170668444."""
    return float(f"{value:.{digits}g}")


def distances(n, dim):
    """Distances between the N points of the benchmark shape in ``dim`` dimensions."""
    return gradi.distance_matrix(target(n, dim))


def make_problem(n, dim):
    """The validated benchmark problem (gradi's own validation, as in a solve)."""
    return validate(distances(n, dim), dim, niter=ITERATIONS, dtype=DTYPE)


def references():
    """Float64 reference positions after ITERATIONS steps, per (N, dim): a ``setup_cache`` value."""
    result = {}
    for n in SIZES:
        for dim in DIMS:
            problem = make_problem(n, dim)
            result[n, dim] = reference_descend(problem.X0, problem.D, problem.lr, ITERATIONS)
    return result


def descend(run):
    """One backend call from the start: what the timed benchmarks measure (X0 copy is N x dim)."""
    return run.descend(ITERATIONS)


def prepared(references, backend, n, dim, threads):
    """Skip, or the checked benchmark problem prepared on the backend (gradi.bench.prepared);
    once per process."""
    key = (backend, n, dim, threads)
    if key not in _prepared:
        _prepared[key] = _checked_run(references, backend, n, dim, threads)
    return _prepared[key]


def check(references, backend, n, dim, threads):
    """Skip, or check the backend on the benchmark problem and release all it prepared: for a
    benchmark of a whole solve, whose peak memory must be the solve's alone."""
    _checked_run(references, backend, n, dim, threads).close()


def _checked_run(references, backend, n, dim, threads):
    problem = make_problem(n, dim)
    skip_unless_runnable(backend, problem, threads)
    run = PreparedRun(BACKENDS[backend], problem, threads)
    assert_agrees(descend(run), references[n, dim], problem.D, DTYPE)
    return run


def interleaved_best(runs, rounds):
    """Best seconds per ``descend`` of each prepared run, samples of at least 20 ms interleaved
    (gradi.bench.prepared.interleaved_best)."""
    return prepared_timing.interleaved_best([lambda run=run: descend(run) for run in runs], rounds,
                                            sample_seconds=0.02)
