"""``gradi bench --to-solution``: seconds to a target accuracy, against SMACOF and s_gd2.

The fixed-iteration sweep (gradi.bench.sweep) compares stacks per iteration; a user recovering
positions wants the answer. Here every solver starts from gradi's seeded X0 on the same shape,
from exact distances (``shape``: one of gradi.shapes.NAMED, by default the sweep's circle in
2-D and sphere in 3-D), and the Procrustes disparity of what it returns to the true shape is
measured; it reached the target when that is at most ``target``. How many iterations plain
gradient descent needs depends on the shape's conditioning: a circle's stress is well
conditioned, the glyph outlines of ``text`` are not (README, "Time to solution"). Each solver
runs the way its users run it:

- gradi's backends: ``gradi.solve`` with ``lr="auto"``, in the sweep's dtype (float32 by
  default), stopped by its own rule (``tol``, gradi.convergence) — no oracle. ``tol`` is the
  target's square root: a ``tol`` puts exact data's positions within a Procrustes disparity of
  ``tol**2``. The seconds are the whole call's wall time (validation, ``prepare``
  and the final reference stress included), after one untimed call that compiles what a backend
  compiles (JAX, Mojo).
- scikit-learn's SMACOF (``sklearn.manifold.smacof``, metric, one init, ``init=X0``, float64;
  it minimises the stress of distances rather than of squared distances): given the best case,
  the exact number of iterations the target needs, found by a first pass that measures the
  disparity after every iteration (not timed); then one uninterrupted run of exactly that many.
- s_gd2 (stochastic gradient descent on the stress, Zheng et al. 2018; PyPI ``s-gd2``,
  ``mds_direct`` in 2-D and 3-D): its own defaults (unit weights, its step schedule, its 30
  epochs), timed with the conversion of D to the condensed form it takes.

Times are the best of at least ``repeats`` back-to-back runs spanning at least ``window``
seconds: on a shared machine a burst of noise can cover five 3 ms runs but not half a second of
them, so a fast solver's best is taken over as much of the machine's time as a slow one's. A
solver whose estimated time exceeds ``budget`` seconds, or that needs more than
``max_iterations``, is reported as not reaching the target, with why.
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from .. import backends, shapes
from ..align import procrustes_disparity
from ..convergence import DEFAULT_CHECK_EVERY
from ..problem import distance_matrix, stress
from ..solver import solve
from ..validation import threads_for, validate
from .prepared import best_of
from .sweep import target as target_shape

SMACOF = "smacof"
SGD = "s_gd2"
PEERS = (SMACOF, SGD)
CHECK_EVERY = DEFAULT_CHECK_EVERY  # gradi's solves check, and so stop, every this many iterations
DEFAULT_TARGET = 1e-8


@dataclass(frozen=True)
class Settings:
    """What to solve and how hard: ``target`` disparity, ``budget`` seconds per solver and case."""

    backends: tuple
    sizes: tuple = (300, 1000)
    dims: tuple | None = None  # None: 2 and 3, or the shape's own dimension
    dtype: str = "float32"
    threads: int | None = None
    target: float = DEFAULT_TARGET
    max_iterations: int = 20_000
    repeats: int = 3
    window: float = 0.5
    budget: float = 10.0
    seed: int = 42
    shape: str | None = None  # a name in gradi.shapes.NAMED; None: the sweep's (circle, sphere)

    def __post_init__(self):
        if self.shape is not None and self.shape not in shapes.NAMED:
            raise ValueError(f"shape must be one of {', '.join(sorted(shapes.NAMED))}, got {self.shape!r}")
        own = None if self.shape is None else shapes.NAMED[self.shape][1]
        if self.dims is None:
            object.__setattr__(self, "dims", (2, 3) if own is None else (own,))
        elif own is not None and set(self.dims) != {own}:
            raise ValueError(f"shape {self.shape!r} is {own}-D; dims must be {own}, got "
                             f"{','.join(map(str, self.dims))}")

    @property
    def tol(self):
        """gradi's ``tol`` for this target (see the module docstring)."""
        return math.sqrt(self.target)

    def points(self, n, dim):
        """The true positions of the case (N, dim)."""
        return target_shape(n, dim) if self.shape is None else shapes.named(self.shape, n, dim)


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


def peer_missing(name):
    """Why the peer ``name`` cannot be compared here (its package absent, or this case), or None."""
    module, package = {SMACOF: ("sklearn.manifold", "scikit-learn"), SGD: ("s_gd2", "s-gd2")}[name]
    try:
        __import__(module)
    except ImportError:
        return f"{package} is not installed (pip install 'gradi[peers]')"
    return None


def iterations_to_target(solver, points, settings):
    """(iterations, seconds spent) until the disparity to ``points`` is at most the target, one
    iteration at a time; iterations None when ``max_iterations`` or the budget run out first."""
    X, done, spent = solver.start(), 0, 0.0
    while done < settings.max_iterations:
        started = time.perf_counter()
        with np.errstate(all="ignore"):
            X = solver.steps(X, 1)
        spent += time.perf_counter() - started
        done += 1
        if not np.all(np.isfinite(X)):
            return None, spent
        if procrustes_disparity(points, X) <= settings.target:
            return done, spent
        if spent > settings.budget:
            return None, spent
    return None, spent


def run(settings, progress=None):
    """Every backend of ``settings`` and the peers on every case: a list of :class:`Outcome`."""
    outcomes = []
    for dim in settings.dims:
        for n in settings.sizes:
            points = settings.points(n, dim)
            D = distance_matrix(points)
            problem = validate(D, dim, niter=0, dtype=settings.dtype, seed=settings.seed)
            for name in (*settings.backends, *PEERS):
                if progress:
                    progress(f"{name} N={n} dim={dim}")
                outcomes.append(_guarded(name, points, D, problem, settings))
    return outcomes


def _guarded(name, points, D, problem, settings):
    try:
        return _one(name, points, D, problem, settings)
    except Exception as exc:  # one broken solver must not lose the rest of the comparison
        return Outcome(solver=name, n=problem.n, dim=problem.dim, status="failed",
                       reason=f"{type(exc).__name__}: {exc}".splitlines()[0])


def _one(name, points, D, problem, settings):
    outcome = Outcome(solver=name, n=problem.n, dim=problem.dim)
    if name in PEERS:
        outcome.reason = peer_missing(name) or _peer_refusal(name, problem)
        if outcome.reason:
            outcome.status = "skipped"
            return outcome
        return (_smacof if name == SMACOF else _sgd)(outcome, points, problem, settings)
    backend = backends.get(name)
    outcome.threads = threads_for(backend, settings.threads)
    outcome.reason = backend.check(problem, outcome.threads) or ""
    if outcome.reason:
        outcome.status = "skipped"
        return outcome
    return _gradi(outcome, backend, points, D, settings)


def _gradi(outcome, backend, points, D, settings):
    """A gradi backend solved to its own stop, within the iterations the budget allows."""

    def solved(niter, tol=settings.tol):
        return solve(D, outcome.dim, backend=backend.name, niter=niter, threads=outcome.threads,
                     dtype=settings.dtype, seed=settings.seed, tol=tol)

    pace = solved(1, tol=None).elapsed  # untimed: compiles what the backend compiles
    affordable = int(settings.budget / max(pace, 1e-12)) // CHECK_EVERY * CHECK_EVERY
    niter = min(settings.max_iterations, affordable)
    if niter < CHECK_EVERY:
        return _not_reached(outcome, f"one check interval ({CHECK_EVERY} iterations) would take "
                                     f"{pace * CHECK_EVERY:.3g} s, over the budget of {settings.budget:g} s")
    result, outcome.seconds = best_of(lambda: solved(niter), settings.repeats, settings.window)
    outcome.iterations = result.iterations
    outcome.disparity = procrustes_disparity(points, result.X)
    outcome.stress = result.stress
    if result.stop_reason != "converged":
        limit = "max_iterations" if niter == settings.max_iterations else f"budget {settings.budget:g} s"
        return _not_reached(outcome, f"tol={settings.tol:g} had not stopped it after {niter} iterations "
                                     f"(at most {niter} iterations: {limit}); disparity {outcome.disparity:.2e}")
    if outcome.disparity > settings.target:
        return _not_reached(outcome, f"tol={settings.tol:g} stopped it after {result.iterations} iterations "
                                     f"at disparity {outcome.disparity:.2e}")
    return outcome


def _smacof(outcome, points, problem, settings):
    """SMACOF timed over exactly the iterations the target needs (see the module docstring)."""
    solver = _Smacof(problem)
    iterations, spent = iterations_to_target(solver, points, settings)
    if iterations is None:
        return _not_reached(outcome, f"disparity above {settings.target:g} after {spent:.3g} s "
                                     f"(budget {settings.budget:g} s, at most {settings.max_iterations} iterations)")
    X, outcome.seconds = best_of(lambda: solver.steps(solver.start(), iterations),
                                   settings.repeats, settings.window)
    return _reached(outcome, points, problem, X, iterations)


def _sgd(outcome, points, problem, settings):
    """s_gd2 with its defaults, from X0 (see the module docstring)."""
    import s_gd2
    from scipy.spatial.distance import squareform

    D = np.asarray(problem.D, dtype=np.float64)
    X0 = np.asarray(problem.X0, dtype=np.float64)

    def layout():
        return s_gd2.mds_direct(problem.n, squareform(D, checks=False), num_dimensions=problem.dim,
                                random_seed=settings.seed, init=X0.copy())

    X, outcome.seconds = best_of(layout, settings.repeats, settings.window)
    epochs = len(s_gd2.default_schedule(np.ones(1)))  # its default schedule's length
    outcome = _reached(outcome, points, problem, X, epochs)
    if outcome.disparity > settings.target:
        return _not_reached(outcome, f"its defaults stop at disparity {outcome.disparity:.2e}")
    return outcome


def _peer_refusal(name, problem):
    """Why the peer cannot run this case although installed (s_gd2 lays out 2-D and 3-D only)."""
    if name == SGD and problem.dim not in (2, 3):
        return f"s_gd2 lays out in 2-D or 3-D only, not dim={problem.dim}"
    return ""


def _reached(outcome, points, problem, X, iterations):
    outcome.iterations = iterations
    outcome.disparity = procrustes_disparity(points, X)
    outcome.stress = stress(X, problem.D) / problem.scale**4
    return outcome


def _not_reached(outcome, reason):
    outcome.status, outcome.reason = "not reached", reason
    return outcome

