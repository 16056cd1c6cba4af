"""A diverging run raises DivergenceError naming what went non-finite and when; lr='auto' does not diverge."""

import numpy as np
import pytest

import gradi
from gradi import shapes
from gradi.testing import run_backend
from gradi.validation import validate


def test_the_blogs_step_size_diverges_at_n1000_and_says_where():
    D = gradi.distance_matrix(shapes.sphere(1000))
    with pytest.raises(gradi.DivergenceError) as caught:
        gradi.solve(D, 3, lr=0.001, niter=100)
    assert 1 <= caught.value.iteration <= 20
    assert "smaller lr" in str(caught.value) and f"iteration {caught.value.iteration}" in str(caught.value)
    assert isinstance(caught.value, gradi.GradiError)


@pytest.mark.parametrize("record_every", [None, 3])
def test_divergence_iteration_is_the_first_non_finite_one(record_every):
    D = gradi.distance_matrix(shapes.circle(30))
    X0 = shapes.random_start(D, 2)
    with pytest.raises(gradi.DivergenceError) as caught:
        gradi.solve(D, X0=X0, lr=0.5, niter=50, record_every=record_every)
    k = caught.value.iteration
    assert np.all(np.isfinite(gradi.solve(D, X0=X0, lr=0.5, niter=k - 1).X))
    with pytest.raises(gradi.DivergenceError):
        gradi.solve(D, X0=X0, lr=0.5, niter=k)


SIZES = [10, 100, 1000]


def _targets(n):
    return {"circle": shapes.circle(n), "sphere": shapes.sphere(n), "cloud2": shapes.cube(n, 2),
            "cloud3": shapes.cube(n, 3), "small circle": 1e-3 * shapes.circle(n),
            "small sphere": 1e-3 * shapes.sphere(n)}


def _check_auto_converges(n, niter, backend="numpy"):
    for name, target in _targets(n).items():
        D = gradi.distance_matrix(target)
        start = gradi.solve(D, target.shape[1], niter=0, backend=backend).stress
        result = gradi.solve(D, target.shape[1], niter=niter, backend=backend)
        assert np.isfinite(result.stress) and result.stress < start, (name, n)


@pytest.mark.parametrize("n", SIZES)
def test_auto_lr_converges_on_every_shape(n):
    _check_auto_converges(n, niter=1000 if n < 1000 else 100)


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_auto_lr_adapts_to_the_scale_of_the_start(scale):
    target = shapes.sphere(200)
    D = gradi.distance_matrix(target)
    X0 = scale * shapes.random_start(D, 3)
    result = gradi.solve(D, X0=X0, niter=1000)
    assert np.isfinite(result.stress) and result.stress < gradi.stress(X0, D)


def test_auto_lr_is_half_the_stability_limit_of_two_points():
    """lr='auto' bounds the largest Hessian eigenvalue, not its norm: for two points at distance
    D, started closer, the bound is exact at the solution (L = 16 D^2: each pair's eigenvalue
    12|d|^2 - 4D^2 = 8 D^2, twice over the pair's Laplacian), so lr * L = 1 there, half the
    limit 2. Before, the bound took the norm 12 max(|d|^2, D^2) and gave lr * L = 2/3. Steps
    just under the limit still converge; steps just over it do not."""
    D = np.array([[0.0, 3.0], [3.0, 0.0]])
    X0 = np.array([[0.0, 0.0], [1.0, 0.5]])
    lr = gradi.solve(D, X0=X0, niter=0, dtype="float64").lr
    assert lr * 16 * 3.0**2 == pytest.approx(1.0, rel=1e-12)
    under = gradi.solve(D, X0=X0, lr=1.9 * lr, niter=2000, dtype="float64")
    assert under.stress < 1e-20
    over = gradi.solve(D, X0=X0, lr=2.1 * lr, niter=2000, dtype="float64")
    assert over.stress > 1e-3


@pytest.mark.parametrize("name", ["circle", "sphere", "cloud2", "cloud3"])
@pytest.mark.parametrize("start_scale", [0.1, 1.0, 10.0])
def test_auto_lr_bounds_the_weight_laplacian_closely(name, start_scale):
    """1/lr is an upper bound on the largest eigenvalue of the Laplacian of the pair weights
    W_ij = 12 max(|d_ij|^2, D_ij^2) - 4 D_ij^2 (which bounds the Hessian, gradi.stepsize), and a
    close one: within 1.5 times it, where Gershgorin's 2 max_i sum_j W_ij is 1.3-1.8 times it on
    these shapes (a step up to 1.5 times longer, fewer iterations to the same accuracy)."""
    target = _targets(60)[name]
    D = gradi.distance_matrix(target)
    X0 = start_scale * shapes.random_start(D, target.shape[1])
    spread = np.sum((X0[:, None, :] - X0[None, :, :]) ** 2, axis=2)
    W = 12 * np.maximum(spread, D**2) - 4 * D**2
    largest = np.linalg.eigvalsh(np.diag(W.sum(axis=1)) - W)[-1]
    lr = gradi.solve(D, X0=X0, niter=0, dtype="float64").lr
    assert 1.0 <= 1 / (lr * largest) <= 1.5


@pytest.mark.slow
def test_auto_lr_converges_at_n4000():
    if not gradi.backends.get("cpp-simd").available:
        pytest.skip(gradi.backends.get("cpp-simd").unavailable_reason)
    _check_auto_converges(4000, niter=1000, backend="cpp-simd")


def _stress_and_positions_after(backend, problem, iterations):
    X = np.array(problem.X0, dtype=gradi.backends.get(backend).working_dtype(problem.dtype))
    with np.errstate(all="ignore"):
        X = run_backend(backend, X, problem.D, problem.lr, iterations)
        return gradi.stress(X, problem.D), problem.caller_positions(X)


def test_the_error_names_what_went_non_finite_and_when():
    """Issue 11.6: the stress overflowed at iteration 5 while the positions were finite (1.9e158)."""
    D = gradi.distance_matrix(shapes.circle(8))
    with pytest.raises(gradi.DivergenceError) as caught:
        gradi.solve(D, dim=2, backend="numpy", lr=0.5, niter=5, dtype="float64")
    assert (caught.value.iteration, caught.value.what) == (5, "stress")
    assert "the stress became non-finite at iteration 5" in str(caught.value)
    problem = validate(D, 2, lr=0.5, niter=5, dtype="float64")
    stress, X = _stress_and_positions_after("numpy", problem, 5)
    assert np.isinf(stress) and np.all(np.isfinite(X))
    stress, X = _stress_and_positions_after("numpy", problem, 4)
    assert np.isfinite(stress) and np.all(np.isfinite(X))


@pytest.mark.parametrize("record_every", [None, 1, 2, 3, 7])
def test_every_raise_site_reports_the_first_non_finite_iteration(record_every):
    """Between chunks only the positions are checked; the stress went first (before: 6, "positions")."""
    D = gradi.distance_matrix(shapes.circle(8))
    with pytest.raises(gradi.DivergenceError) as caught:
        gradi.solve(D, dim=2, backend="numpy", lr=0.5, niter=50, dtype="float64",
                    record_every=record_every)
    assert (caught.value.iteration, caught.value.what) == (5, "stress")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", gradi.backends.available())
def test_every_backend_reports_the_same_divergence_with_or_without_recording(backend, dtype):
    """The iteration means the same everywhere: k - 1 steps are finite, k are not, in the caller's dtype."""
    D = gradi.distance_matrix(shapes.circle(8))
    reports = set()
    for record_every in (None, 1, 3):
        with pytest.raises(gradi.DivergenceError) as caught:
            gradi.solve(D, 2, backend=backend, lr=0.5, niter=30, dtype=dtype, record_every=record_every)
        reports.add((caught.value.iteration, caught.value.what))
    assert len(reports) == 1, reports
    (k, what), = reports
    before = gradi.solve(D, 2, backend=backend, lr=0.5, niter=k - 1, dtype=dtype)
    assert np.isfinite(before.stress) and np.all(np.isfinite(before.X))
    with pytest.raises(gradi.DivergenceError, match=f"{what} became non-finite at iteration {k} "):
        gradi.solve(D, 2, backend=backend, lr=0.5, niter=k, dtype=dtype)


def test_positions_that_overflow_the_asked_dtype_are_a_divergence():
    """python computes in float64: its positions overflowed float32 at iteration 4, returned as inf."""
    D = gradi.distance_matrix(shapes.circle(8))
    with pytest.raises(gradi.DivergenceError) as caught:
        gradi.solve(D, 2, backend="python", lr=0.5, niter=4, dtype="float32")
    assert (caught.value.iteration, caught.value.what) == (4, "positions")


def test_a_divergence_under_auto_lr_does_not_advise_auto_lr(monkeypatch):
    monkeypatch.setattr(gradi.stepsize, "AUTO_SAFETY", 1000.0)  # a step far beyond the bound
    D = gradi.distance_matrix(shapes.circle(20))
    with pytest.raises(gradi.DivergenceError) as caught:
        gradi.solve(D, 2, niter=100)
    message = str(caught.value)
    assert caught.value.auto and "or lr='auto'" not in message
    assert f"pass a smaller lr explicitly, e.g. lr={caught.value.lr / 10:.3g}" in message
    with pytest.raises(gradi.DivergenceError) as caught:
        gradi.solve(D, 2, niter=100, lr=0.5)
    assert not caught.value.auto and "or lr='auto'" in str(caught.value)
