"""The problem definition: stress, its exact gradient, distance matrices and shapes."""

import tracemalloc

import numpy as np
import pytest

import gradi
from gradi import memory, problem, shapes
from gradi.testing import make_case


def test_stress_counts_each_unordered_pair_once():
    X = np.array([[0.0, 0.0], [3.0, 4.0]])
    D = np.array([[0.0, 4.0], [4.0, 0.0]])
    assert gradi.stress(X, D) == (25.0 - 16.0) ** 2


@pytest.mark.parametrize("n, dim", [(2, 1), (7, 2), (17, 3), (9, 5)])
def test_gradient_equals_jax_grad(n, dim):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    X, D, _ = make_case(n, dim, "float64", seed=n)

    def jax_stress(X):
        diff = X[:, None, :] - X[None, :, :]
        C = jnp.sum(diff * diff, axis=-1) - jnp.asarray(D) ** 2
        return jnp.sum(jnp.triu(C, 1) ** 2)

    with jax.enable_x64(True):
        expected = np.asarray(jax.grad(jax_stress)(jnp.asarray(X)))
    np.testing.assert_allclose(gradi.gradient(X, D), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n, dim", [(2, 1), (6, 2), (11, 3)])
def test_gradient_equals_finite_differences(n, dim):
    X, D, _ = make_case(n, dim, "float64", seed=3 * n)
    h = 1e-6
    numeric = np.zeros_like(X)
    for index in np.ndindex(X.shape):
        step = np.zeros_like(X)
        step[index] = h
        numeric[index] = (gradi.stress(X + step, D) - gradi.stress(X - step, D)) / (2 * h)
    analytic = gradi.gradient(X, D)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * np.abs(analytic).max())


def test_distance_matrix_is_symmetric_with_zero_diagonal():
    D = gradi.distance_matrix(shapes.sphere(50))
    assert D.shape == (50, 50)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diagonal(D), 0.0)
    assert D[0, 1] == pytest.approx(np.linalg.norm(shapes.sphere(50)[0] - shapes.sphere(50)[1]))


def test_shapes_have_the_blog_geometry():
    np.testing.assert_allclose(np.linalg.norm(shapes.circle(12), axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(shapes.sphere(40), axis=1), 1.0)
    assert shapes.circle(12).shape == (12, 2) and shapes.sphere(40).shape == (40, 3)
    np.testing.assert_array_equal(shapes.cube(30, 4, seed=1), shapes.cube(30, 4, seed=1))
    assert not np.array_equal(shapes.cube(30, 4, seed=1), shapes.cube(30, 4, seed=2))


def test_distance_matrix_is_accurate_far_from_the_origin():
    circle = shapes.circle(20)
    np.testing.assert_allclose(gradi.distance_matrix(circle + 1e7), gradi.distance_matrix(circle),
                               atol=1e-7)


def _naive_stress(X, D):
    return sum((np.sum((X[i] - X[j]) ** 2) - D[i, j] ** 2) ** 2
               for i in range(len(X)) for j in range(i + 1, len(X)))


def test_stress_reads_the_upper_triangle_only():
    X, D, _ = make_case(9, 2, "float64", seed=4)
    lower_changed = D + np.tril(np.full_like(D, 5.0), -1)
    assert gradi.stress(X, lower_changed) == pytest.approx(_naive_stress(X, D), rel=1e-12)
    assert gradi.stress(X, lower_changed) == pytest.approx(gradi.stress(X, D), rel=1e-12)


@pytest.mark.parametrize("block_bytes", [1, 8 * 3 * 40, 1 << 30])
def test_row_blocks_change_nothing_but_the_summation_order(monkeypatch, block_bytes):
    """stress and gradient work in row blocks of at most BLOCK_BYTES (one row at least)."""
    X, D, _ = make_case(40, 3, "float64", seed=5)
    expected_stress = _naive_stress(X, D)
    monkeypatch.setattr(problem, "BLOCK_BYTES", block_bytes)
    blocks = problem.row_blocks(40, 40)
    assert blocks[0][0] == 0 and blocks[-1][1] == 40
    assert all(stop == start for (_, stop), (start, _) in zip(blocks, blocks[1:]))
    assert len(blocks) == {1: 40, 8 * 3 * 40: 14, 1 << 30: 1}[block_bytes]
    assert gradi.stress(X, D) == pytest.approx(expected_stress, rel=1e-12)
    diff = X[:, None, :] - X[None, :, :]
    C = np.sum(diff * diff, axis=-1) - D * D
    expected_gradient = 4 * np.einsum("ij,ijk->ik", C, diff)
    np.testing.assert_allclose(gradi.gradient(X, D), expected_gradient, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_distance_matrix_is_built_in_its_dtype_a_row_block_at_a_time(monkeypatch, dtype):
    """Before: a float64 N x N with full N x N temporaries (about 23 N^2 bytes at the peak of a
    float32 solve from a shape)."""
    n = 2000
    points = shapes.sphere(n)
    tracemalloc.start()
    try:
        D = gradi.distance_matrix(points, dtype)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    itemsize = np.dtype(dtype).itemsize
    blocks = problem.BLOCK_TEMPORARIES * problem.BLOCK_BYTES + memory.SMALL_BYTES
    assert D.dtype == dtype and peak <= n * n * itemsize + blocks
    exact = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=-1))
    np.testing.assert_array_equal(D, exact.astype(dtype))


def test_distance_matrix_is_exactly_symmetric_across_row_blocks(monkeypatch):
    monkeypatch.setattr(problem, "BLOCK_BYTES", 8 * 3 * 61)  # blocks of 3 rows of 61
    points = shapes.cube(61, 3) + 1e6
    D = gradi.distance_matrix(points, "float32")
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diagonal(D), 0.0)
