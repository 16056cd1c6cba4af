"""``solve``: validate once, compile or warm up, run a backend, check the outcome.

Recording (``record_every=k``) calls the backend in chunks of k iterations and evaluates the
reference stress between chunks, so every backend records the same way and none needs a history
variant of its own. Only the backend calls are timed (``elapsed``); validation, the step-size
rule, compilation (``prepare_seconds``) and recording are not.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from .errors import DivergenceError
from .problem import stress
from .validation import validate


@dataclass
class Result:
    """Outcome of a solve. ``history_*`` are filled when ``record_every`` was given."""

    X: np.ndarray
    stress: float
    elapsed: float
    backend: str
    lr: float
    niter: int
    threads: int
    dtype: str
    prepare_seconds: float
    history_iterations: list = field(default_factory=list)
    history_stress: list = field(default_factory=list)
    history_X: list = field(default_factory=list)


def solve(D, dim=None, *, backend="numpy", lr="auto", niter=1000, threads=None,
          dtype="float32", X0=None, seed=42, record_every=None):
    """Recover N positions (N x dim) from the N x N distances D by plain gradient descent.

    ``dim`` defaults to X0's width, or 2. ``lr="auto"`` derives a converging step from D and the
    start (see gradi.stepsize). ``threads=None`` means all cores for parallel backends, one
    otherwise. Raises ValueError/TypeError for bad input and DivergenceError if the positions
    become non-finite.
    """
    problem = validate(D, dim, backend=backend, lr=lr, niter=niter, threads=threads, dtype=dtype,
                       X0=X0, seed=seed, record_every=record_every)
    runner = problem.backend
    started = time.perf_counter()
    runner.prepare(problem)
    prepare_seconds = time.perf_counter() - started

    result = Result(X=problem.X0.copy(), stress=float("nan"), elapsed=0.0, backend=runner.name,
                    lr=problem.lr, niter=problem.niter, threads=problem.threads,
                    dtype=problem.dtype.name, prepare_seconds=prepare_seconds)
    done = 0
    if record_every:
        _record(result, problem, done)
    for length in problem.chunk_lengths:
        X = np.require(result.X, dtype=problem.dtype, requirements=["C", "W"])
        started = time.perf_counter()
        with np.errstate(all="ignore"):  # overflow is reported below as a DivergenceError
            result.X = runner.descend(X, problem.D, problem.lr, length, problem.threads)
        result.elapsed += time.perf_counter() - started
        if not np.all(np.isfinite(result.X)):
            raise DivergenceError(first_nonfinite_iteration(problem, done, done + length),
                                  problem.lr, runner.name)
        done += length
        if record_every:
            _record(result, problem, done)
    result.stress = stress(result.X, problem.D)
    if not np.isfinite(result.stress):
        raise DivergenceError(done, problem.lr, runner.name)
    return result


def _record(result, problem, iteration):
    result.history_iterations.append(iteration)
    result.history_stress.append(stress(result.X, problem.D))
    result.history_X.append(result.X.copy())


def first_nonfinite_iteration(problem, finite_upto, nonfinite_at):
    """Find the first iteration whose positions are non-finite, replaying the same backend.

    Divergence of a quartic is explosive, so it is usually found within a few iterations:
    doubling from the last known-finite point, then bisecting, costs a few times that many.
    """
    backend = problem.backend

    def finite_after(iterations):
        with np.errstate(all="ignore"):
            X = backend.descend(problem.X0.copy(), problem.D, problem.lr, iterations, problem.threads)
        return bool(np.all(np.isfinite(X)))

    low, step = finite_upto, 1
    while low + step < nonfinite_at and finite_after(low + step):
        low, step = low + step, step * 2
    high = min(low + step, nonfinite_at)
    while high - low > 1:
        middle = (low + high) // 2
        if finite_after(middle):
            low = middle
        else:
            high = middle
    return high
