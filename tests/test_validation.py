"""Bad input is refused before any backend runs, with a message that says what and why."""

import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

import gradi
from gradi import host, memory, shapes
from gradi.validation import MAX_THREADS

D5 = gradi.distance_matrix(shapes.circle(5))


def _with(D=None, **changes):
    return dict(D=D5 if D is None else D, dim=2) | changes


def _poke(i, j, value):
    D = D5.copy()
    D[i, j] = value
    return D


BAD_INPUTS = [
    ("D not 2-D", _with(D=np.zeros(5)), ValueError, "square 2-D"),
    ("D not square", _with(D=np.zeros((4, 5))), ValueError, "square 2-D"),
    ("N < 2", _with(D=np.zeros((1, 1))), ValueError, "at least 2 points"),
    ("D with NaN", _with(D=_poke(0, 1, np.nan)), ValueError, "finite"),
    ("D with inf", _with(D=_poke(1, 0, np.inf)), ValueError, "finite"),
    ("negative entries", _with(D=-D5), ValueError, "non-negative"),
    ("not symmetric", _with(D=_poke(0, 1, 5.0)), ValueError, "symmetric"),
    ("non-zero diagonal", _with(D=_poke(2, 2, 1.0)), ValueError, "zero diagonal"),
    ("strings", _with(D=D5.astype(str)), TypeError, "real numbers"),
    ("objects", _with(D=D5.astype(object)), TypeError, "real numbers"),
    ("complex", _with(D=D5.astype(complex)), TypeError, "complex"),
    ("ragged lists", _with(D=[[0.0, 1.0], [1.0]]), ValueError, "rectangular"),
    ("X0 wrong shape", _with(X0=np.zeros((5, 3))), ValueError, "X0 must have shape"),
    ("X0 not finite", _with(X0=np.full((5, 2), np.nan)), ValueError, "X0 must be finite"),
    ("X0 complex", _with(X0=np.zeros((5, 2), complex)), TypeError, "complex"),
    ("dim 0", _with(dim=0), ValueError, "dim must be an integer >= 1"),
    ("dim float", _with(dim=2.5), TypeError, "dim must be an integer"),
    ("lr zero", _with(lr=0.0), ValueError, "lr must be"),
    ("lr negative", _with(lr=-1e-3), ValueError, "lr must be"),
    ("lr nan", _with(lr=float("nan")), ValueError, "lr must be"),
    ("lr inf", _with(lr=float("inf")), ValueError, "lr must be"),
    ("lr unknown word", _with(lr="fast"), ValueError, "'auto'"),
    ("lr list", _with(lr=[1e-3]), TypeError, "lr must be"),
    ("niter negative", _with(niter=-1), ValueError, "niter must be an integer in [0, 2**40], got -1"),
    ("niter 2**63", _with(niter=2**63), ValueError,
     "niter must be an integer in [0, 2**40], got 9223372036854775808"),
    ("niter numpy float", _with(niter=np.float64(5)), TypeError, "niter must be an integer in [0, 2**40]"),
    ("niter float", _with(niter=10.0), TypeError, "niter must be an integer"),
    ("niter bool", _with(niter=True), TypeError, "niter must be an integer"),
    ("threads zero", _with(threads=0), ValueError, "threads must be an integer >= 1"),
    ("threads float", _with(threads=1.5), TypeError, "threads must be an integer"),
    ("threads True", _with(threads=True), TypeError, "threads must be an integer >= 1, got bool True"),
    ("lr huge int", _with(lr=10**400), ValueError, "got int value beyond the float range"),
    ("lr tiny Fraction", _with(lr=Fraction(1, 10**400)), ValueError, "lr must be 'auto' or a positive"),
    ("lr Decimal", _with(lr=Decimal("0.001")), TypeError, "lr must be 'auto' or a positive finite number"),
    ("masked D", _with(D=np.ma.masked_greater(D5, 1.5)), TypeError, "D is a masked array with 10 masked"),
    ("masked X0", _with(X0=np.ma.masked_equal(np.arange(10.0).reshape(5, 2), 3.0)), TypeError,
     "X0 is a masked array with 1 masked"),
    ("X0 rows identical", _with(X0=np.ones((5, 2))), ValueError, "X0's rows are all identical (in float32)"),
    ("X0 rows identical in float32", _with(X0=np.ones((5, 2)) + np.arange(5)[:, None] * 1e-9), ValueError,
     "X0's rows are all identical (in float32)"),
    ("serial backend, 2 threads", _with(threads=2, backend="python"), ValueError, "runs on one thread"),
    ("unknown backend", _with(backend="fortran"), ValueError, "known backends: python"),
    ("backend not a name", _with(backend=3), TypeError, "backend must be"),
    ("dtype float16", _with(dtype="float16"), ValueError, "float32, float64"),
    ("dtype int", _with(dtype=int), ValueError, "float32, float64"),
    ("dtype nonsense", _with(dtype="double-ish"), ValueError, "float32, float64"),
    ("record_every zero", _with(record_every=0), ValueError, "record_every must be"),
]


@pytest.mark.parametrize("kwargs, error, words", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_refused_with_a_helpful_message(kwargs, error, words):
    with pytest.raises(error, match=None) as caught:
        gradi.solve(**kwargs)
    assert words in str(caught.value)


def test_too_large_a_problem_is_refused_before_allocating():
    huge = np.broadcast_to(np.float32(0.0), (2_000_000, 2_000_000))  # a view: no memory used
    with pytest.raises(ValueError, match="problem too large: N=2000000"):
        gradi.solve(huge, 2)


def test_memory_estimate_includes_the_backend_working_set(monkeypatch):
    numpy_need = memory.needed(gradi.backends.get("numpy"), 1000, 3, np.float32, 1)
    monkeypatch.setattr(host, "available_memory", lambda: numpy_need - 1)
    with pytest.raises(ValueError, match="problem too large"):
        gradi.solve(gradi.distance_matrix(shapes.cube(1000)), 3, niter=0)


def test_a_backend_without_the_dtype_is_refused(monkeypatch):
    backend = gradi.backends.get("numpy")
    monkeypatch.setattr(backend, "dtypes", ("float64",))
    with pytest.raises(ValueError, match="supports dtype float64, not float32"):
        gradi.solve(D5, 2, backend="numpy", dtype="float32")


def test_an_unavailable_backend_says_why(monkeypatch):
    backend = gradi.backends.get("jax")
    monkeypatch.setitem(backend.__dict__, "unavailable_reason", "jax is not installed")
    with pytest.raises(gradi.BackendUnavailableError, match="jax is not installed"):
        gradi.solve(D5, 2, backend="jax")


@pytest.mark.parametrize("layout", ["list", "fortran", "strided", "int"])
def test_other_layouts_are_accepted_and_give_the_same_answer(layout):
    D = gradi.distance_matrix(shapes.circle(6))
    X0 = shapes.random_start(D, 2)
    expected = gradi.solve(D, X0=X0, niter=20).X
    if layout == "list":
        D_in, X_in = D.tolist(), X0.tolist()
    elif layout == "fortran":
        D_in, X_in = np.asfortranarray(D), np.asfortranarray(X0)
    elif layout == "strided":
        D_in, X_in = np.repeat(np.repeat(D, 2, 0), 2, 1)[::2, ::2], np.repeat(X0, 2, 1)[:, ::2]
    else:
        D_in = np.rint(D * 1000).astype(np.int64)
        D_in, X_in, D = D_in, X0 * 1000, D_in
        expected = gradi.solve(D.astype(float), X0=X_in, niter=20).X
    np.testing.assert_array_equal(gradi.solve(D_in, X0=X_in, niter=20).X, expected)


def test_the_callers_arrays_are_never_modified():
    D = gradi.distance_matrix(shapes.sphere(12)).astype(np.float32)
    X0 = shapes.random_start(D, 3).astype(np.float32)
    D_before, X0_before = D.copy(), X0.copy()
    for backend in gradi.backends.available():
        result = gradi.solve(D, X0=X0, backend=backend, niter=5)
        assert not np.shares_memory(result.X, X0)
    np.testing.assert_array_equal(D, D_before)
    np.testing.assert_array_equal(X0, X0_before)


def test_tiny_asymmetry_within_tolerance_is_accepted():
    D = D5.copy()
    D[0, 1] += 1e-9
    result = gradi.solve(D, 2, niter=1)
    assert result.niter == 1 and np.isfinite(result.stress)


@pytest.mark.parametrize("scale", [1.0, 2.0**-40, 3.0e9])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_d_is_symmetrised_to_the_same_numbers_whether_or_not_it_is_exactly_symmetric(scale, dtype):
    """(D + D.T) / 2, zero diagonal, at the run's power-of-two scale: an exactly symmetric D takes
    a shortcut (no transpose read), which must give the numbers the general path gives."""
    exact = scale * gradi.distance_matrix(shapes.cube(40, 3))
    nudged = exact.copy()
    nudged[3, 7] *= 1 + 1e-9
    for D in (exact, nudged):
        problem = gradi.validation.validate(D, 3, dtype=dtype)
        expected = (np.asarray(D, dtype=np.float64) + D.T) / 2 * problem.scale
        np.fill_diagonal(expected, 0.0)
        np.testing.assert_array_equal(problem.D, expected.astype(dtype))


def test_numpy_holds_its_blas_to_one_thread_whatever_threads():
    """numpy's workers split the rows; BLAS itself stays on one thread (gradi.backends.numpy_matrix)."""
    import threadpoolctl

    def numpy_blas_threads():
        # NumPy's wheels carry their own BLAS under numpy.libs; SciPy may load another one.
        return [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                if pool["user_api"] == "blas" and "numpy" in pool["filepath"]]

    if not numpy_blas_threads():
        pytest.skip("NumPy's BLAS is not the one bundled in its wheel here")
    seen = []
    original = gradi.backends.numpy_matrix.descend_matrix

    def spy(*args):
        seen.append(max(numpy_blas_threads()))
        return original(*args)

    gradi.backends.numpy_matrix.descend_matrix = spy
    try:
        gradi.solve(D5, 2, backend="numpy", threads=1, niter=1)
        gradi.solve(D5, 2, backend="numpy", threads=2, niter=1)
    finally:
        gradi.backends.numpy_matrix.descend_matrix = original
    assert seen == [1, 1]


@pytest.mark.parametrize("backend", gradi.backends.available())
def test_every_backend_gets_the_same_refusals_from_validation(backend):
    """Limits are checked once, before any backend: the same error and words for every backend."""
    parallel = gradi.backends.get(backend).parallel
    cases = [(dict(niter=2**63), ValueError, r"niter must be an integer in \[0, 2\*\*40\]"),
             (dict(niter=2**40 + 1), ValueError, r"niter must be an integer in \[0, 2\*\*40\]"),
             (dict(threads=True), TypeError, "threads must be an integer >= 1, got bool"),
             (dict(threads=MAX_THREADS + 1), ValueError,
              f"supports at most {MAX_THREADS} threads" if parallel else "runs on one thread"),
             (dict(lr=10**400), ValueError, "lr must be 'auto' or a positive finite number")]
    for options, error, words in cases:
        with pytest.raises(error, match=words):
            gradi.solve(D5, 2, backend=backend, **options)


@pytest.mark.parametrize("backend", gradi.backends.available())
def test_a_fraction_is_a_step_like_any_real_number(backend):
    """Before: numpy's isfinite raised an unhelpful TypeError on a Fraction."""
    expected = gradi.solve(D5, 2, backend=backend, lr=0.001, niter=3).X
    result = gradi.solve(D5, 2, backend=backend, lr=Fraction(1, 1000), niter=3)
    assert result.lr == 0.001
    np.testing.assert_array_equal(result.X, expected)


def test_a_mask_that_hides_nothing_is_not_refused():
    result = gradi.solve(np.ma.masked_array(D5, mask=False), 2, niter=3)
    np.testing.assert_array_equal(result.X, gradi.solve(D5, 2, niter=3).X)


def test_identical_rows_are_accepted_when_the_distances_are_all_zero():
    result = gradi.solve(np.zeros((4, 4)), X0=np.ones((4, 2)), niter=3)
    np.testing.assert_array_equal(result.X, np.ones((4, 2)))
    assert result.stress == 0.0


@pytest.mark.parametrize("X0, rank", [(np.column_stack([np.arange(5.0), 2 * np.arange(5.0)]), 1),
                                      (np.column_stack([shapes.circle(5), np.zeros(5)]), 2)])
def test_a_flat_start_warns_that_it_cannot_leave_its_subspace(X0, rank):
    with pytest.warns(gradi.DegenerateStartWarning, match=f"spans only {rank} of its {X0.shape[1]}"):
        result = gradi.solve(D5, X0=X0, niter=50, dtype="float64")
    centred = result.X - result.X.mean(axis=0)
    assert np.linalg.matrix_rank(centred, tol=1e-9 * np.abs(centred).max()) == rank


def test_a_spanning_start_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradi.solve(D5, X0=shapes.random_start(D5, 3), niter=1)
