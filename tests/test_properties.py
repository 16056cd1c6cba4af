"""Properties of solve over random valid problems (hypothesis) and over every backend."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import gradi
from gradi import shapes
from gradi.stepsize import auto_lr
from gradi.validation import SCALE_LIMITS


@st.composite
def problems(draw):
    n = draw(st.integers(2, 12))
    dim = draw(st.integers(1, 4))
    coordinate = st.floats(-10, 10, allow_nan=False, width=64)
    target = draw(arrays(np.float64, (n, dim), elements=coordinate))
    start = draw(arrays(np.float64, (n, dim), elements=coordinate))
    return gradi.distance_matrix(target), start


def _refusal(D, X0):
    """What gradi's rules (gradi.validation) say about this float64 problem: a reason, or None."""
    scale = max(float(D.max()), float(np.abs(X0).max()))
    if scale and not 1 / SCALE_LIMITS["float64"] <= scale <= SCALE_LIMITS["float64"]:
        return "must be rescaled"
    if D.max() > 0 and np.all(X0 == X0[0]):
        return "rows are all identical"
    return None


def _solve_or_refuse(D, X0, lr_fraction, niter):
    """solve with lr = lr_fraction * auto_lr(D, X0), or None after checking that solve refuses
    exactly what _refusal names."""
    reason = _refusal(D, X0)
    if reason is not None:
        with pytest.raises(ValueError, match=reason):
            gradi.solve(D, X0=X0, dtype="float64", niter=niter)
        return None
    lr = lr_fraction * auto_lr(D, X0)
    assert np.isfinite(lr) and lr > 0
    result = gradi.solve(D, X0=X0, dtype="float64", lr=lr, niter=niter)
    assert result.lr == lr
    return result


def _points(scale):
    return scale * np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 0.0]])


@pytest.mark.filterwarnings("ignore::gradi.DegenerateStartWarning")
@settings(max_examples=60, deadline=None)
@given(problems())
@example((gradi.distance_matrix(_points(1e-160)), _points(0.5e-160)))  # auto_lr was inf here
@example((gradi.distance_matrix(_points(1e-60)), _points(0.5e-60)[::-1]))
@example((gradi.distance_matrix(_points(1.0)), np.zeros((3, 2))))
def test_a_small_enough_step_does_not_increase_stress(problem):
    """A step well inside lr="auto"'s bound (gradi.stepsize) is a descent step."""
    D, X0 = problem
    before = gradi.stress(X0, D)
    result = _solve_or_refuse(D, X0, 0.01, niter=1)
    if result is not None:
        assert result.stress <= before + 1e-12 * (before + gradi.stress(np.zeros_like(X0), D))


@pytest.mark.filterwarnings("ignore::gradi.DegenerateStartWarning")
@settings(max_examples=40, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_the_order_of_the_points(problem, random):
    D, X0 = problem
    order = list(range(len(D)))
    random.shuffle(order)
    result = _solve_or_refuse(D, X0, 1.0, niter=5)
    if result is not None:
        X = result.X
        X_permuted = gradi.solve(D[np.ix_(order, order)], X0=X0[order], lr=result.lr, niter=5,
                                 dtype="float64").X
        np.testing.assert_allclose(X_permuted, X[order], rtol=1e-9, atol=1e-9 * (1 + np.abs(X).max()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", gradi.backends.available())
def test_recording_never_changes_the_answer(backend, dtype):
    """Issue 11.7: python in float32 differed by 3.6e-7 with record_every=1 (rounded between chunks)."""
    D = gradi.distance_matrix(shapes.sphere(50))
    plain = gradi.solve(D, 3, backend=backend, niter=20, dtype=dtype)
    for record_every in (1, 3, 20, 50):
        recorded = gradi.solve(D, 3, backend=backend, niter=20, dtype=dtype, record_every=record_every)
        np.testing.assert_array_equal(recorded.X, plain.X)
        assert recorded.stress == plain.stress
        assert recorded.history_X[-1].tolist() == plain.X.tolist()
        assert recorded.history_stress[-1] == plain.stress


def test_recording_reads_nothing_of_D_between_chunks(monkeypatch):
    """Issue 19: a stress evaluated between two chunks evicted the tuned backends' D^2 from the
    cache and let their threads fall asleep; the recorded stresses are evaluated after the run."""
    backend = gradi.backends.get("numpy")
    calls = []
    descend, rows_stress = backend.descend, gradi.problem.rows_stress
    monkeypatch.setattr(backend, "descend", lambda *args: calls.append("descend") or descend(*args))
    monkeypatch.setattr(gradi.problem, "rows_stress", lambda *args: calls.append("stress") or rows_stress(*args))
    D = gradi.distance_matrix(shapes.sphere(30))
    result = gradi.solve(D, 3, backend="numpy", niter=12, record_every=3)
    last_descend = max(i for i, call in enumerate(calls) if call == "descend")
    assert "stress" not in calls[:last_descend]
    assert calls.count("stress") == len(result.history_stress) + 1  # and the result's own
    assert result.history_iterations == [0, 3, 6, 9, 12]
    for X, recorded in zip(result.history_X, result.history_stress):
        assert recorded == gradi.stress(X, D.astype(np.float32))  # the problem's D, in its dtype
