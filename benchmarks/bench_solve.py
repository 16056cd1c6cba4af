"""Steady-state speed: one backend call of ``common.ITERATIONS`` gradient steps."""

from . import common


class Solve:
    """Seconds per backend call of ITERATIONS (10) steps, float32, lr="auto" (divide by 10 for
    one step). Every backend runs the same steps from the same start, so rows compare directly.
    Validation, compilation and the correctness check are setup; the timed call is the backend's
    ``descend`` on an already validated problem, from a fresh copy of X0 (N x dim, negligible).
    Serial backends skip threads > 1; python and numpy-loops stop at N=100 (``common.MAX_N``).
    """

    params = [common.BACKEND_NAMES, common.SIZES, common.DIMS, common.THREADS]
    param_names = ["backend", "N", "dim", "threads"]
    version = "1"

    def setup_cache(self):
        return common.references()

    def setup(self, references, backend, n, dim, threads):
        self.run = common.prepared(references, backend, n, dim, threads)

    def time_descend(self, references, backend, n, dim, threads):
        common.descend(self.run)
