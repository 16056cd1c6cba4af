"""``numpy-loops``: the blog's NumPy version — Python loops over i and j, NumPy row operations.

Kept as written in the original comparison: it shows what NumPy gives when the loops stay in
Python (each pair pays an interpreter round trip and a few tiny array allocations).
"""

import numpy as np

from .base import Backend


def _gradient(X, D):
    n = X.shape[0]
    grad = np.zeros_like(X)
    for i in range(n):
        for j in range(n):
            diff = X[i] - X[j]
            grad[i] += 4 * (np.dot(diff, diff) - D[i, j] ** 2) * diff
    return grad


class NumpyLoops(Backend):
    name = "numpy-loops"
    language = "NumPy"
    tier = "seed"
    summary = "Python loops over i, j with NumPy row operations (the blog's NumPy)"
    sources = ("gradi/backends/numpy_loops.py",)

    def working_bytes(self, n, dim, itemsize, threads):
        # The gradient and the step (N x dim), and a few row-sized temporaries per pair.
        return 2 * n * dim * itemsize + (16 << 10)

    def descend(self, state, X, niter):
        step = X.dtype.type(state.problem.lr)
        for _ in range(niter):
            X -= step * _gradient(X, state.problem.D)
        return X


BACKENDS = [NumpyLoops()]
