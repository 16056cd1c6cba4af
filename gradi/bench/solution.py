"""``gradi bench --to-solution``: seconds to reach a target accuracy, against scikit-learn's SMACOF.

The fixed-iteration sweep (gradi.bench.sweep) compares stacks per iteration; a user recovering
positions wants the answer. Here every solver starts from gradi's seeded X0 on the same shape
(the sweep's circle in 2-D, sphere in 3-D) and runs until the Procrustes disparity to the true
shape is at most ``target``. Two passes per solver:

1. find the iterations needed: run in chunks of ``CHECK_EVERY`` iterations (gradi) or one
   iteration (SMACOF), measuring the disparity between chunks (not timed);
2. time one uninterrupted run of exactly that many iterations from X0 (best of ``repeats``),
   so the time holds no checking and no per-call overhead beyond one call.

gradi's backends run ``lr="auto"`` in the sweep's dtype (float32 by default); SMACOF
(``sklearn.manifold.smacof``, metric, one init, ``init=X0``) computes in float64 and minimises
the stress of distances rather than of squared distances — each solver is judged on the shape it
returns. A solver that needs more than ``budget`` seconds (extrapolated from the first pass) or
``max_iterations`` is reported as not reaching the target.
"""

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from .. import backends
from ..align import procrustes_disparity
from ..problem import distance_matrix, stress
from ..validation import validate
from .sweep import target as target_shape

PEER = "smacof"
CHECK_EVERY = 10
DEFAULT_TARGET = 1e-6


@dataclass(frozen=True)
class Settings:
    """What to solve and how hard: ``target`` disparity, ``budget`` seconds per solver and case."""

    backends: tuple
    sizes: tuple = (300, 1000)
    dims: tuple = (2, 3)
    dtype: str = "float32"
    threads: int | None = None
    target: float = DEFAULT_TARGET
    max_iterations: int = 20_000
    repeats: int = 3
    budget: float = 10.0
    seed: int = 42


@dataclass
class Outcome:
    """One solver on one case: iterations and best seconds to the target, or why not."""

    solver: str
    n: int
    dim: int
    status: str = "ok"  # "ok", "not reached", "skipped", "failed"
    reason: str = ""
    iterations: int = 0
    seconds: float | None = None
    disparity: float | None = None
    stress: float | None = None
    threads: int = 1


class _GradiSolver:
    """A gradi backend on one problem: prepared once, run from X0 for any number of iterations."""

    def __init__(self, backend, problem, threads):
        self.backend, self.problem = backend, problem
        self.state = backend.prepare(problem, threads)

    def start(self):
        return np.array(self.problem.X0, dtype=self.backend.working_dtype(self.problem.dtype))

    def steps(self, X, iterations):
        return self.backend.descend(self.state, X, iterations)

    def close(self):
        self.state.close()


class _Smacof:
    """scikit-learn's SMACOF continued from any positions (each call is a run with ``init=X``)."""

    def __init__(self, problem):
        from sklearn.manifold import smacof  # the optional peer: imported only when compared

        self.smacof = smacof
        self.D = np.asarray(problem.D, dtype=np.float64)
        self.X0 = np.asarray(problem.X0, dtype=np.float64)

    def start(self):
        return self.X0.copy()

    def steps(self, X, iterations):
        """Exactly ``iterations`` Guttman transforms from X.

        With eps=0 SMACOF stops only when the stress rises (rounding, at its floor); the run
        then continues from where it stopped, so the count is exact either way.
        """
        while iterations > 0:
            X, _, done = self.smacof(self.D, metric=True, n_components=X.shape[1], init=X, n_init=1,
                                     max_iter=iterations, eps=0.0, normalized_stress=False,
                                     return_n_iter=True)
            iterations -= done
        return X

    def close(self):
        pass


def peer_missing():
    """Why SMACOF cannot be compared here (scikit-learn absent), or None."""
    try:
        import sklearn.manifold  # noqa: F401
    except ImportError:
        return "scikit-learn is not installed (pip install 'gradi[peers]')"
    return None


def iterations_to_target(solver, points, settings, chunk):
    """(iterations, seconds spent) until the disparity to ``points`` is at most the target.

    Returns iterations None when ``max_iterations`` or the time budget run out first.
    """
    X, done, spent = solver.start(), 0, 0.0
    while done < settings.max_iterations:
        started = time.perf_counter()
        with np.errstate(all="ignore"):
            X = solver.steps(X, chunk)
        spent += time.perf_counter() - started
        done += chunk
        if not np.all(np.isfinite(X)):
            return None, spent
        if procrustes_disparity(points, X) <= settings.target:
            return done, spent
        if spent > settings.budget:
            return None, spent
    return None, spent


def best_seconds(solver, iterations, repeats):
    """(positions, best seconds) of one uninterrupted run of ``iterations`` from X0."""
    best = float("inf")
    for _ in range(repeats):
        X = solver.start()
        started = time.perf_counter()
        X = solver.steps(X, iterations)
        best = min(best, time.perf_counter() - started)
    return X, best


def solve_case(solver, name, points, problem, settings, chunk, threads=1):
    """The outcome of one solver on one case (both passes of the module docstring)."""
    outcome = Outcome(solver=name, n=problem.n, dim=problem.dim, threads=threads)
    with contextlib.closing(solver):
        iterations, spent = iterations_to_target(solver, points, settings, chunk)
        if iterations is None:
            outcome.status = "not reached"
            outcome.reason = (f"disparity above {settings.target:g} after {spent:.3g} s "
                              f"(budget {settings.budget:g} s, at most {settings.max_iterations} iterations)")
            return outcome
        X, outcome.seconds = best_seconds(solver, iterations, settings.repeats)
    outcome.iterations = iterations
    outcome.disparity = procrustes_disparity(points, X)
    outcome.stress = stress(X, problem.D)
    return outcome


def run(settings, progress=None):
    """Every backend of ``settings`` and SMACOF on every case: a list of :class:`Outcome`."""
    outcomes = []
    for dim in settings.dims:
        for n in settings.sizes:
            points = target_shape(n, dim)
            problem = validate(distance_matrix(points), dim, niter=0, dtype=settings.dtype,
                               seed=settings.seed)
            for name in (*settings.backends, PEER):
                if progress:
                    progress(f"{name} N={n} dim={dim}")
                outcomes.append(_guarded(name, points, problem, settings))
    return outcomes


def _guarded(name, points, problem, settings):
    try:
        return _one(name, points, problem, settings)
    except Exception as exc:  # one broken solver must not lose the rest of the comparison
        return Outcome(solver=name, n=problem.n, dim=problem.dim, status="failed",
                       reason=f"{type(exc).__name__}: {exc}".splitlines()[0])


def _one(name, points, problem, settings):
    if name == PEER:
        reason = peer_missing()
        if reason:
            return Outcome(solver=name, n=problem.n, dim=problem.dim, status="skipped", reason=reason)
        return solve_case(_Smacof(problem), name, points, problem, settings, chunk=1)
    backend = backends.get(name)
    threads = (settings.threads or backend.default_threads()) if backend.parallel else 1
    reason = backend.check(problem, threads)
    if reason:
        return Outcome(solver=name, n=problem.n, dim=problem.dim, status="skipped", reason=reason,
                       threads=threads)
    return solve_case(_GradiSolver(backend, problem, threads), name, points, problem, settings,
                      CHECK_EVERY, threads)
