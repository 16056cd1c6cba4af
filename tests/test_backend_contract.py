"""The contract every registered backend keeps, checked through the Backend interface alone.

For every backend in the registry and every dtype it supports: ``descend`` agrees with the
float64 reference within the dtype's tolerance (gradi.testing), leaves X alone for 0 steps, gives
the same bits in one call or in one call per step on one prepared state, and — for a parallel
backend — the same bits for every thread count. An unavailable backend skips with its reason.
The family files (test_cpp*, test_mojo, test_jax_sharded, ...) keep what only one family has:
instruction sets, kernel thresholds, workspaces, the extensions' own argument checks.
"""

import numpy as np
import pytest

import gradi
from gradi.bench.prepared import PreparedRun
from gradi.problem import Problem
from gradi.testing import assert_agrees, make_case, max_relative_error, reference_descend

NITER = 20
# Above cpp-simd's and mojo-simd's serial cut-off (257 points), so their threads engage.
PARALLEL_N = 450
CASES = [(backend, dtype) for backend in gradi.backends.names()
         for dtype in gradi.backends.get(backend).dtypes]
SLOW = {"python", "numpy-loops"}  # pure-Python loops: the largest case is left to the fast backends


def _runnable(name, n, dim, dtype, threads=1):
    backend = gradi.backends.get(name)
    reason = backend.check(Problem(D=np.zeros((n, n), dtype), X0=np.zeros((n, dim), dtype), lr=1.0,
                                   niter=0), threads)
    if reason is not None:
        pytest.skip(reason)
    return backend


def _descend(backend, X0, D, lr, niter, threads=1, chunks=1):
    """X after ``niter`` steps from X0 on one prepared state, in ``chunks`` equal calls."""
    with PreparedRun(backend, Problem(D=D, X0=X0, lr=lr, niter=niter), threads) as run:
        X = run.start()
        for _ in range(chunks):
            X = run.descend(niter // chunks, X)
    return X


@pytest.mark.parametrize("name, dtype", CASES)
@pytest.mark.parametrize("n, dim", [(2, 1), (17, 3), (40, 2), (100, 5)])
def test_agrees_with_the_reference(name, dtype, n, dim):
    if name in SLOW and n > 40:
        pytest.skip(f"{name} is checked up to N=40")
    backend = _runnable(name, n, dim, dtype)
    X0, D, lr = make_case(n, dim, dtype, seed=n + dim)
    X = _descend(backend, X0, D, lr, NITER)
    assert X.shape == X0.shape and X.dtype == backend.working_dtype(dtype)
    expected = reference_descend(X0, D, lr, NITER)
    assert_agrees(X, expected, D, "float32" if backend.precision_note else dtype)
    assert max_relative_error(expected, X0, D) > 1e-3, "the run must move the points"


@pytest.mark.parametrize("name, dtype", CASES)
def test_zero_steps_leave_the_positions_alone(name, dtype):
    backend = _runnable(name, 9, 2, dtype)
    X0, D, lr = make_case(9, 2, dtype)
    np.testing.assert_array_equal(_descend(backend, X0, D, lr, 0), X0)


@pytest.mark.parametrize("name, dtype", CASES)
def test_chunking_gives_the_same_bits(name, dtype):
    backend = _runnable(name, 33, 3, dtype)
    X0, D, lr = make_case(33, 3, dtype, seed=3)
    whole = _descend(backend, X0, D, lr, 12)
    np.testing.assert_array_equal(_descend(backend, X0, D, lr, 12, chunks=12), whole)
    np.testing.assert_array_equal(_descend(backend, X0, D, lr, 12, chunks=3), whole)


@pytest.mark.parametrize("name, dtype", [(name, dtype) for name, dtype in CASES
                                         if gradi.backends.get(name).parallel])
def test_every_thread_count_gives_the_same_bits(name, dtype):
    backend = _runnable(name, PARALLEL_N, 3, dtype)
    X0, D, lr = make_case(PARALLEL_N, 3, dtype, seed=11)
    results = {threads: _descend(backend, X0, D, lr, 8, threads) for threads in (1, 2, 3)
               if backend.check(Problem(D=D, X0=X0, lr=lr, niter=8), threads) is None}
    assert len(results) >= 1
    for threads, X in results.items():
        np.testing.assert_array_equal(X, results[1], err_msg=f"{name}: threads={threads}")
