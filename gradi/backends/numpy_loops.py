"""``numpy-loops``: the blog's NumPy version — Python loops over i and j, NumPy row operations.

Kept as written in the original comparison: it shows what NumPy gives when the loops stay in
Python (each pair pays an interpreter round trip and a few tiny array allocations).
"""

import numpy as np

from .base import Backend
from .stress_step import check_stress_niter


def _gradient(X, D):
    n = X.shape[0]
    grad = np.zeros_like(X)
    for i in range(n):
        for j in range(n):
            diff = X[i] - X[j]
            grad[i] += 4 * (np.dot(diff, diff) - D[i, j] ** 2) * diff
    return grad


def _gradient_and_stress(X, D):
    """The gradient as ``_gradient`` computes it, and the stress from the same errors: the
    ordered pairs' squares summed row by row in float64, halved (each pair is visited twice)."""
    n = X.shape[0]
    grad = np.zeros_like(X)
    total = 0.0
    for i in range(n):
        row = 0.0
        for j in range(n):
            diff = X[i] - X[j]
            err = np.dot(diff, diff) - D[i, j] ** 2
            row += float(err) ** 2
            grad[i] += 4 * err * diff
        total += row
    return grad, total / 2


class NumpyLoops(Backend):
    name = "numpy-loops"
    language = "NumPy"
    tier = "seed"
    summary = "Python loops over i, j with NumPy row operations (the blog's NumPy)"
    sources = ("gradi/backends/numpy_loops.py",)

    def working_bytes(self, n, dim, itemsize, threads):
        # The gradient and the step (N x dim), and a few row-sized temporaries per pair.
        return 2 * n * dim * itemsize + (16 << 10)

    def descend(self, state, X, niter, stress=False):
        check_stress_niter(niter, stress)
        step = X.dtype.type(state.problem.lr)
        for _ in range(niter - 1 if stress else niter):
            X -= step * _gradient(X, state.problem.D)
        if not stress:
            return X
        grad, total = _gradient_and_stress(X, state.problem.D)
        X -= step * grad
        return X, total


BACKENDS = [NumpyLoops()]
