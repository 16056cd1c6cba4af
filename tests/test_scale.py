"""Any scale gives the same shape, or a refusal that says to rescale: never garbage (issue 17.5).

Gradient descent is exactly equivariant under scaling by a power of two, and gradi runs a
problem whose scale would leave the dtype's normal range at a power-of-two rescaling; so
scaling D and X0 by 2^k (and lr by 2^-2k) must scale the positions by exactly 2^k.
"""

import numpy as np
import pytest

import gradi
from gradi import shapes
from gradi.align import procrustes_disparity
from gradi.validation import SCALE_LIMITS

TARGET = shapes.circle(20)
D = gradi.distance_matrix(TARGET)
X0 = shapes.random_start(D, 2)
LR = {dtype: gradi.solve(D, X0=X0, niter=0, dtype=dtype).lr for dtype in ("float32", "float64")}


@pytest.mark.parametrize("dtype, power", [("float32", -60), ("float32", -20), ("float32", 40),
                                          ("float32", 90), ("float64", -230), ("float64", 200)])
@pytest.mark.parametrize("backend", gradi.backends.available())
def test_scaling_by_a_power_of_two_scales_the_answer_exactly(backend, dtype, power):
    c, lr = 2.0 ** power, LR[dtype]
    niter = 3 if backend in ("python", "numpy-loops") else 30
    plain = gradi.solve(D, X0=X0, backend=backend, dtype=dtype, niter=niter, lr=lr, record_every=niter)
    scaled = gradi.solve(c * D, X0=c * X0, backend=backend, dtype=dtype, niter=niter, lr=lr / c**2,
                         record_every=niter)
    np.testing.assert_array_equal(scaled.X, (c * plain.X.astype(np.float64)).astype(dtype))
    assert scaled.stress == plain.stress * c**4 and scaled.history_stress[-1] == scaled.stress
    automatic = gradi.solve(c * D, X0=c * X0, backend=backend, dtype=dtype, niter=niter)
    assert automatic.lr == lr / c**2
    np.testing.assert_array_equal(automatic.X, scaled.X)


@pytest.mark.parametrize("dtype, scale", [("float32", 1e-17), ("float32", 1e-20), ("float32", 1e25),
                                          ("float64", 1e-70), ("float64", 1e60)])
def test_tiny_and_huge_distances_recover_the_shape(dtype, scale):
    """Before: float32 1e-17 and 1e-20 "converged" to a Procrustes disparity of 0.887."""
    result = gradi.solve(D * scale, 2, dtype=dtype, niter=3000)
    assert procrustes_disparity(TARGET, result.X) < 1e-6
    assert 0 < result.stress < 1e-6 * gradi.stress(np.zeros((20, 2)), D * scale)
    assert np.isfinite(result.lr) and result.lr > 0


@pytest.mark.parametrize("dtype, scale", [("float32", 1e-35), ("float32", 1e35), ("float64", 1e-150),
                                          ("float64", 1e-80), ("float64", 1e80)])
def test_scales_whose_results_cannot_be_represented_are_refused(dtype, scale):
    """Before: float64 1e-150 gave garbage with stress 0, 1e-80 a stress of 0."""
    with pytest.raises(ValueError, match=f"must be rescaled.*outside what gradi can solve in {dtype}"):
        gradi.solve(D * scale, 2, dtype=dtype)
    assert 1 / SCALE_LIMITS[dtype] > scale or scale > SCALE_LIMITS[dtype]


def test_a_start_far_larger_than_the_distances_sets_the_scale():
    with pytest.raises(ValueError, match="their scale .largest entry. 1e\\+40"):
        gradi.solve(D, X0=np.full((20, 2), 1e40) + X0, dtype="float32")


@pytest.mark.parametrize("lr, words", [(1e-50, "too small for float32"), (1e50, "too large for float32")])
def test_an_explicit_step_the_dtype_cannot_hold_is_refused(lr, words):
    """Before: the step rounded to 0 in float32 and the start came back unchanged, or overflowed."""
    with pytest.raises(ValueError, match=words):
        gradi.solve(D, 2, lr=lr, dtype="float32")


def test_an_explicit_step_is_in_the_callers_units_at_any_scale():
    scale = 2.0**-80
    lr = LR["float32"] / scale**2
    result = gradi.solve(D * scale, X0=X0 * scale, lr=lr, niter=3, dtype="float32")
    assert result.lr == lr
    np.testing.assert_array_equal(result.X / scale, gradi.solve(D, X0=X0, lr=LR["float32"], niter=3).X)
    with pytest.raises(ValueError, match=r"lr=1e\+10 is too small for float32 \(it runs as"):
        gradi.solve(D * 1e-30, 2, lr=1e10, dtype="float32")
