"""``python``: the blog's "Python native" — lists of lists and the standard library only.

It computes in Python floats (IEEE float64) whatever dtype was asked; the result is cast back to
the asked dtype. That is the honest cost of plain Python, and it is why gradi compares it with
the float32 tolerance when float32 was asked.
"""

from .base import Backend


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

    def working_bytes(self, n, dim, itemsize):
        # A Python float is 24 bytes plus an 8-byte list slot; D is copied to lists once.
        return 32 * (n * n + 3 * n * dim)

    def descend(self, X, D, lr, niter, threads):
        result = descend_lists(X.tolist(), D.tolist(), float(lr), niter)
        X[...] = result
        return X


BACKENDS = [PythonLists()]
