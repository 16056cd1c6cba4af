"""Speed-up tracks: each backend against the blog's baselines and against idiomatic NumPy."""

from gradi.bench.report import BASELINES

from . import common

ROUNDS = 5


class SpeedUp:
    """Baseline seconds / backend seconds (unit "x"; higher is faster) for one call of
    ITERATIONS steps on the sphere (dim 3, float32), each at its default threads (all cores if
    parallel). Both are measured in the same process, samples alternated, best of ROUNDS samples
    of at least 20 ms each (``common.interleaved_best``), so the ratio is robust to a busy machine.
    python and numpy-loops are baselines only up to N=100 (``common.MAX_N``).
    """

    params = [common.BACKEND_NAMES, list(BASELINES), [100, 1000]]
    param_names = ["backend", "baseline", "N"]
    unit = "x"

    def setup_cache(self):
        return common.references()

    def setup(self, references, backend, baseline, n):
        if backend == baseline:
            raise NotImplementedError("a backend against itself is 1x")
        self.runs = [common.prepared(references, name, n, 3, common.default_threads(name))
                     for name in (baseline, backend)]

    def track_speedup(self, references, backend, baseline, n):
        baseline_seconds, backend_seconds = common.interleaved_best(self.runs, ROUNDS)
        return baseline_seconds / backend_seconds
