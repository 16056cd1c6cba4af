"""lr='auto' recovers the blog's shapes up to rotation, reflection and translation.

Bound: a Procrustes disparity below 1e-6 (the shapes are standardised to unit norm, so this is
a relative squared error; converged float32 runs reach about 1e-12, a wrong shape is above 1e-2).
"""

import pytest

import gradi
from gradi import shapes
from gradi.align import procrustes_disparity

DISPARITY_BOUND = 1e-6


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("target", [shapes.circle(10), shapes.circle(50), shapes.sphere(100)],
                         ids=["circle10", "circle50", "sphere100"])
def test_shape_is_recovered(target, backend):
    if not gradi.backends.get(backend).available:
        pytest.skip(gradi.backends.get(backend).unavailable_reason)
    result = gradi.solve(gradi.distance_matrix(target), target.shape[1], backend=backend)
    assert procrustes_disparity(target, result.X) < DISPARITY_BOUND
    assert result.stress < 1e-4
