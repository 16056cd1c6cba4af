"""``python``: the blog's "Python native" — lists of lists and the standard library only.

It computes in Python floats (IEEE float64) whatever dtype was asked; the result is cast back to
the asked dtype. That is the honest cost of plain Python, and it is why gradi compares it with
the float32 tolerance when float32 was asked.
"""

import numpy as np

from .base import Backend, State


def _gradient(X, D, n, dim):
    grad = [[0.0] * dim for _ in range(n)]
    for i in range(n):
        Xi, Di, gi = X[i], D[i], grad[i]
        for j in range(n):
            Xj = X[j]
            diff = [Xi[k] - Xj[k] for k in range(dim)]
            err = sum(d * d for d in diff) - Di[j] * Di[j]
            for k in range(dim):
                gi[k] += 4.0 * err * diff[k]
    return grad


def descend_lists(X, D, lr, niter):
    """``niter`` gradient steps on lists of lists; returns new lists."""
    n, dim = len(X), len(X[0])
    for _ in range(niter):
        grad = _gradient(X, D, n, dim)
        X = [[X[i][k] - lr * grad[i][k] for k in range(dim)] for i in range(n)]
    return X


class PythonLists(Backend):
    name = "python"
    language = "Python"
    tier = "seed"
    summary = "lists of lists, standard library only (the blog's Python native)"
    precision_note = "computes in Python floats (float64) whatever dtype is asked"
    sources = ("gradi/backends/python_lists.py",)

    def working_dtype(self, dtype):
        return np.dtype(np.float64)  # Python floats: chunks continue from unrounded positions

    def working_bytes(self, n, dim, itemsize, threads):
        # A Python float takes a 32-byte block of Python's allocator (24 bytes, 16-byte aligned)
        # and an 8-byte list slot, a list 72 bytes with its GC header: D as lists once, and X,
        # the gradient, the new X and one row's differences as lists.
        return n * (72 + 40 * n) + 4 * n * (72 + 40 * dim)

    def prepare(self, problem, threads):
        return State(problem, threads, data=problem.D.tolist())

    def descend(self, state, X, niter):
        X[...] = descend_lists(X.tolist(), state.data, float(state.problem.lr), niter)
        return X


BACKENDS = [PythonLists()]
