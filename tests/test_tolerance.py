"""Solving to a tolerance: early stop on an easy problem, same answer as a fixed count, refusals."""

import numpy as np
import pytest

import gradi
from gradi import shapes
from gradi.align import procrustes_disparity
from gradi.convergence import (
    DEFAULT_CHECK_EVERY,
    EXACT_MARGIN,
    RESOLUTION_ULPS,
    collapsed_stress,
    converged,
    stress_bound,
)
from gradi.validation import validate

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


def _checks(D, backend, tol, niter, dtype="float64", check_every=DEFAULT_CHECK_EVERY):
    """Replay a tol solve's checks by hand: per check (iteration, the backend's stress of the
    last step's start, the rule's verdict), up to the first verdict True."""
    problem = validate(D, 2, niter=niter, dtype=dtype)
    runner = gradi.backends.get(backend)
    X = np.array(problem.X0, dtype=runner.working_dtype(problem.dtype))
    bound = stress_bound(tol, collapsed_stress(problem.D), X.dtype)
    checks, before = [], None
    with runner.prepare(problem, 1) as state:
        for done in range(check_every, niter + 1, check_every):
            X, now = runner.descend(state, X, check_every, stress=True)
            checks.append((done, now, converged(before, now, tol, bound)))
            if checks[-1][2]:
                break
            before = now
    return problem, checks


def test_the_stop_is_decided_by_the_backends_stress_at_each_check():
    stopped = gradi.solve(D_CIRCLE, 2, niter=5000, tol=1e-3, dtype="float64")
    assert stopped.stop_reason == "converged"
    _, checks = _checks(D_CIRCLE, "numpy", 1e-3, 5000)
    assert [verdict for _, _, verdict in checks] == [False] * (len(checks) - 1) + [True]
    assert checks[-1][0] == stopped.iterations


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exact_distances_stop_on_the_normalised_stress(dtype):
    """A shape from exact distances: the stress falls geometrically, so the relative decrease
    per interval stays large to the end; the normalised stress stops it, with the squared
    distances matched to a relative tol / 10, however small tol is (the dtype's floor in
    float32), and the positions within a disparity of tol**2 (before: 1.3e-7 at tol 1e-4 on a
    text shape, the squared distances matched only to tol)."""
    points = shapes.text(300)
    D = gradi.distance_matrix(points)
    for tol in (1e-4, 1e-6, 1e-9):
        problem, checks = _checks(D, "cpp-simd" if gradi.backends.get("cpp-simd").available else "numpy",
                                  tol, 20_000, dtype)
        (done, now, verdict), before = checks[-1], checks[-2][1]
        assert verdict and done < 20_000, f"tol={tol:g} ran out of iterations"
        assert before - now > tol * before, "the relative decrease alone would not have stopped it"
        floor = (RESOLUTION_ULPS * np.finfo(dtype).eps) ** 2
        assert now <= max((tol / EXACT_MARGIN) ** 2, floor) * collapsed_stress(problem.D)
        result = gradi.solve(D, 2, niter=20_000, tol=tol, dtype=dtype,
                             backend="cpp-simd" if gradi.backends.get("cpp-simd").available else "numpy")
        assert (result.stop_reason, result.iterations) == ("converged", done)
        assert procrustes_disparity(points, result.X) <= max(tol**2, 1e-8)


def test_noisy_distances_stop_on_the_relative_decrease():
    """Measured distances with 1% noise: the stress levels off well above tol^2 of the scale, and
    the relative decrease stops the run."""
    rng = np.random.default_rng(3)
    D = gradi.distance_matrix(shapes.circle(60))
    noise = rng.normal(0, 0.01, D.shape)
    D = D * (1 + (noise + noise.T) / 2)
    np.fill_diagonal(D, 0)
    problem, checks = _checks(D, "numpy", 1e-4, 20_000)
    (done, now, verdict), before = checks[-1], checks[-2][1]
    assert verdict and 0 <= before - now < 1e-4 * before
    assert now > 1e-4 * collapsed_stress(problem.D), "the noise keeps the normalised stress far above tol^2"
    result = gradi.solve(D, 2, niter=20_000, tol=1e-4, dtype="float64")
    assert (result.stop_reason, result.iterations) == ("converged", done)


def test_the_stop_does_not_depend_on_the_scale():
    D = gradi.distance_matrix(shapes.text(80))
    stops = {gradi.solve(D * scale, 2, niter=20_000, tol=1e-5, dtype="float64").iterations
             for scale in (2.0**-30, 1.0, 2.0**7, 2.0**40)}
    assert len(stops) == 1


def test_the_first_check_can_stop_only_on_the_normalised_stress():
    assert converged(None, 1.0, 0.5, bound=1.0)
    assert not converged(None, 1.0, 0.5, bound=0.5)


@pytest.mark.parametrize("before, now, tol, bound, expected", [
    (1.0, 0.5, 1e-3, 0.0, False),        # still improving fast
    (1.0, 1.0 - 1e-4, 1e-3, 0.0, True),  # improved by less than tol
    (1.0, 1.5, 1e-3, 0.0, False),        # rose: not converged (a too-large step keeps going)
    (1.0, 1.5, 1e-3, 2.0, False),        # rose, even below the bound: not converged
    (1.0, 1.0, 1e-3, 0.0, True),         # stalled (the dtype's floor): no decrease at all
    (1.0, 0.0, 1e-3, 0.0, True),         # exact solution
    (1.0, 0.5, 1e-3, 0.5, True),         # falling fast, but at the bound: distances matched
    (1.0, float("nan"), 1e-3, 1.0, False),
    (1.0, float("inf"), 1e-3, 1.0, False),
])
def test_the_stopping_rule(before, now, tol, bound, expected):
    assert converged(before, now, tol, bound) is expected


def test_the_bound_is_a_tenth_of_tol_squared_of_the_collapsed_stress_or_the_dtypes_floor():
    """Q from whole D, or from its rows in parts (as each process of a run holds its own)."""
    D = gradi.distance_matrix(shapes.circle(30))
    Q = float(np.sum(D.astype(np.float64) ** 4) / 2)
    assert collapsed_stress(D) == pytest.approx(Q, rel=1e-14)
    assert collapsed_stress(D[:13]) + collapsed_stress(D[13:]) == pytest.approx(Q, rel=1e-14)
    assert collapsed_stress(D, 13) == pytest.approx(collapsed_stress(D[13:]), rel=1e-14)
    assert collapsed_stress(D.astype(np.float32)) == pytest.approx(Q, rel=1e-6)
    assert stress_bound(1e-3, Q, np.float64) == pytest.approx(1e-8 * Q, rel=1e-14)
    floor = (RESOLUTION_ULPS * np.finfo(np.float32).eps) ** 2
    assert stress_bound(1e-9, Q, np.float32) == pytest.approx(floor * Q, rel=1e-14)
