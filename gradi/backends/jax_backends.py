"""``jax-scan`` (the blog's JAX) and ``jax`` (idiomatic JAX), both jit-compiled.

``jax`` uses the matrix form of ``numpy`` (centred Gram matrix, ``4(rowsum(C) X - C X)``), which
XLA runs much faster than the N x N x dim broadcast (timings in the README).

Both are serial: they run on XLA's CPU thread pool, which gradi pins to one thread when it starts
JAX (see gradi.backends.jax_runtime). Where the pool has more threads (a user's ``NPROC``, more
CPU devices, a JAX started before gradi) they say so: their thread count is the pool's, and
``check`` refuses any other, so a table never calls a two-thread run serial.

Both run inside ``jax.enable_x64(True)`` so float64 is honoured without changing the caller's
global JAX configuration; arrays keep the dtype gradi hands over. Compilation happens ahead of
time in ``prepare``, once per shape and dtype (the iteration count is a run-time argument of a
``fori_loop``, so every chunk length of a solve reuses one executable), and D (``jax``: D^2)
is put on the device once per solve. The result is converted to NumPy, which waits for the computation to
finish, so a timed call measures the computation and not just its dispatch (the original
comparison's JAX timing did not wait).
"""

import functools

import numpy as np

from .base import Backend, State
from .jax_runtime import XLA_BYTES, runtime
from .stress_step import check_stress_niter


@functools.cache
def _kernels():
    """Build the jitted kernels once, on first use (importing JAX costs about a second).

    Each runs ``niter`` steps and takes ``stress`` (0 or 1) at run time: with 1, the last step
    runs apart from the loop (in a ``lax.cond``) and also sums the squares of the C_ij it
    computes (each row's in the working dtype, the rows in float64); the step is the same
    function either way.
    """
    jax = runtime().jax
    import jax.numpy as jnp
    from jax import lax

    def squares(C):
        """Sum of C^2 over C's last axis in C's dtype, then over the rest in float64."""
        return jnp.sum(jnp.sum(C * C, axis=-1).astype(jnp.float64))

    def scan_gradient(X, D, stress):
        def row(_, D_i_X_i):
            D_i, X_i = D_i_X_i
            diff = X_i - X
            err = jnp.sum(diff * diff, axis=1) - D_i * D_i
            grad = 4 * jnp.sum(err[:, None] * diff, axis=0)
            return None, (grad, squares(err)) if stress else grad
        _, rows = lax.scan(row, None, (D, X))
        return (rows[0], jnp.sum(rows[1]) / 2) if stress else rows

    def matrix_gradient(X, D2, stress):
        Xc = X - jnp.mean(X, axis=0)
        sq = jnp.sum(Xc * Xc, axis=1)
        C = sq[:, None] + sq[None, :] - 2 * Xc @ Xc.T - D2
        grad = 4 * (jnp.sum(C, axis=1)[:, None] * X - C @ X)
        return (grad, squares(C) / 2) if stress else grad

    def descend(gradient, X, D, lr, niter, stress):
        def step(_, X):
            return X - lr * gradient(X, D, False)

        def last_step(X):
            grad, total = gradient(X, D, True)
            return X - lr * grad, total

        X = lax.fori_loop(0, niter - stress, step, X)
        return lax.cond(stress > 0, last_step, lambda X: (X, jnp.zeros((), jnp.float64)), X)

    @jax.jit
    def descend_scan(X, D, lr, niter, stress):
        return descend(scan_gradient, X, D, lr, niter, stress)

    @jax.jit
    def descend_vectorised(X, D2, lr, niter, stress):
        return descend(matrix_gradient, X, D2, lr, niter, stress)

    return jax, {"jax-scan": descend_scan, "jax": descend_vectorised}


@functools.lru_cache(maxsize=16)
def _compiled(name, n, dim, dtype):
    """Ahead-of-time compiled kernel for one shape and dtype; the iteration count and the
    stress flag are arguments."""
    jax, kernels = _kernels()
    with jax.enable_x64(True):
        X = jax.ShapeDtypeStruct((n, dim), dtype)
        D = jax.ShapeDtypeStruct((n, n), dtype)
        lr = jax.ShapeDtypeStruct((), dtype)
        return kernels[name].lower(X, D, lr, np.int64(0), np.int64(0)).compile()


class _Jax(Backend):
    language = "JAX"
    sources = ("gradi/backends/jax_backends.py", "gradi/backends/jax_runtime.py")
    requires = ("jax",)

    def load(self):
        try:
            _kernels()
        except ImportError as exc:
            raise ImportError(f"jax is not installed ({exc}); pip install 'gradi[jax]'") from exc

    def default_threads(self):
        """The threads it really runs on: XLA's CPU pool (one, unless set otherwise before gradi)."""
        return 1 if self.unavailable_reason is not None else runtime().pool_threads

    def check(self, problem, threads):
        """As Backend.check, except that the thread count must be the CPU pool's (see module doc)."""
        reason = super().check(problem, 1)
        if reason is None and threads != (pool := runtime()).pool_threads:
            runs_on = "runs on one thread" if pool.pool_threads == 1 else "runs on XLA's CPU pool"
            reason = (f"backend {self.name!r} {runs_on}: {pool.describe()}; threads must be "
                      f"{pool.pool_threads}, got {threads}")
        return reason

    def prepare(self, problem, threads):
        jax, _ = _kernels()
        with jax.enable_x64(True):
            D = jax.device_put(self.device_matrix(problem.D))
        run = _compiled(self.name, problem.n, problem.dim, problem.dtype.name)
        return State(problem, threads, data=(run, D))

    def device_matrix(self, D):
        """The N x N matrix the kernel takes, put on the device once per solve."""
        return D

    def descend(self, state, X, niter, stress=False):
        check_stress_niter(niter, stress)
        jax, _ = _kernels()
        run, D = state.data
        lr = np.asarray(state.problem.lr, dtype=X.dtype)
        with jax.enable_x64(True):
            X, total = run(X, D, lr, np.int64(niter), np.int64(stress))
            return (np.array(X), float(total)) if stress else np.array(X)


class JaxScan(_Jax):
    name = "jax-scan"
    tier = "seed"
    summary = ("jit + lax.scan over rows (the blog's JAX), iterations in a compiled fori_loop; "
               "XLA's CPU pool pinned to one thread")

    def working_bytes(self, n, dim, itemsize, threads):
        # D put on the device, the rows' gradient and the loop's carry, and XLA's compiler and runtime.
        return n * n * itemsize + 4 * n * dim * itemsize + XLA_BYTES


class JaxVectorised(_Jax):
    name = "jax"
    tier = "idiomatic"
    summary = ("jit, matrix form over all pairs (as numpy), one compiled fori_loop over "
               "iterations; XLA's CPU pool pinned to one thread")

    def working_bytes(self, n, dim, itemsize, threads):
        # D^2 (squared in NumPy, then put on the device), and C (the Gram product fused into it),
        # and XLA's compiler and runtime.
        return 3 * n * n * itemsize + XLA_BYTES

    def device_matrix(self, D):
        """D^2, squared once per solve rather than in every call (a tol solve makes one call per
        check); the same IEEE products XLA would form."""
        return D * D


BACKENDS = [JaxScan(), JaxVectorised()]
