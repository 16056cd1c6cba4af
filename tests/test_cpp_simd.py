"""The tuned C++ backend cpp-simd (issue 8): every instruction set this CPU has, both dtypes."""

import functools

import numpy as np
import pytest

native = pytest.importorskip("gradi._native", reason="C++ extension gradi._native not built (pip install .)")

from gradi.backends import cpp  # noqa: E402
from gradi.testing import assert_agrees, make_case, reference_descend, run_backend  # noqa: E402

NITER = 50
ISAS = native.simd_isas()


@functools.lru_cache(maxsize=None)
def case(n, dim, dtype):
    """(X0, D, lr, reference X after NITER steps), computed once per problem."""
    X0, D, lr = make_case(n, dim, dtype)
    X0.flags.writeable = False
    return X0, D, lr, reference_descend(X0, D, lr, NITER)


def test_isas():
    assert ISAS[0] == "baseline" and native.simd_isa() == ISAS[-1]
    with pytest.raises(ValueError, match="isa"):
        native.descend_simd(*make_case(4, 2, "float32"), 1, 1, isa="sse9")


# 15, 16, 17 around the 16 float32 lanes of AVX-512 (and the 8, 4, 2 of narrower vectors); 257
# leaves a one-point tail for every width; dim up to 8 has its own kernel, 11 the generic one.
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [2, 15, 16, 17, 100, 257])
@pytest.mark.parametrize("dim", [1, 2, 3, 4, 5, 11])
def test_agrees_with_reference(isa, dtype, n, dim):
    X0, D, lr, expected = case(n, dim, dtype)
    X = X0.copy()
    native.descend_simd(X, D, lr, NITER, 2, isa=isa, parallel_min_n=0)
    assert native.last_thread_count() == 2
    assert_agrees(X, expected, D, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backend_defaults(dtype):
    X0, D, lr, expected = case(100, 3, dtype)
    X = X0.copy()
    backend = next(b for b in cpp.BACKENDS if b.name == "cpp-simd")
    assert run_backend(backend, X, D, lr, NITER, backend.default_threads()) is X
    assert_agrees(X, expected, D, dtype)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n, dim, parallel_min_n", [
    (257, 3, 0), (101, 11, 0), (native.simd_parallel_min_n() + 37, 2, -1)])  # -1: the default
def test_bit_identical_for_any_thread_count(isa, dtype, n, dim, parallel_min_n):
    X0, D, lr = make_case(n, dim, dtype)
    results = {}
    for threads in (1, 2, 3, 8):
        X = X0.copy()
        native.descend_simd(X, D, lr, 20, threads, isa=isa, parallel_min_n=parallel_min_n)
        assert native.last_thread_count() == threads
        results[threads] = X
    for threads, X in results.items():
        np.testing.assert_array_equal(X, results[1], err_msg=f"threads={threads}")


def test_small_problems_run_serially():
    threshold = native.simd_parallel_min_n()
    X, D, lr = make_case(max(threshold - 1, 2), 3, "float32")
    native.descend_simd(X, D, lr, 2, 2)
    assert native.last_thread_count() == (1 if threshold > 2 else 2)
    X, D, lr = make_case(threshold + 1, 3, "float32")
    native.descend_simd(X, D, lr, 2, 2)
    assert native.last_thread_count() == 2


def test_niter_zero_leaves_x_unchanged():
    X0, D, lr, _ = case(17, 3, "float64")
    X = X0.copy()
    native.descend_simd(X, D, lr, 0, 2)
    np.testing.assert_array_equal(X, X0)
