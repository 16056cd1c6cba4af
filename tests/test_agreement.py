"""Every pair of available backends computes the same positions, within the dtype's tolerance.

Each backend is compared with the float64 reference and with every other backend; the pairwise
bound is twice the per-backend tolerance (both may err in opposite directions).
"""

import itertools

import numpy as np
import pytest

import gradi
from gradi.testing import RELATIVE_TOLERANCE, assert_agrees, make_case, max_relative_error

NITER = 50


def _run_all(n, dim, dtype):
    X0, D, lr = make_case(n, dim, dtype, seed=n + dim)
    results = {}
    for name in gradi.backends.available():
        result = gradi.solve(D, X0=X0, backend=name, lr=lr, niter=NITER, dtype=dtype)
        results[name] = result.X
    return X0, D, lr, results


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dim", [2, 3])
def test_every_pair_of_backends_agrees(dim, dtype):
    X0, D, lr, results = _run_all(17, dim, dtype)
    assert {"python", "numpy-loops", "numpy", "jax-scan", "jax"} <= set(results)
    reference = gradi.testing.reference_descend(X0, D, lr, NITER)
    for name, X in results.items():
        assert X.dtype == np.dtype(dtype), name
        assert_agrees(X, reference, D, dtype)
    bound = 2 * RELATIVE_TOLERANCE[dtype]
    for (a, Xa), (b, Xb) in itertools.combinations(results.items(), 2):
        error = max_relative_error(Xa, Xb, D)
        assert error <= bound, f"{a} and {b} differ by {error:.3g} of the scale (bound {bound:g})"
    moved = max_relative_error(results["numpy"], X0, D)
    assert moved > 100 * bound, "the run must move the points, or agreement proves nothing"
