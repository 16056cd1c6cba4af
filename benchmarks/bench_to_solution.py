"""Time to solution: a whole ``gradi.solve`` stopped by its own ``tol``, as a user runs it."""

import gradi
from gradi.align import procrustes_disparity
from gradi.bench.solution import Settings
from gradi.bench.sweep import target

from . import common

# gradi bench --to-solution's defaults: the disparity to reach, the tol tied to it, the cap
SETTINGS = Settings(backends=())


class ToSolution:
    """Seconds of one whole ``gradi.solve`` (validation, the step size, ``prepare``, the
    iterations, the checks and the final reference stress) on the circle of N points, float32,
    one thread, ``lr="auto"``, stopped by the ``tol`` of ``gradi bench --to-solution``; and the
    iterations it ran, a counted track that moves only when the step size, the stopping rule or
    the arithmetic changes. Setup checks that the run stopped by itself at a Procrustes
    disparity of at most that bench's target, so a stop that came too early posts no number.
    Python and numpy-loops skip (``common.MAX_N``).
    """

    params = [common.BACKEND_NAMES, [300, 1000]]
    param_names = ["backend", "N"]
    version = "1"

    def setup(self, backend, n):
        points = target(n, 2)
        self.D = gradi.distance_matrix(points)
        common.skip_unless_runnable(backend, common.make_problem(n, 2), 1)
        result = self.solve(backend)
        disparity = procrustes_disparity(points, result.X)
        if result.stop_reason != "converged" or disparity > SETTINGS.target:
            raise AssertionError(f"{backend} N={n}: {result.stop_reason} after {result.iterations} "
                                 f"iterations at disparity {disparity:.2e} (target {SETTINGS.target:g})")
        self.iterations = result.iterations

    def solve(self, backend):
        return gradi.solve(self.D, 2, backend=backend, threads=1, dtype=common.DTYPE, tol=SETTINGS.tol,
                           niter=SETTINGS.max_iterations)

    def time_solve(self, backend, n):
        self.solve(backend)

    def track_iterations(self, backend, n):
        return self.iterations

    track_iterations.unit = "iterations"
