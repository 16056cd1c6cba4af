"""A diverging run raises DivergenceError naming the iteration; lr='auto' does not diverge."""

import numpy as np
import pytest

import gradi
from gradi import shapes


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


@pytest.mark.slow
def test_auto_lr_converges_at_n4000():
    if not gradi.backends.get("cpp-simd").available:
        pytest.skip(gradi.backends.get("cpp-simd").unavailable_reason)
    _check_auto_converges(4000, niter=1000, backend="cpp-simd")
