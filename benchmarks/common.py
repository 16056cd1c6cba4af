"""What every benchmark module shares: the problems, the skip rules, the iteration count, the check.

A benchmark's problem is the blog's: the circle (dim 2) or the sphere (dim 3) with N points,
float32, ``lr="auto"``, gradi's seeded start. ``prepared`` validates it (not timed), lets the
backend compile or warm up (not timed) and checks the backend's positions once against the float64
NumPy reference, so a backend that is fast but wrong raises in setup and posts no number.
The references come from asv's ``setup_cache`` (``references``): computed once per benchmark
class, in a process of their own, so their memory never shows in a ``peakmem_`` result.
"""

import time

import gradi
from gradi.backends import BACKENDS
from gradi.bench.sweep import target
from gradi.testing import assert_agrees, reference_descend
from gradi.validation import validate

BACKEND_NAMES = list(BACKENDS)
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
    return BACKENDS[backend].default_threads()


def skip_unless_runnable(backend, n, threads):
    """Raise NotImplementedError (asv's skip) with the reason when this combination is not run."""
    runner = BACKENDS[backend]
    if not runner.available:
        raise NotImplementedError(f"{backend} unavailable: {runner.unavailable_reason}")
    if DTYPE not in runner.dtypes:
        raise NotImplementedError(f"{backend} does not support {DTYPE}")
    if threads > 1 and not runner.parallel:
        raise NotImplementedError(f"{backend} runs on one thread")
    if n > MAX_N.get(backend, n):
        raise NotImplementedError(f"{backend} is benchmarked up to N={MAX_N[backend]} (too slow beyond)")


def distances(n, dim):
    """Distances between the N points of the benchmark shape in ``dim`` dimensions."""
    return gradi.distance_matrix(target(n, dim))


def make_problem(backend, n, dim, threads):
    """The validated benchmark problem for one backend (gradi's own validation, as in a solve)."""
    return validate(distances(n, dim), dim, backend=backend, niter=ITERATIONS, threads=threads,
                    dtype=DTYPE)


def references():
    """Float64 reference positions after ITERATIONS steps, per (N, dim): a ``setup_cache`` value."""
    result = {}
    for n in SIZES:
        for dim in DIMS:
            problem = make_problem("numpy", n, dim, 1)
            result[n, dim] = reference_descend(problem.X0, problem.D, problem.lr, ITERATIONS)
    return result


def descend(problem):
    """One backend call from the start: what the timed benchmarks measure (X0 copy is N x dim)."""
    return problem.backend.descend(problem.X0.copy(), problem.D, problem.lr, problem.niter,
                                   problem.threads)


def prepared(references, backend, n, dim, threads):
    """Skip, or the validated, compiled and checked problem; built once per process."""
    key = (backend, n, dim, threads)
    if key not in _prepared:
        skip_unless_runnable(backend, n, threads)
        problem = make_problem(backend, n, dim, threads)
        problem.backend.prepare(problem)
        assert_agrees(descend(problem), references[n, dim], problem.D, DTYPE)
        _prepared[key] = problem
    return _prepared[key]


def _seconds(problem, number):
    started = time.perf_counter()
    for _ in range(number):
        descend(problem)
    return time.perf_counter() - started


def calls_per_sample(problem, sample_seconds=0.02):
    """How many calls make one timing sample last at least ``sample_seconds`` (as timeit's autorange)."""
    number = 1
    while (elapsed := _seconds(problem, number)) < sample_seconds:
        number = max(2 * number, int(1.2 * number * sample_seconds / max(elapsed, 1e-9)))
    return number


def interleaved_best(problems, rounds):
    """Best seconds per call of ``descend`` for each problem over ``rounds`` samples each.

    Samples of the problems alternate, so a slow spell of the machine hits all of them; the best
    sample is the one least disturbed by other processes, which is what a ratio should compare.
    """
    numbers = [calls_per_sample(problem) for problem in problems]
    best = [float("inf")] * len(problems)
    for _ in range(rounds):
        for index, (problem, number) in enumerate(zip(problems, numbers)):
            best[index] = min(best[index], _seconds(problem, number) / number)
    return best
