"""Speed-up tracks: each backend against the blog's baselines and against idiomatic NumPy."""

from . import common

ROUNDS = 5


class SpeedUp:
    """Baseline seconds / backend seconds (unit "x"; higher is faster) for one call of
    ITERATIONS steps on the sphere (dim 3, float32), each at its default threads (all cores if
    parallel). Both are measured in the same process, samples alternated, best of ROUNDS samples
    of at least 20 ms each (``common.interleaved_best``), so the ratio is robust to a busy machine.
    python and numpy-loops are baselines only up to N=100 (``common.MAX_N``). The ratio is kept
    to 3 significant digits (its run-to-run noise is larger than that).
    """

    params = [common.BACKEND_NAMES, ["python", "numpy-loops", "numpy"], [100, 1000]]
    param_names = ["backend", "baseline", "N"]
    unit = "x"
    version = "1"

    def setup_cache(self):
        return common.references()

    def setup(self, references, backend, baseline, n):
        if backend == baseline:
            raise NotImplementedError("a backend against itself is 1x")
        self.runs = [common.prepared(references, name, n, 3, common.default_threads(name))
                     for name in (baseline, backend)]

    def track_speedup(self, references, backend, baseline, n):
        baseline_seconds, backend_seconds = common.interleaved_best(self.runs, ROUNDS)
        return common.significant(baseline_seconds / backend_seconds, 3)
