"""Solving to a tolerance: early stop on an easy problem, same answer as a fixed count, refusals."""

import numpy as np
import pytest

import gradi
from gradi import shapes
from gradi.convergence import converged

D_CIRCLE = gradi.distance_matrix(shapes.circle(40))


def test_tol_stops_early_on_an_easy_problem():
    result = gradi.solve(D_CIRCLE, 2, niter=5000, tol=1e-4)
    assert result.stop_reason == "converged"
    assert 0 < result.iterations < 5000 and result.iterations % 10 == 0
    assert result.niter == 5000


def test_without_tol_every_iteration_runs():
    result = gradi.solve(D_CIRCLE, 2, niter=300)
    assert (result.iterations, result.stop_reason) == (300, "niter reached")


@pytest.mark.parametrize("backend", ["python", "numpy", "jax", "cpp-simd", "mojo-simd"])
def test_a_tolerance_run_equals_the_same_iteration_count_without_it(backend):
    if not gradi.backends.get(backend).available:
        pytest.skip(gradi.backends.get(backend).unavailable_reason)
    D = gradi.distance_matrix(shapes.circle(20))
    stopped = gradi.solve(D, 2, backend=backend, niter=2000, tol=1e-3, check_every=7)
    assert stopped.stop_reason == "converged" and stopped.iterations % 7 == 0
    plain = gradi.solve(D, 2, backend=backend, niter=stopped.iterations)
    assert np.array_equal(stopped.X, plain.X)
    assert stopped.stress == plain.stress


def test_tol_never_stops_a_diverging_run():
    with pytest.raises(gradi.DivergenceError):
        gradi.solve(D_CIRCLE, 2, lr=0.5, niter=200, tol=0.5, check_every=1)


@pytest.mark.parametrize("tol, error, words", [
    (0, ValueError, "tol must be None or a number in \\(0, 1\\)"),
    (1, ValueError, "tol must be None or a number in \\(0, 1\\)"),
    (-1e-3, ValueError, "tol must be"),
    (float("nan"), ValueError, "tol must be"),
    ("1e-3", TypeError, "tol must be"),
    (True, TypeError, "tol must be"),
])
def test_bad_tol_is_refused(tol, error, words):
    with pytest.raises(error, match=words):
        gradi.solve(D_CIRCLE, 2, niter=10, tol=tol)


def test_check_every_needs_tol_and_a_positive_integer():
    with pytest.raises(ValueError, match="check_every only applies with tol"):
        gradi.solve(D_CIRCLE, 2, niter=10, check_every=5)
    with pytest.raises(ValueError, match="check_every must be an integer >= 1"):
        gradi.solve(D_CIRCLE, 2, niter=10, tol=1e-3, check_every=0)


def test_the_stop_is_decided_by_the_reference_stress_of_each_interval():
    stopped = gradi.solve(D_CIRCLE, 2, niter=5000, tol=1e-3, check_every=10, dtype="float64")
    assert stopped.stop_reason == "converged"
    stresses = [gradi.solve(D_CIRCLE, 2, niter=k, dtype="float64").stress
                for k in range(0, stopped.iterations + 1, 10)]
    assert stresses[-1] == stopped.stress
    decisions = [converged(before, now, 1e-3) for before, now in zip(stresses, stresses[1:])]
    assert decisions == [False] * (len(decisions) - 1) + [True]


@pytest.mark.parametrize("before, now, tol, expected", [
    (1.0, 0.5, 1e-3, False),      # still improving fast
    (1.0, 1.0 - 1e-4, 1e-3, True),  # improved by less than tol
    (1.0, 1.5, 1e-3, False),      # rose: not converged (a too-large step keeps going)
    (1.0, 0.0, 1e-3, True),       # exact solution
])
def test_the_stopping_rule(before, now, tol, expected):
    assert converged(before, now, tol) is expected
