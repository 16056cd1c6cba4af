"""``numpy``'s threads: workers over row blocks, and the same bits at a block's edge (issue 17.7).

Before, threads set NumPy's BLAS pool, whose products are split differently by thread count:
threads 1 and 2 differed in 807 entries at N=1000 (up to 1.5e-7). Every thread count giving the
same bits at larger N is part of the backend contract (test_backend_contract.py).
"""

import threading

import numpy as np
import pytest

import gradi
from gradi import shapes
from gradi.backends.numpy_matrix import BLOCK_ROWS


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [BLOCK_ROWS - 1, BLOCK_ROWS + 1])
def test_every_thread_count_gives_the_same_bits_at_a_block_edge(n, dtype):
    D = gradi.distance_matrix(shapes.sphere(n))
    results = [gradi.solve(D, 3, backend="numpy", threads=threads, niter=20, dtype=dtype).X
               for threads in (1, 2, 3)]
    for X in results[1:]:
        np.testing.assert_array_equal(X, results[0])


def test_threads_are_workers_over_row_blocks(monkeypatch):
    seen = set()
    original = gradi.backends.numpy_matrix.block_gradient

    def spy(*args):
        seen.add(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(gradi.backends.numpy_matrix, "block_gradient", spy)
    D = gradi.distance_matrix(shapes.sphere(4 * BLOCK_ROWS))
    gradi.solve(D, 3, backend="numpy", threads=2, niter=5)
    assert 1 <= len(seen) <= 2 and all(name.startswith("gradi-numpy") for name in seen)
    seen.clear()
    gradi.solve(D, 3, backend="numpy", threads=1, niter=5)
    assert seen == {threading.current_thread().name}
