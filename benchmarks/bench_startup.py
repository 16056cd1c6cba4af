"""Cold start: from a fresh interpreter to the first result of a solve."""

from . import common


class Startup:
    """Seconds from a fresh Python process to the first ``gradi.solve`` result (N=100, sphere,
    ITERATIONS steps): importing gradi and the backend's library, loading the extension, JIT
    compilation and the solve itself. Only interpreter start-up is excluded (asv's ``timeraw_``).
    Backends that compile on first use into a cache (Mojo) are measured with that cache warm:
    setup has already run the backend once.
    """

    params = [common.BACKEND_NAMES]
    param_names = ["backend"]
    version = "1"
    repeat = (3, 10, 20.0)
    warmup_time = 0

    def setup_cache(self):
        return common.references()

    def setup(self, references, backend):
        common.check(references, backend, 100, 3, common.default_threads(backend))

    def timeraw_first_solve(self, references, backend):
        return f"""
import gradi
D = gradi.distance_matrix(gradi.shapes.sphere(100))
gradi.solve(D, 3, backend={backend!r}, niter={common.ITERATIONS}, dtype={common.DTYPE!r})
"""
