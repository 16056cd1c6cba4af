"""``solve``: validate once, prepare the backend once, run it in chunks, check the outcome.

A solve calls its backend in chunks on one prepared state (``Backend.prepare``), so chunking
costs no set-up and changes no result: positions stay in the backend's working dtype between
chunks, and every kernel computes each step the same whether it runs alone or in a longer call.
Chunks end at every recording point (``record_every=k`` evaluates the reference stress there),
at every convergence check (``tol``, see gradi.convergence) and last at most about
``CHUNK_SECONDS``, so Ctrl-C is answered between two chunks within about that time on every
backend. Only the backend calls are timed (``elapsed``); validation, the
step-size rule, ``prepare`` (``prepare_seconds``) and recording are not.
"""

import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from . import backends
from .convergence import DEFAULT_CHECK_EVERY, StressGauge, converged
from .errors import DivergenceError
from .problem import stress
from .validation import check_int, resolve_threads, validate

CHUNK_SECONDS = 0.25  # the longest backend call between two checks for Ctrl-C


@dataclass
class Result:
    """Outcome of a solve. ``history_*`` are filled when ``record_every`` was given.

    ``niter`` is the iterations asked for, ``iterations`` those that ran; ``stop_reason`` is
    "converged" (``tol`` met) or "niter reached".
    """

    X: np.ndarray
    stress: float
    elapsed: float
    backend: str
    lr: float
    niter: int
    threads: int
    dtype: str
    prepare_seconds: float
    iterations: int = 0
    stop_reason: str = "niter reached"
    history_iterations: list = field(default_factory=list)
    history_stress: list = field(default_factory=list)
    history_X: list = field(default_factory=list)


def solve(D, dim=None, *, backend="numpy", lr="auto", niter=1000, threads=None,
          dtype="float32", X0=None, seed=42, record_every=None, tol=None, check_every=None):
    """Recover N positions (N x dim) from the N x N distances D by plain gradient descent.

    ``dim`` defaults to X0's width, or 2. ``lr="auto"`` derives a converging step from D and the
    start (see gradi.stepsize). ``threads=None`` means all usable cores for parallel backends,
    one otherwise. With ``tol``, stop early once the stress decreased by less than ``tol``
    (relative) over the last ``check_every`` iterations (default 10, see gradi.convergence);
    ``tol=None`` runs exactly ``niter`` iterations. Raises ValueError/TypeError for bad input and
    DivergenceError if the positions or the stress become non-finite.
    """
    runner = backends.get(backend)
    threads = resolve_threads(runner, threads)
    if record_every is not None:
        record_every = check_int("record_every", record_every, minimum=1)
    tol, check_every = _check_tolerance(tol, check_every)
    problem = validate(D, dim, lr=lr, niter=niter, dtype=dtype, X0=X0, seed=seed,
                       backend=runner, threads=threads)
    started = time.perf_counter()
    with runner.prepare(problem, threads) as state:
        prepare_seconds = time.perf_counter() - started
        result = Result(X=problem.X0, stress=float("nan"), elapsed=0.0, backend=runner.name,
                        lr=problem.lr, niter=problem.niter, threads=threads,
                        dtype=problem.dtype.name, prepare_seconds=prepare_seconds)
        X = np.array(problem.X0, dtype=runner.working_dtype(problem.dtype), order="C")
        if record_every:
            _record(result, X, problem, 0)
        gauge = StressGauge(problem.D) if tol is not None else None
        last_stress = gauge(X) if gauge else None
        done, per_iteration = 0, None
        while done < problem.niter:
            length = min(_next_multiple(done, every) for every in (record_every, check_every,
                                                                    problem.niter)) - done
            if per_iteration is None:  # the first call is one step: it measures the pace
                length = 1
            else:
                length = min(length, max(1, int(CHUNK_SECONDS / max(per_iteration, 1e-12))))
            start_X = X.copy()
            started = time.perf_counter()
            with np.errstate(all="ignore"):  # overflow is reported below as a DivergenceError
                X = runner.descend(state, X, length)
            seconds = time.perf_counter() - started
            result.elapsed += seconds
            per_iteration = seconds / length
            if not np.all(np.isfinite(X)):
                _diverged(runner, state, start_X, done, done + length)
            done += length
            if record_every and (done % record_every == 0 or done == problem.niter):
                _record(result, X, problem, done)
            if gauge and done % check_every == 0:
                now = gauge(X)
                if converged(last_stress, now, tol):
                    result.stop_reason = "converged"
                    break
                last_stress = now
        result.iterations = done
        result.X = X.astype(problem.dtype, copy=False)
        result.stress = stress(X, problem.D)
        if not np.isfinite(result.stress):
            _diverged(runner, state, problem.X0, 0, done)
    return result


def _next_multiple(done, every):
    """The first multiple of ``every`` after ``done`` (no limit when ``every`` is None)."""
    return (done // every + 1) * every if every else float("inf")


def _check_tolerance(tol, check_every):
    """``tol`` as a float in (0, 1) or None, and the check interval it uses (None without tol)."""
    if tol is None:
        if check_every is not None:
            raise ValueError("check_every only applies with tol; pass tol too")
        return None, None
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be None or a number in (0, 1), got {type(tol).__name__} {tol!r}")
    if not 0 < tol < 1:
        raise ValueError(f"tol must be None or a number in (0, 1), got {tol}")
    every = DEFAULT_CHECK_EVERY if check_every is None else check_int("check_every", check_every, minimum=1)
    return float(tol), every


def _record(result, X, problem, iteration):
    result.history_iterations.append(iteration)
    result.history_stress.append(stress(X, problem.D))
    result.history_X.append(X.astype(problem.dtype))


def _finite(X, problem):
    """What is non-finite after a step: "positions", "stress", or None when both are finite."""
    if not np.all(np.isfinite(X)):
        return "positions"
    if not np.isfinite(stress(X, problem.D)):
        return "stress"
    return None


def _diverged(runner, state, start_X, start, nonfinite_at):
    """Raise DivergenceError naming the first iteration whose positions or stress are non-finite.

    The search replays the same backend on the same state from ``start_X`` (the positions after
    ``start`` iterations), which gives the same steps as the run itself. Divergence of a quartic
    is explosive, so doubling from the last known-finite point, then bisecting, costs a few
    times the iterations it takes.
    """
    problem = state.problem

    def after(iterations):
        with np.errstate(all="ignore"):
            X = runner.descend(state, start_X.copy(), iterations - start) if iterations > start else start_X
        return _finite(X, problem)

    low, step = start, 1
    while low + step < nonfinite_at and after(low + step) is None:
        low, step = low + step, step * 2
    high = min(low + step, nonfinite_at)
    while high - low > 1:
        middle = (low + high) // 2
        if after(middle) is None:
            low = middle
        else:
            high = middle
    raise DivergenceError(high, problem.lr, runner.name, after(high) or "positions")
