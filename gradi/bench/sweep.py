"""``gradi bench``: time every backend on the same problems, after checking that it is right.

The sweep runs backends x N x dim. Each case (N, dim) is built and validated once — the blog's
circle (dim 2) or sphere (dim 3), gradi's seeded start X0, ``lr="auto"``, the asked dtype — so
every backend gets the same D, X0, lr and dtype; D is built in that dtype, and only once the memory
left holds it and its validated copy (gradi.memory.case_bytes): else, or when validation refuses
the case, every backend of it is skipped with the reason. For each backend of a case:

1. skip it, with the reason, if it cannot run the case (unavailable, dtype, memory) or if one
   iteration, extrapolated as N^2 from the fastest repeat at a smaller N of the same sweep,
   exceeds ``EXTRAPOLATION_MARGIN`` times ``budget``; between 1 and that many times, the
   extrapolation (blind to overheads, caches and a busy machine) is only a hint: timed single
   iterations (probes, the best of up to ``PROBES``) decide, and the backend is skipped if one
   alone exceeds ``budget``;
2. ``prepare`` (compile / JIT) is timed on its own: that is the reported compile time;
3. agreement: ``check_iterations`` (20) steps from X0 are compared with gradi's float64
   reference (``gradi.testing.reference_descend``) with the dtype's tolerance; a backend that
   disagrees (or goes non-finite) is excluded from the timings and flagged with the error;
4. steady state: an untimed warm-up run (unless the check already ran as many iterations), then
   ``repeats`` runs of ``iterations_run`` steps, each from a fresh copy of X0, timed around
   ``descend`` only. ``iterations_run`` is ``niter`` unless a run would exceed
   ``budget`` seconds (the slow seed tiers, or any backend at a large N): then it runs as many
   iterations as fit (at least one) and the time is scaled per iteration to ``niter`` — each
   iteration does the same work, so the scaling is linear — and marked ``scaled``.
   The cost per iteration that decides it is the best of the check run and up to ``PROBES`` - 1
   more runs as long (together at most about ``budget``): one stalled run (a thread team's first
   start, a busy machine) no longer cuts the iterations of a backend that is really fast.
   With more than one thread, the core-to-core round trip is measured just before and just
   after the repeats (``probes.round_trip_now``): on a VM whose host moves the vCPUs between
   dies it tells which placement a parallel figure was taken in.

When the first N of a sweep has no smaller N to extrapolate from, probes give the estimate; a
backend they found over budget is extrapolated from that at the next N, never probed again
(one iteration of a seed tier at N=4000 can take minutes).
Ctrl-C stops the sweep and keeps every measurement that finished.

Every time above is read from the sweep's ``clock`` (``time.perf_counter`` unless the caller
gives another, as the tests do to drive the budget logic without waiting).
"""

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from .. import backends, host, memory, shapes
from ..problem import distance_matrix
from ..testing import RELATIVE_TOLERANCE, max_relative_error, reference_descend
from ..validation import threads_for, validate
from . import probes
from .prepared import PreparedRun

CHECK_ITERATIONS = 20
EXTRAPOLATION_MARGIN = 4.0
PROBES = 3
REFERENCE_BACKEND = "numpy"


@dataclass(frozen=True)
class Settings:
    """What to sweep and how hard to measure; ``budget`` is seconds per timed run."""

    backends: tuple
    sizes: tuple = (10, 100, 1000)
    dims: tuple = (2, 3)
    niter: int = 1000
    threads: int | None = None
    dtype: str = "float32"
    repeats: int = 3
    budget: float = 10.0
    seed: int = 42
    check_iterations: int = CHECK_ITERATIONS


QUICK = {"sizes": (10, 100, 1000), "dims": (2, 3), "niter": 1000, "repeats": 3, "budget": 0.5}


@dataclass
class Measurement:
    """One backend on one case: its status and, when ``ok``, every timed repeat."""

    backend: str
    language: str
    tier: str
    parallel: bool
    sources: tuple
    n: int
    dim: int
    dtype: str
    niter: int
    threads: int
    lr: float
    status: str = "ok"  # "ok", "excluded" (wrong or diverged), "skipped" (cannot or too slow), "failed"
    reason: str = ""
    iterations_run: int = 0
    repeat_seconds: list = field(default_factory=list)
    prepare_seconds: float | None = None
    check_iterations: int = 0
    check_error: float | None = None
    check_tolerance: float | None = None
    probe_seconds: float | None = None  # one iteration, when the probes found it over budget
    round_trip_seconds: tuple | None = None  # core-to-core, before and after the repeats (threads > 1)

    @property
    def scaled(self):
        return self.status == "ok" and self.iterations_run < self.niter

    @property
    def seconds_per_iteration(self):
        return statistics.median(self.repeat_seconds) / self.iterations_run

    @property
    def best_seconds_per_iteration(self):
        """The fastest repeat per iteration: the least disturbed estimate of the cost."""
        return min(self.repeat_seconds) / self.iterations_run

    @property
    def seconds(self):
        """Median time of ``niter`` iterations (scaled per iteration when fewer were run)."""
        return self.seconds_per_iteration * self.niter


@dataclass
class Sweep:
    """Everything a sweep measured, in order; ``interrupted`` if Ctrl-C stopped it early."""

    settings: Settings
    measurements: list = field(default_factory=list)
    interrupted: bool = False
    started: float = field(default_factory=time.time)
    finished: float | None = None


def target(n, dim):
    """The blog's shapes: a circle in 2-D, a sphere in 3-D; a seeded random cloud otherwise."""
    if dim == 2:
        return shapes.circle(n)
    if dim == 3:
        return shapes.sphere(n)
    return shapes.cube(n, dim)


class _Reference:
    """Float64 reference positions after k steps of one case, extended only as far as asked."""

    def __init__(self, problem):
        self.problem = problem
        self.states = [np.array(problem.X0, dtype=np.float64)]

    def after(self, iterations):
        while len(self.states) <= iterations:
            self.states.append(reference_descend(self.states[-1], self.problem.D, self.problem.lr, 1))
        return self.states[iterations]


def affordable_iterations(seconds_per_iteration, budget, niter):
    """Iterations that fit in ``budget`` seconds, between 1 and ``niter``."""
    if seconds_per_iteration <= 0:
        return niter
    return max(1, min(niter, math.floor(budget / seconds_per_iteration)))


def best_seconds_per_iteration(runner, iterations, budget, measured=()):
    """The least disturbed cost of one iteration: the best of ``PROBES`` runs of ``iterations``
    steps, counting the ``measured`` seconds of runs already made.

    Runs stop early once another, at the best speed seen, would take the time they spent past
    ``budget``: a slow backend pays about one budget for the estimate, a fast one a few runs.
    """
    samples, spent = list(measured), 0.0
    while len(samples) < PROBES and spent + min(samples, default=0.0) <= budget:
        _, seconds = runner.timed(iterations)
        samples.append(seconds)
        spent += seconds
    return min(samples) / iterations


def measure(backend, problem, reference, settings, estimate=None, clock=time.perf_counter):
    """Check and time one backend on one validated case (see the module docstring)."""
    result = _start(backend, problem, settings)
    reason = backend.check(problem, result.threads)
    if reason is None and estimate is not None and estimate > EXTRAPOLATION_MARGIN * settings.budget:
        reason = (f"one iteration would take about {estimate:.3g} s (extrapolated from a smaller N), "
                  f"over {EXTRAPOLATION_MARGIN:g} x the budget of {settings.budget:g} s per run")
    if reason is not None:
        return _finish(result, "skipped", reason)

    with PreparedRun(backend, problem, result.threads, clock) as runner:
        result.prepare_seconds = runner.prepare_seconds
        return _timed(runner, result, reference, settings, estimate)


def _timed(runner, result, reference, settings, estimate):
    """Steps 3 and 4 of the module docstring on a prepared backend."""
    problem = runner.problem
    if estimate is None or estimate > settings.budget:
        estimate = best_seconds_per_iteration(runner, 1, settings.budget)
        if estimate > settings.budget:
            result.probe_seconds = estimate
            return _finish(result, "skipped", f"one iteration took {estimate:.3g} s, over the budget "
                                              f"of {settings.budget:g} s per run")
    check = min(settings.check_iterations, affordable_iterations(estimate, settings.budget, settings.niter))
    X, seconds = runner.timed(check)
    result.check_iterations = check
    result.check_tolerance = RELATIVE_TOLERANCE[result.dtype]
    finite = bool(np.all(np.isfinite(X)))
    result.check_error = max_relative_error(X, reference.after(check), problem.D) if finite else math.inf
    if not result.check_error <= result.check_tolerance:
        return _finish(result, "excluded",
                       f"disagrees with the float64 reference after {check} iterations: error "
                       f"{result.check_error:.3g} of the scale, tolerance {result.check_tolerance:g}")

    per_iteration = best_seconds_per_iteration(runner, check, settings.budget, [seconds])
    result.iterations_run = affordable_iterations(per_iteration, settings.budget, settings.niter)
    if result.iterations_run != check:  # warm up: a fresh executable's first call, caches
        runner.timed(result.iterations_run)
    before = probes.round_trip_now() if result.threads > 1 else None
    for _ in range(settings.repeats):
        X, seconds = runner.timed(result.iterations_run)
        if not np.all(np.isfinite(X)):
            return _finish(result, "excluded", f"positions became non-finite within "
                                               f"{result.iterations_run} iterations")
        result.repeat_seconds.append(seconds)
    if before is not None:
        result.round_trip_seconds = (before, probes.round_trip_now())
    return result


def _start(backend, problem, settings):
    """The case's problem for this backend and an empty record of it.

    Threads: ``settings.threads`` or the backend's own default (all cores for most parallel
    backends) if the backend is parallel, else one.
    """
    threads = _threads(backend, settings)
    return Measurement(backend=backend.name, language=backend.language, tier=backend.tier,
                         parallel=backend.parallel, sources=tuple(backend.sources), n=problem.n,
                         dim=problem.dim, dtype=problem.dtype.name, niter=settings.niter,
                         threads=threads, lr=problem.lr)


def _finish(result, status, reason):
    result.status, result.reason = status, reason
    result.repeat_seconds.clear()
    return result


def run_sweep(settings, progress=None, clock=time.perf_counter):
    """Measure every backend of ``settings`` on every case; returns a :class:`Sweep`.

    ``progress`` (optional) has ``start(index, total, backend, n, dim)`` and ``done(measurement)``.
    ``clock`` gives the seconds every timing reads. A backend that raises is recorded as
    ``failed`` with the error, and the sweep goes on; Ctrl-C (KeyboardInterrupt) ends the sweep,
    which keeps what finished and sets ``interrupted``.
    """
    with host.one_blas_thread():  # no BLAS worker left spinning on a core a backend is timed on
        return _measure_cases(settings, progress, clock)


def _measure_cases(settings, progress, clock):
    """run_sweep's loop over cases and backends."""
    sweep = Sweep(settings)
    sizes = sorted(set(settings.sizes))
    total = len(settings.backends) * len(sizes) * len(settings.dims)
    last = {}  # (backend, dim) -> (n, seconds per iteration) of the largest N measured so far
    index = 0
    try:
        for dim in settings.dims:
            for n in sizes:
                problem, refusal = _case(n, dim, settings)
                reference = None if problem is None else _Reference(problem)
                for name in settings.backends:
                    index += 1
                    backend = backends.get(name)
                    if progress:
                        progress.start(index, total, name, n, dim)
                    if problem is None:  # skip the case, with the reason, and keep the sweep
                        sweep.measurements.append(_unbuildable(backend, n, dim, settings, refusal))
                        if progress:
                            progress.done(sweep.measurements[-1])
                        continue
                    estimate = _extrapolate(last.get((name, dim)), n)
                    measurement = _guarded(backend, problem, reference, settings, estimate, clock)
                    if measurement.status == "ok":
                        last[(name, dim)] = (n, measurement.best_seconds_per_iteration)
                    elif measurement.probe_seconds is not None:  # the next N extrapolates, not probes
                        last[(name, dim)] = (n, measurement.probe_seconds)
                    sweep.measurements.append(measurement)
                    if progress:
                        progress.done(measurement)
    except KeyboardInterrupt:
        sweep.interrupted = True
    sweep.finished = time.time()
    return sweep


def _case(n, dim, settings):
    """(the validated problem of case (n, dim), None), or (None, why it cannot be built): too
    large for the memory left (checked before D exists), or refused by validation."""
    refusal = memory.refusal(f"problem too large: N={n}, dim={dim} in {settings.dtype}",
                             memory.case_bytes(n, dim, settings.dtype))
    if refusal is not None:
        return None, refusal
    try:
        return validate(distance_matrix(target(n, dim), settings.dtype), dim, niter=settings.niter,
                        dtype=settings.dtype, seed=settings.seed,
                        backend=backends.get(REFERENCE_BACKEND)), None
    except ValueError as exc:
        return None, str(exc)


def _extrapolate(previous, n):
    if previous is None:
        return None
    n_before, seconds = previous
    return seconds * (n / n_before) ** 2


def _unbuildable(backend, n, dim, settings, reason):
    """The record of a backend on a case that could not be built (see _case)."""
    return Measurement(backend=backend.name, language=backend.language, tier=backend.tier,
                       parallel=backend.parallel, sources=tuple(backend.sources), n=n, dim=dim,
                       dtype=settings.dtype, niter=settings.niter,
                       threads=_threads(backend, settings), lr=math.nan, status="skipped",
                       reason=reason)


def _threads(backend, settings):
    """The threads ``backend`` runs with in this sweep (gradi.validation.threads_for)."""
    return threads_for(backend, settings.threads)


def _guarded(backend, problem, reference, settings, estimate, clock):
    try:
        return measure(backend, problem, reference, settings, estimate, clock)
    except Exception as exc:  # one broken backend must not lose the rest of a long sweep
        return _finish(_start(backend, problem, settings), "failed", f"{type(exc).__name__}: {exc}".splitlines()[0])


class Progress:
    """One line per measurement on a stream (stderr): what runs, how many are left, the outcome."""

    def __init__(self, stream):
        self.stream = stream
        self.started = None

    def start(self, index, total, backend, n, dim):
        self.started = time.perf_counter()
        self.stream.write(f"[{index}/{total}] {backend} N={n} dim={dim} ... ")
        self.stream.flush()

    def done(self, measurement):
        wall = time.perf_counter() - self.started
        if measurement.status == "ok":
            scaled = f", ran {measurement.iterations_run} and scaled" if measurement.scaled else ""
            outcome = (f"{measurement.seconds:.4g} s for {measurement.niter} iterations{scaled} "
                       f"[{wall:.1f} s]")
        else:
            outcome = f"{measurement.status}: {measurement.reason}"
        self.stream.write(outcome + "\n")
        self.stream.flush()
