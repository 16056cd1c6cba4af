"""pytest-benchmark: one benchmark per registered backend, N=100 points in 3-D, float32.

In the normal test command (with ``--benchmark-disable``) each runs once as an ordinary test;
on demand they are real benchmarks:
``pytest tests/test_bench_backends.py --benchmark-enable --benchmark-only --benchmark-autosave``
(then ``--benchmark-compare`` to compare with the last saved run). Either way the positions are
checked against the float64 NumPy reference, so a fast but wrong backend fails. The timed call is
the backend's ``descend`` on an already validated and compiled problem, from a fresh copy of X0.

A row times one call of ITERATIONS (50) steps, except python and numpy-loops (3 steps: they cost
30-60 ms per step at N=100). Only rows of equal work compare, so the step count is in each row's
name (``test_descend[numpy-50steps]``) and rows are grouped by it: pytest-benchmark prints one
table per step count.
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


def iterations(name):
    return SLOW_ITERATIONS.get(name, ITERATIONS)


@pytest.mark.parametrize("name", [pytest.param(name, id=f"{name}-{iterations(name)}steps")
                                  for name in BACKENDS])
def test_descend(benchmark, case, name):
    backend = BACKENDS[name]
    if not backend.available:
        pytest.skip(f"{name} unavailable: {backend.unavailable_reason}")
    X0, D, lr = case
    niter = iterations(name)
    benchmark.group = f"N={N}, dim={DIM}, {DTYPE}: one call of {niter} steps"
    threads = backend.default_threads()
    problem = validate(D, DIM, lr=lr, niter=niter, X0=X0, dtype=DTYPE, backend=backend, threads=threads)
    benchmark.extra_info.update(backend=name, n=N, dim=DIM, iterations=niter, threads=threads)

    with backend.prepare(problem, threads) as state:
        X = benchmark(lambda: backend.descend(state, problem.X0.copy(), niter))

    assert_agrees(X, reference_descend(X0, D, lr, niter), D, DTYPE)
