"""Memory: the peak resident size of a process that solved one problem."""

import gradi

from . import common


class Memory:
    """Peak RSS in bytes of a process that ran ``gradi.solve`` (float32, sphere, ITERATIONS
    steps, the backend's default threads). asv's ``peakmem_`` measures the whole process, so the
    figure includes the interpreter and the backend's libraries (JAX, Mojo runtime) as a user
    pays them; the float64 references are computed in ``setup_cache``'s own process and do not
    count, and the check in ``setup`` releases what it prepared, so the peak is the solve's.
    """

    params = [common.BACKEND_NAMES, [100, 1000]]
    param_names = ["backend", "N"]
    version = "2"

    def setup_cache(self):
        return common.references()

    def setup(self, references, backend, n):
        common.check(references, backend, n, 3, common.default_threads(backend))
        self.D = common.distances(n, 3)

    def peakmem_solve(self, references, backend, n):
        gradi.solve(self.D, 3, backend=backend, niter=common.ITERATIONS, dtype=common.DTYPE)
