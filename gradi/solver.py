"""``solve``: validate once, prepare the backend once, run it in chunks, check the outcome.

A solve calls its backend in chunks on one prepared state (``Backend.prepare``), so chunking
costs no set-up and changes no result: positions stay in the backend's working dtype between
chunks, and every kernel computes each step the same whether it runs alone or in a longer call.
Chunks end at every recording point (``record_every=k`` copies the positions there and
evaluates their reference stress after the run, so nothing but that copy happens between two
chunks: D is not read, the backend's caches and threads stay warm), at every convergence check
(``tol``, see gradi.convergence) and last at most about ``CHUNK_SECONDS``, so Ctrl-C is
answered between two chunks within about that time on every backend. Only the backend calls
are timed (``elapsed``); validation, the step-size rule, ``prepare`` (``prepare_seconds``) and
recording are not.
"""

import numbers
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from . import backends
from .convergence import DEFAULT_CHECK_EVERY, collapsed_stress, converged, stress_bound
from .errors import DivergenceError
from .validation import check_int, resolve_threads, validate

CHUNK_SECONDS = 0.25  # the longest backend call between two checks for Ctrl-C


@dataclass
class Result:
    """Outcome of a solve, in the caller's units and dtype.

    Attributes
    ----------
    X : numpy.ndarray, shape (N, dim)
        The recovered positions, in the asked dtype (up to rotation, reflection, translation).
    stress : float
        Stress of X against D (gradi.stress), in float64.
    elapsed : float
        Seconds spent in the backend's iterations (validation, prepare and recording excluded).
    backend : str
        The backend that ran.
    lr : float
        The step size used (the one ``lr="auto"`` chose, if so).
    niter : int
        Iterations asked for.
    iterations : int
        Iterations that ran (fewer than niter when ``tol`` stopped the run).
    stop_reason : str
        "converged" (``tol`` met) or "niter reached".
    threads : int
        Threads the backend was given.
    dtype : str
        "float32" or "float64".
    prepare_seconds : float
        Seconds of the backend's one-off set-up (compiling, laying out D).
    history_iterations, history_stress, history_X : list
        With ``record_every=k``: the iterations 0, k, 2k, ... and niter, and the stress and a
        copy of the positions after each. Empty otherwise.
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
    history_iterations: list[int] = field(default_factory=list)
    history_stress: list[float] = field(default_factory=list)
    history_X: list[np.ndarray] = field(default_factory=list)


def solve(D: ArrayLike, dim: int | None = None, *, backend: str = "numpy",
          lr: float | str = "auto", niter: int = 1000, threads: int | None = None,
          dtype: str | np.dtype = "float32", X0: ArrayLike | None = None, seed: int = 42,
          record_every: int | None = None, tol: float | None = None,
          check_every: int | None = None) -> Result:
    """Recover N positions from their N x N distances by plain gradient descent on the stress.

    Parameters
    ----------
    D : array_like, shape (N, N), or a row source (gradi.rows)
        Distances: finite, non-negative, symmetric (to 1e-6 of max(D, 1)), zero diagonal, N >= 2.
        Any real dtype and layout; never modified. Masked arrays with masked entries are refused.
        A row source (``PointRows``, ``MatrixRows``) is read by blocks, only the rows the backend
        works on in this process: how a multi-process ``jax-sharded`` run solves a D that no
        process holds whole (gradi.sharded). Every process of such a run calls ``solve`` with
        the same arguments and gets the same Result.
    dim : int, optional
        Dimension of the positions; defaults to X0's width, or 2.
    backend : str, default "numpy"
        A name from ``gradi.backends.names()``.
    lr : float or "auto", default "auto"
        Step size, in D's units (a step scales as 1/scale^2 with D). "auto" derives a converging
        step from D and the start (gradi.stepsize).
    niter : int, default 1000
        Iterations, 0 to 2**40.
    threads : int, optional
        Threads for parallel backends (default: the usable cores); serial backends take 1.
    dtype : {"float32", "float64"}, default "float32"
        Precision of D, X and the computation (``python`` computes in Python floats).
    X0 : array_like, shape (N, dim), optional
        Start positions; default a seeded random start sized by D (gradi.shapes.random_start).
    seed : int, default 42
        Seed of the random start (ignored when X0 is given).
    record_every : int, optional
        Record the stress and positions every this many iterations (Result.history_*); the
        result is bit-identical with or without recording.
    tol : float in (0, 1), optional
        Stop early once the stress decreased by less than ``tol`` (relative) over the last
        ``check_every`` iterations, or the positions reproduce the squared distances to a
        fraction of ``tol`` that puts exact data's positions within a relative ``tol`` of the
        shape (gradi.convergence); None runs exactly ``niter`` iterations.
    check_every : int, optional
        Iterations between two convergence checks with ``tol`` (default
        gradi.convergence.DEFAULT_CHECK_EVERY).

    Returns
    -------
    Result
        Positions, stress, timings and what ran.

    Raises
    ------
    ValueError, TypeError
        Bad input, named with what is allowed; also a backend that cannot run the problem
        (dtype, threads, memory), and scales the dtype cannot represent (rescale D).
    gradi.BackendUnavailableError
        The backend cannot run on this machine (missing package, failed build).
    gradi.DivergenceError
        The positions or the stress became non-finite: the step is too large.

    Warns
    -----
    gradi.DegenerateStartWarning
        X0 spans fewer dimensions than it could; the positions stay in its subspace.

    Notes
    -----
    Problems whose scale would underflow or overflow the dtype run at a power-of-two rescaling
    and are scaled back exactly (gradi.validation), so any representable scale gives the same
    shape. The backend runs in chunks (recording points, about CHUNK_SECONDS each), so Ctrl-C is
    answered between chunks. What is computed from the rows of D (the checks, the step size, the
    stress, the chunks' pace) is combined over the processes of a multi-process run
    (``Problem.group``), so they take the same decisions.
    """
    runner = backends.get(backend)
    threads = resolve_threads(runner, threads)
    if record_every is not None:
        record_every = check_int("record_every", record_every, minimum=1)
    tol, check_every = check_tolerance(tol, check_every)
    problem = validate(D, dim, lr=lr, niter=niter, dtype=dtype, X0=X0, seed=seed,
                       backend=runner, threads=threads)
    started = time.perf_counter()
    with runner.prepare(problem, threads) as state:
        prepare_seconds = time.perf_counter() - started
        result = Result(X=problem.X0, stress=float("nan"), elapsed=0.0, backend=runner.name,
                        lr=problem.caller_lr, niter=problem.niter, threads=threads,
                        dtype=problem.dtype.name, prepare_seconds=prepare_seconds)
        X = np.array(problem.X0, dtype=runner.working_dtype(problem.dtype), order="C")
        recorded = [(0, X.copy())] if record_every else []
        bound = None if tol is None else stress_bound(
            tol, float(problem.group.sum(collapsed_stress(problem.D, *problem.own_rows))), X.dtype)
        last_stress = None
        done, per_iteration = 0, None
        while done < problem.niter:
            length = next_chunk(done, problem.niter, (record_every, check_every), per_iteration)
            checking = tol is not None and (done + length) % check_every == 0
            start_X = X.copy()
            started = time.perf_counter()
            with np.errstate(all="ignore"):  # overflow is reported below as a DivergenceError
                if checking:
                    X, now = runner.descend(state, X, length, stress=True)
                else:
                    X = runner.descend(state, X, length)
            seconds = time.perf_counter() - started
            result.elapsed += seconds
            per_iteration = float(problem.group.max(seconds / length))  # every process, same chunks
            if not np.all(np.isfinite(X)):
                _diverged(runner, state, start_X, done, done + length)
            done += length
            if record_every and (done % record_every == 0 or done == problem.niter):
                recorded.append((done, X.copy()))
            if checking:
                if converged(last_stress, now, tol, bound):
                    result.stop_reason = "converged"
                    break
                last_stress = now
        result.iterations = done
        write_history(result, recorded, problem, problem.caller_stress)
        result.X = problem.caller_positions(X)
        result.stress = problem.caller_stress(X)
        if not (np.isfinite(result.stress) and np.all(np.isfinite(result.X))):
            _diverged(runner, state, problem.X0, 0, done)
    return result


def next_chunk(done, niter, intervals, pace):
    """Iterations of the next backend call after ``done``: up to the next multiple of any of
    ``intervals`` (None: no stop) or ``niter``, and about CHUNK_SECONDS at ``pace`` (seconds per
    iteration); one step when the pace is not known yet, which measures it."""
    if pace is None:
        return 1
    boundary = min((done // every + 1) * every for every in (*intervals, niter) if every)
    return min(boundary - done, max(1, int(CHUNK_SECONDS / max(pace, 1e-12))))


def check_tolerance(tol, check_every):
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


def write_history(result, recorded, problem, stress_of):
    """Fill the result's history from the ``(iteration, positions)`` a run recorded: the
    stresses are evaluated here, after the run, rather than between its chunks."""
    for iteration, X in recorded:
        result.history_iterations.append(iteration)
        result.history_stress.append(stress_of(X))
        result.history_X.append(np.array(problem.caller_positions(X)))


def _finite(X, problem):
    """What is non-finite in the caller's units: "positions", "stress", or None when both are finite."""
    if not np.all(np.isfinite(problem.caller_positions(X))):
        return "positions"
    if not np.isfinite(problem.caller_stress(X)):
        return "stress"
    return None


def _diverged(runner, state, start_X, start, nonfinite_at):
    """Raise DivergenceError naming the first iteration whose positions or stress are non-finite.

    The search replays the same backend on the same state from ``start_X`` (the positions after
    ``start`` iterations), which gives the same steps as the run itself; from the start X0 when
    those are not finite themselves (only the positions are checked between chunks, and the
    stress can overflow first).
    """
    problem = state.problem
    if _finite(start_X, problem) is not None:
        start_X, start = problem.X0, 0

    start_X = np.array(start_X, dtype=runner.working_dtype(problem.dtype), order="C")

    def after(iterations):
        with np.errstate(all="ignore"):
            X = runner.descend(state, start_X.copy(), iterations - start) if iterations > start else start_X
        return _finite(X, problem)

    high = first_failure(after, start, nonfinite_at)
    raise DivergenceError(high, problem.caller_lr, runner.name, after(high) or "positions",
                          auto=problem.lr_auto)


def first_failure(after, start, failed_at):
    """The first iteration k in (start, failed_at] with ``after(k)`` not None (what failed there).

    ``after(failed_at)`` is known not None. Divergence of a quartic is explosive, so doubling from
    the last known-good point, then bisecting, costs a few times the iterations it takes.
    """
    low, step = start, 1
    while low + step < failed_at and after(low + step) is None:
        low, step = low + step, step * 2
    high = min(low + step, failed_at)
    while high - low > 1:
        middle = (low + high) // 2
        if after(middle) is None:
            low = middle
        else:
            high = middle
    return high
