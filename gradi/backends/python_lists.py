"""``python``: the blog's "Python native" — lists of lists and the standard library only.

It computes in Python floats (IEEE float64) whatever dtype was asked; the result is cast back to
the asked dtype. That is the honest cost of plain Python, and it is why gradi compares it with
the float32 tolerance when float32 was asked.
"""

import numpy as np

from .base import Backend, State
from .stress_step import check_stress_niter


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


def _gradient_and_stress(X, D, n, dim):
    """The gradient as ``_gradient`` computes it, and the stress from the same errors: the
    ordered pairs' squares summed row by row, halved (each pair is visited twice)."""
    grad = [[0.0] * dim for _ in range(n)]
    total = 0.0
    for i in range(n):
        Xi, Di, gi = X[i], D[i], grad[i]
        row = 0.0
        for j in range(n):
            Xj = X[j]
            diff = [Xi[k] - Xj[k] for k in range(dim)]
            err = sum(d * d for d in diff) - Di[j] * Di[j]
            row += err * err
            for k in range(dim):
                gi[k] += 4.0 * err * diff[k]
        total += row
    return grad, total / 2


def _step(X, grad, lr, n, dim):
    return [[X[i][k] - lr * grad[i][k] for k in range(dim)] for i in range(n)]


def descend_lists(X, D, lr, niter, stress=False):
    """``niter`` gradient steps on lists of lists; returns new lists, and with ``stress`` the
    stress of the positions the last step started from."""
    n, dim = len(X), len(X[0])
    for _ in range(niter - 1 if stress else niter):
        X = _step(X, _gradient(X, D, n, dim), lr, n, dim)
    if not stress:
        return X
    grad, total = _gradient_and_stress(X, D, n, dim)
    return _step(X, grad, lr, n, dim), total


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

    def descend(self, state, X, niter, stress=False):
        check_stress_niter(niter, stress)
        result = descend_lists(X.tolist(), state.data, float(state.problem.lr), niter, stress)
        X[...] = result[0] if stress else result
        return (X, result[1]) if stress else X


BACKENDS = [PythonLists()]
