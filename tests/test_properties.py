"""Property-based tests over random valid problems (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import gradi
from gradi.stepsize import auto_lr


@st.composite
def problems(draw):
    n = draw(st.integers(2, 12))
    dim = draw(st.integers(1, 4))
    coordinate = st.floats(-10, 10, allow_nan=False, width=64)
    target = draw(arrays(np.float64, (n, dim), elements=coordinate))
    start = draw(arrays(np.float64, (n, dim), elements=coordinate))
    return gradi.distance_matrix(target), start


@settings(max_examples=60, deadline=None)
@given(problems())
def test_a_small_enough_step_does_not_increase_stress(problem):
    """A step well inside the Gershgorin bound (gradi.stepsize) is a descent step."""
    D, X0 = problem
    before = gradi.stress(X0, D)
    lr = 0.01 * auto_lr(D, X0)
    after = gradi.solve(D, X0=X0, lr=lr, niter=1, dtype="float64").stress
    assert after <= before * (1 + 1e-12) + 1e-12


@settings(max_examples=40, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_the_order_of_the_points(problem, random):
    D, X0 = problem
    order = list(range(len(D)))
    random.shuffle(order)
    lr = auto_lr(D, X0)
    X = gradi.solve(D, X0=X0, lr=lr, niter=5, dtype="float64").X
    X_permuted = gradi.solve(D[np.ix_(order, order)], X0=X0[order], lr=lr, niter=5, dtype="float64").X
    np.testing.assert_allclose(X_permuted, X[order], rtol=1e-9, atol=1e-9 * (1 + np.abs(X).max()))
