"""Helpers shared by the test suites and the benchmarks: reference runs and agreement checks.

Agreement is measured relative to the problem's scale (the largest distance), because a
coordinate's absolute error grows with the size of the shape.

Tolerances per dtype, justified: each step sums N terms whose rounding error is about
eps * |term|; after the iterations of a converging run these errors stay of order
sqrt(N) * eps * scale times a modest growth factor. float32 (eps 1.2e-7) gets 1e-5 of the scale
(seen: 2.5e-7 at N=1000 after 50 steps), float64 (eps 2.2e-16) gets 1e-10: loose enough for
different summation orders and FMA, tight enough that a wrong gradient (off by one term or by
a factor) fails by orders of magnitude.
Backends that compute in another precision than asked (``python`` computes in Python floats)
are compared with the float32 tolerance when float32 was asked.
"""

import numpy as np

from . import backends
from .bench.prepared import PreparedRun
from .problem import Problem, distance_matrix, gradient
from .shapes import cube, random_start
from .stepsize import auto_lr

RELATIVE_TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def make_case(n, dim, dtype="float64", seed=0):
    """A random problem: (X0, D, lr) with X0 and D in ``dtype``, lr from ``lr="auto"``."""
    D = distance_matrix(cube(n, dim, seed=seed))
    X0 = random_start(D, dim, seed=seed + 1)
    lr = auto_lr(D, X0)
    return np.ascontiguousarray(X0, dtype=dtype), np.ascontiguousarray(D, dtype=dtype), lr


def reference_descend(X0, D, lr, niter):
    """``niter`` plain gradient steps in float64 NumPy: the yardstick for every backend."""
    X = np.array(X0, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    for _ in range(niter):
        X -= lr * gradient(X, D)
    return X


def max_relative_error(actual, expected, D):
    """Largest coordinate difference divided by the problem's scale (the largest distance)."""
    scale = max(float(np.max(np.abs(D))), 1e-300)
    return float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)))) / scale


def assert_agrees(actual, expected, D, dtype):
    """Assert two position arrays agree within the tolerance of ``dtype`` (see module docstring)."""
    error = max_relative_error(actual, expected, D)
    tolerance = RELATIVE_TOLERANCE[np.dtype(dtype).name]
    assert error <= tolerance, f"positions differ by {error:.3g} of the scale (tolerance {tolerance:g})"


def run_backend(backend, X, D, lr, niter, threads=1):
    """``niter`` steps of ``backend`` (a name or a Backend) from X on D, with no validation.

    Prepares a state for this one call and releases it; X must already be what ``descend``
    accepts (C-contiguous, writeable, of the backend's working dtype). Returns the positions.
    """
    backend = backends.get(backend) if isinstance(backend, str) else backend
    with PreparedRun(backend, Problem(D=D, X0=X, lr=lr, niter=niter), threads) as prepared:
        return prepared.descend(niter, X)
