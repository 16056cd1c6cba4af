"""``descend(..., stress=True)``: every backend reports the stress of the positions its last step
started from, as the float64 reference computes it within the dtype's tolerance, and the
positions stay bit-identical to those of ``stress=False``.

The reference is ``gradi.stress`` (pairwise, float64) of the same backend's positions after one
step fewer, so what is checked is the backend's own sum, not its trajectory. The tolerance is the
dtype's (``gradi.testing.RELATIVE_TOLERANCE``): the kernels' C_ij carry the working dtype's
rounding, a few ulps of D^2, and at these random starts |C_ij| is of the order of D^2.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gradi
from gradi.problem import Problem
from gradi.testing import RELATIVE_TOLERANCE, make_case

TUNED = ("cpp-simd", "mojo-simd")
SLOW = ("python", "numpy-loops")  # loops in Python: small cases only
# (n, dim, niter): several tiles of the tuned kernels (3 blocks: diagonal, own and shared tiles),
# their dimensions in registers and the generic path (dim > 8), a run long enough for mojo-simd
# to use its workers (mojo.PARALLEL_MIN_WORK).
CASES = [(37, 2, 3), (70, 10, 2), (600, 3, 15)]


def _available(name):
    backend = gradi.backends.get(name)
    if not backend.available:
        pytest.skip(f"{name}: {backend.unavailable_reason}")
    return backend


def _threads(backend):
    return 2 if backend.parallel and backend.name not in ("jax", "jax-scan") else backend.default_threads()


def _runs(backend, n, dim, niter, dtype, threads):
    """(X after niter steps, X after niter steps with stress, their stress, X after niter - 1)."""
    X0, D, lr = make_case(n, dim, dtype, seed=n + dim)
    start = np.array(X0, dtype=backend.working_dtype(dtype))
    with backend.prepare(Problem(D=D, X0=X0, lr=lr, niter=niter), threads) as state:
        plain = backend.descend(state, start.copy(), niter)
        with_stress, stress = backend.descend(state, start.copy(), niter, stress=True)
        before_last = backend.descend(state, start.copy(), niter - 1)
    return D, plain, with_stress, stress, before_last


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n, dim, niter", CASES)
@pytest.mark.parametrize("name", gradi.backends.names())
def test_the_backends_stress_is_the_reference_stress_of_the_last_steps_start(name, n, dim, niter, dtype):
    backend = _available(name)
    if name in SLOW and n > 100:
        pytest.skip("loops in Python: the small cases cover them")
    D, plain, with_stress, stress, before_last = _runs(backend, n, dim, niter, dtype, _threads(backend))
    assert type(stress) is float
    assert np.array_equal(plain, with_stress), "stress=True must not change the positions"
    expected = gradi.stress(before_last, D)
    assert stress == pytest.approx(expected, rel=RELATIVE_TOLERANCE[dtype], abs=0)
    after = gradi.stress(plain, D)
    assert expected - after > 10 * RELATIVE_TOLERANCE[dtype] * expected, "a step off must fail the check"


@pytest.mark.parametrize("name", ["numpy", "cpp-parallel", *TUNED])
def test_the_stress_is_the_same_for_any_thread_count_and_any_chunking(name):
    backend = _available(name)
    X0, D, lr = make_case(600, 2, "float32", seed=11)
    results = set()
    for threads in (1, 2, 3):
        with backend.prepare(Problem(D=D, X0=X0, lr=lr, niter=20), threads) as state:
            whole = backend.descend(state, X0.copy(), 20, stress=True)
            split = backend.descend(state, backend.descend(state, X0.copy(), 13), 7, stress=True)
        assert np.array_equal(whole[0], split[0]) and whole[1] == split[1]
        results.add((whole[0].tobytes(), whole[1]))
    assert len(results) == 1, f"{name}: threads changed the positions or the stress"


@pytest.mark.parametrize("name", gradi.backends.names())
def test_stress_without_a_step_is_refused(name):
    backend = _available(name)
    X0, D, lr = make_case(9, 2, "float64")
    with backend.prepare(Problem(D=D, X0=X0, lr=lr, niter=0), 1) as state:
        with pytest.raises(ValueError, match="stress"):
            backend.descend(state, X0.copy(), 0, stress=True)
        assert np.array_equal(backend.descend(state, X0.copy(), 0), X0)


@pytest.mark.parametrize("isa", ["avx2", "baseline"])
def test_every_cpp_simd_kernel_reports_the_same_stress_as_the_reference(monkeypatch, isa):
    backend = _available("cpp-simd")
    if isa not in backend.native.simd_isas():
        pytest.skip(f"this CPU does not run the {isa} kernel")
    monkeypatch.setenv("GRADI_CPP_ISA", isa)
    for dtype in ("float32", "float64"):
        for n, dim, niter in CASES:
            D, plain, with_stress, stress, before_last = _runs(backend, n, dim, niter, dtype, 2)
            assert np.array_equal(plain, with_stress)
            assert stress == pytest.approx(gradi.stress(before_last, D), rel=RELATIVE_TOLERANCE[dtype], abs=0)


def test_the_mojo_extension_checks_its_stress_flag():
    backend = _available("mojo-simd")
    module = backend.extension()
    X0, D, lr = make_case(12, 2, "float64")
    with pytest.raises(ValueError, match="stress must be in \\[0, 1\\]"):
        module.seed(X0.copy(), D, lr, 3, 1, 2)
    with pytest.raises(ValueError, match="stress needs niter >= 1"):
        module.seed(X0.copy(), D, lr, 0, 1, 1)
    with pytest.raises(TypeError, match="takes 5 to 6 positional arguments"):
        module.seed(X0.copy(), D, lr, 3, 1, 1, 0)
    assert isinstance(module.seed(X0.copy(), D, lr, 3, 1, 1), float)


SHARDED_SCRIPT = """
import json, sys
import numpy as np
import gradi
from gradi.sharded import distributed
from gradi.problem import Problem
from gradi.testing import make_case

if sys.argv[1] == "processes":
    distributed.initialize(distributed.from_environment())
backend = gradi.backends.get("jax-sharded")
threads = backend.default_threads()
report = {"devices": distributed.process_count() * threads}
for dtype in ("float32", "float64"):
    X0, D, lr = make_case(45, 3, dtype, seed=4)
    with backend.prepare(Problem(D=D, X0=X0, lr=lr, niter=4), threads) as state:
        plain = backend.descend(state, X0.copy(), 4)
        X, stress = backend.descend(state, X0.copy(), 4, stress=True)
        before_last = backend.descend(state, X0.copy(), 3)
    report[dtype] = {"same": bool(np.array_equal(plain, X)), "stress": stress,
                     "reference": gradi.stress(before_last, D)}
if distributed.process_index() == 0:
    print(json.dumps(report))
"""


@pytest.mark.parametrize("how", ["devices", "processes"])
def test_jax_sharded_adds_the_stress_over_every_device_and_process(tmp_path, how):
    """Two CPU devices in one process, or two processes of a jax.distributed run: the stress
    is the whole problem's (psum inside the compiled step), on every process."""
    _available("jax-sharded")
    script = tmp_path / "sharded.py"
    script.write_text(SHARDED_SCRIPT)
    if how == "devices":
        argv, env = [sys.executable, str(script), how], {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    else:
        argv, env = [sys.executable, "-m", "gradi", "launch", "-n", "2", "--", sys.executable, str(script), how], {}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["devices"] == 2
    for dtype in ("float32", "float64"):
        row = report[dtype]
        assert row["same"]
        assert row["stress"] == pytest.approx(row["reference"], rel=RELATIVE_TOLERANCE[dtype], abs=0)
