"""``numpy``: the idiomatic NumPy formulation, no Python loop over points.

With C_ij = |X_i - X_j|^2 - D_ij^2 the gradient is ``4 (rowsum(C) X - C X)``: matrix products
instead of an N x N x dim broadcast. Squared distances come from the Gram matrix of X centred on
its mean — translation does not change distances, and centring avoids the cancellation that the
expansion |a|^2 + |b|^2 - 2ab suffers far from the origin.

C is worked through in fixed blocks of ``BLOCK_ROWS`` rows (a block stays in cache), and
``threads`` workers take the blocks; NumPy releases the GIL inside each call, so they run at
once. Every block is computed by the same calls, with BLAS held to one thread, whichever worker
takes it, and the blocks do not depend on the thread count: the result is bit-identical for
every ``threads``. (Letting NumPy's BLAS split its products over threads instead gives results
that differ in the last bits between thread counts.) D^2, the workers and one block buffer per
worker are set up once per solve (``prepare``).
"""

import queue
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import host
from .base import Backend, State
from .stress_step import check_stress_niter

BLOCK_ROWS = 256  # rows of C per block: the unit of work of a thread


def block_gradient(X, Xc, sq, D2, C, start, grad, stress=False):
    """Rows [start, start + len(C)) of the gradient / 4 into ``grad``, using C as the block's
    buffer; with ``stress``, returns the block's sum of C_ij^2 (each row's in the working dtype,
    as the step's row sums of C, the rows added in float64)."""
    stop = start + len(C)
    np.matmul(Xc[start:stop], Xc.T, out=C)
    C *= -2.0
    C += sq[start:stop, None]
    C += sq[None, :]
    C -= D2[start:stop]
    grad[start:stop] = C.sum(axis=1)[:, None] * X[start:stop] - C @ X
    return float(np.einsum("ij,ij->i", C, C).sum(dtype=np.float64)) if stress else None


class Workspace:
    """What one solve reuses: D^2, a block buffer per worker, and the workers (threads > 1)."""

    def __init__(self, D, threads):
        n = D.shape[0]
        self.D2 = D * D
        self.starts = range(0, n, BLOCK_ROWS)
        workers = min(threads, len(self.starts))
        rows = min(BLOCK_ROWS, n)
        # One allocation, so that every buffer has the same alignment whichever worker uses it.
        self.buffers = queue.SimpleQueue()
        for buffer in np.empty((workers, rows, n), dtype=D.dtype):
            self.buffers.put(buffer)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="gradi-numpy") if workers > 1 else None

    def gradient(self, X, grad, stress=False):
        """The gradient / 4 of X into ``grad``, block by block; with ``stress``, returns the
        stress of X (the blocks' sums of C_ij^2 added in block order, halved: C holds every
        ordered pair)."""
        n = X.shape[0]
        Xc = X - X.mean(axis=0)
        sq = np.einsum("ij,ij->i", Xc, Xc)
        errors = np.geterr()  # the caller's floating-point error handling, for the workers too

        def block(start):
            buffer = self.buffers.get()
            try:
                with np.errstate(**errors):
                    return block_gradient(X, Xc, sq, self.D2, buffer[: min(BLOCK_ROWS, n - start)], start, grad,
                                          stress)
            finally:
                self.buffers.put(buffer)

        if self.pool is None:
            sums = [block(start) for start in self.starts]
        else:
            sums = [done.result() for done in [self.pool.submit(block, start) for start in self.starts]]
        return sum(sums) / 2 if stress else None

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


def descend_matrix(X, workspace, lr, niter, stress=False):
    """``niter`` gradient steps in matrix form on X in place; with ``stress``, returns
    ``(X, stress of the positions the last step started from)``."""
    step = X.dtype.type(4.0 * lr)
    grad = np.empty_like(X)
    for _ in range(niter - 1 if stress else niter):
        workspace.gradient(X, grad)
        X -= step * grad
    if not stress:
        return X
    total = workspace.gradient(X, grad, stress=True)
    X -= step * grad
    return X, total


class NumpyMatrix(Backend):
    name = "numpy"
    language = "NumPy"
    tier = "idiomatic"
    parallel = True
    summary = ("matrix form 4(rowsum(C) X - C X), no Python loop over points; `threads` workers "
               "over fixed row blocks, BLAS on one thread each")
    sources = ("gradi/backends/numpy_matrix.py",)

    def working_bytes(self, n, dim, itemsize, threads):
        # D^2, one block buffer per worker, and per block its row sums and three rows x dim
        # products; the centred X, its squared norms, the gradient and the step (N x dim); the
        # workers' Python objects.
        workers = min(threads, -(-n // BLOCK_ROWS))
        rows = min(BLOCK_ROWS, n)
        return (n * n + workers * rows * (n + 1 + 3 * dim) + n * (3 * dim + 1)) * itemsize + (256 << 10)

    def prepare(self, problem, threads):
        return State(problem, threads, data=Workspace(problem.D, threads))

    def descend(self, state, X, niter, stress=False):
        check_stress_niter(niter, stress)
        with host.one_blas_thread():
            return descend_matrix(X, state.data, state.problem.lr, niter, stress)


BACKENDS = [NumpyMatrix()]
