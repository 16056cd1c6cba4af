"""pytest-benchmark: one benchmark per registered backend, N=100 points in 3-D, float32.

In the normal test command (with ``--benchmark-disable``) each runs once as an ordinary test;
on demand they are real benchmarks:
``pytest tests/test_bench_backends.py --benchmark-enable --benchmark-only --benchmark-autosave``
(then ``--benchmark-compare`` to compare with the last saved run). Either way the positions are
checked against the float64 NumPy reference, so a fast but wrong backend fails. The timed call is
the backend's ``descend`` on an already validated and compiled problem, from a fresh copy of X0.
"""

import pytest

from gradi.backends import BACKENDS
from gradi.testing import assert_agrees, make_case, reference_descend
from gradi.validation import validate

N, DIM, DTYPE = 100, 3, "float32"
ITERATIONS = 50
# The seed tiers that loop in Python cost 30-60 ms per iteration at N=100.
SLOW_ITERATIONS = {"python": 3, "numpy-loops": 3}


@pytest.fixture(scope="module")
def case():
    return make_case(N, DIM, DTYPE)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_descend(benchmark, case, name):
    backend = BACKENDS[name]
    if not backend.available:
        pytest.skip(f"{name} unavailable: {backend.unavailable_reason}")
    X0, D, lr = case
    niter = SLOW_ITERATIONS.get(name, ITERATIONS)
    threads = backend.default_threads()
    problem = validate(D, DIM, lr=lr, niter=niter, X0=X0, dtype=DTYPE, backend=backend, threads=threads)
    benchmark.extra_info.update(backend=name, n=N, dim=DIM, iterations=niter, threads=threads)

    with backend.prepare(problem, threads) as state:
        X = benchmark(lambda: backend.descend(state, problem.X0.copy(), niter))

    assert_agrees(X, reference_descend(X0, D, lr, niter), D, DTYPE)
