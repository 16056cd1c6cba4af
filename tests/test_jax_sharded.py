"""jax-sharded agrees with the reference on 1 device, 2 devices in one process and 2 processes;
row sources give D's rows (how a launched run fails together: tests/test_launch.py).

Multi-process cases start real ``jax.distributed`` runs (gloo on 127.0.0.1) in subprocesses, at
small N, each bounded by a timeout. The JAX runtime tests run in fresh interpreters, because the
pool is fixed when JAX starts.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gradi
from gradi.problem import ProblemSize
from gradi.rows import MatrixRows, PointRows
from gradi.sharded import backend as jax_sharded
from gradi.testing import (
    RELATIVE_TOLERANCE,
    assert_agrees,
    make_case,
    max_relative_error,
    reference_descend,
    run_backend,
)

pytest.importorskip("jax", reason="jax is not installed (pip install 'gradi[jax]')")

BACKEND = gradi.backends.get("jax-sharded")
NITER = 30
RUN_TIMEOUT = 240  # seconds any one subprocess may take (a busy 2-core machine)
GRADI = [sys.executable, "-m", "gradi"]


def _run(argv, env=None, timeout=RUN_TIMEOUT, **kwargs):
    environ = dict(os.environ, **(env or {}))
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environ, **kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [17, 40])
def test_agrees_with_the_reference_on_each_local_device_count(n, dtype):
    X0, D, lr = make_case(n, 3, dtype, seed=n)
    expected = reference_descend(X0, D, lr, NITER)
    for threads in range(1, BACKEND.default_threads() + 1):
        X = run_backend(BACKEND, X0.copy(), D, lr, NITER, threads=threads)
        assert X.dtype == np.dtype(dtype)
        assert_agrees(X, expected, D, dtype)
    assert max_relative_error(expected, X0, D) > 100 * RELATIVE_TOLERANCE[dtype], "the run must move"


def test_many_tiles_per_device_agree(monkeypatch):
    monkeypatch.setattr(jax_sharded, "TILE_BYTES", 3 * 40 * 8)  # tiles of 3 rows at N=40, float64
    assert jax_sharded.layout(40, 1, 8).tiles == 14
    X0, D, lr = make_case(40, 2, "float64", seed=3)
    X = run_backend(BACKEND, X0.copy(), D, lr, NITER)
    assert_agrees(X, reference_descend(X0, D, lr, NITER), D, "float64")


def test_layout_covers_every_row_once_with_little_padding():
    for n, devices in [(2, 1), (17, 2), (1000, 2), (16000, 2), (16001, 3)]:
        shape = jax_sharded.layout(n, devices, 4)
        assert shape.padded >= n and shape.padded - n < devices * shape.tiles
        assert shape.tile * n * 4 <= max(jax_sharded.TILE_BYTES, n * 4)


def test_two_devices_in_one_process_agree(tmp_path):
    script = textwrap.dedent("""
        import json, sys
        import gradi
        from gradi.testing import make_case, max_relative_error, reference_descend, run_backend
        backend = gradi.backends.get("jax-sharded")
        errors = {}
        for dtype in ("float32", "float64"):
            X0, D, lr = make_case(23, 2, dtype, seed=5)
            X = run_backend(backend, X0.copy(), D, lr, 30, threads=2)
            errors[dtype] = max_relative_error(X, reference_descend(X0, D, lr, 30), D)
        print(json.dumps({"devices": backend.default_threads(), "errors": errors,
                          "jax_threads": gradi.backends.get("jax").default_threads()}))
    """)
    done = _run([sys.executable, "-c", script],
                env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["devices"] == 2
    for dtype, error in report["errors"].items():
        assert error <= RELATIVE_TOLERANCE[dtype], (dtype, error)
    assert report["jax_threads"] == 2, "two CPU devices make XLA's pool two threads; jax must say so"


def test_threads_beyond_the_devices_are_refused():
    too_many = BACKEND.default_threads() + 1
    reason = BACKEND.check(ProblemSize(10, 2, np.dtype("float32")), too_many)
    assert "devices" in reason and f"got {too_many}" in reason


def test_point_rows_and_matrix_rows_give_the_distance_matrix(tmp_path):
    points = gradi.shapes.cube(30, 3, seed=1)
    D = gradi.distance_matrix(points)
    np.save(tmp_path / "D.npy", D)
    for source in (PointRows(points), MatrixRows(tmp_path / "D.npy")):
        assert source.shape == (30, 30)
        np.testing.assert_allclose(source[7:19], D[7:19], atol=1e-12)
        np.testing.assert_allclose(source[:, 4:9], D[:, 4:9], atol=1e-12)
        source.factor = 0.5
        np.testing.assert_allclose(source[3:5, 2:], 0.5 * D[3:5, 2:], atol=1e-12)


def test_matrix_rows_refuse_what_is_not_distances(tmp_path):
    D = gradi.distance_matrix(gradi.shapes.cube(12, 2, seed=2))
    for name, bad, words in [("nan", np.where(np.eye(12, k=1) > 0, np.nan, D), "finite"),
                             ("negative", D - 2 * np.eye(12, k=1), "non-negative"),
                             ("asymmetric", D + 0.1 * np.eye(12, k=1), "symmetric"),
                             ("diagonal", D + np.eye(12), "zero diagonal")]:
        np.save(tmp_path / f"{name}.npy", bad)
        with pytest.raises(ValueError, match=words):
            gradi.solve(MatrixRows(tmp_path / f"{name}.npy"), 2, backend="jax-sharded", niter=1)
    np.save(tmp_path / "wide.npy", np.zeros((3, 4)))
    with pytest.raises(ValueError, match="square"):
        MatrixRows(tmp_path / "wide.npy")
    with pytest.raises(ValueError, match=".npy"):
        MatrixRows(tmp_path / "D.csv")


def test_row_source_in_one_process_matches_gradi_solve():
    points = gradi.shapes.sphere(60)
    D = gradi.distance_matrix(points)
    X0 = gradi.shapes.random_start(D, 3, seed=4)
    alone = gradi.solve(PointRows(points), 3, backend="jax-sharded", niter=NITER, X0=X0, dtype="float64")
    whole = gradi.solve(D, 3, backend="numpy", niter=NITER, X0=X0, dtype="float64")
    assert alone.lr == pytest.approx(whole.lr, rel=1e-12)
    assert_agrees(alone.X, whole.X, D, "float64")
    assert alone.stress == pytest.approx(whole.stress, rel=1e-9)


def test_row_source_records_without_changing_the_answer():
    source = PointRows(gradi.shapes.spiral(33))
    plain = gradi.solve(source, 2, backend="jax-sharded", niter=40)
    recorded = gradi.solve(source, 2, backend="jax-sharded", niter=40, record_every=7)
    np.testing.assert_array_equal(plain.X, recorded.X)
    assert recorded.history_iterations == [0, 7, 14, 21, 28, 35, 40]
    assert recorded.history_stress[-1] == plain.stress < recorded.history_stress[0]


def test_row_source_reports_divergence_where_gradi_solve_does():
    points = gradi.shapes.circle(8)
    X0 = gradi.shapes.random_start(gradi.distance_matrix(points), 2, seed=1)
    with pytest.raises(gradi.DivergenceError) as whole:
        gradi.solve(gradi.distance_matrix(points), 2, backend="jax", lr=0.5, niter=200, X0=X0, dtype="float64")
    with pytest.raises(gradi.DivergenceError) as rows:
        gradi.solve(PointRows(points), 2, backend="jax-sharded", lr=0.5, niter=200, X0=X0, dtype="float64")
    assert (rows.value.iteration, rows.value.what) == (whole.value.iteration, whole.value.what)


TWO_PROCESS_SCRIPT = """
import sys
import numpy as np
import gradi
from gradi.rows import MatrixRows, PointRows
from gradi.sharded import distributed
from gradi.testing import make_case

distributed.initialize(distributed.from_environment())
out = sys.argv[1]
X0, D, lr = make_case(29, 3, "float64", seed=7)
points = gradi.shapes.cube(29, 3, seed=7)
sources = {"points-float32": PointRows(points),
           "points-float64": PointRows(points),
           "matrix-float32": MatrixRows(out + "/D.npy")}
for name, source in sources.items():
    result = gradi.solve(source, 3, backend="jax-sharded", lr=lr, niter=30, X0=X0, dtype=name.split("-")[1])
    if distributed.process_index() == 0:
        np.save(f"{out}/{name}.npy", result.X)
    else:
        assert gradi.backends.get("jax-sharded").share(29, 1, result.dtype)[0][0] > 0
"""


def test_two_processes_agree_with_the_reference(tmp_path):
    X0, D, lr = make_case(29, 3, "float64", seed=7)
    np.save(tmp_path / "D.npy", D)
    script = tmp_path / "two.py"
    script.write_text(TWO_PROCESS_SCRIPT)
    done = _run([*GRADI, "launch", "-n", "2", "--", sys.executable, str(script), str(tmp_path)])
    assert done.returncode == 0, done.stderr
    expected = reference_descend(X0, D, lr, 30)
    for name in ("points-float32", "points-float64", "matrix-float32"):
        X = np.load(tmp_path / f"{name}.npy")
        assert_agrees(X, expected, D, name.split("-")[1])


def test_launched_solve_prints_and_writes_once_and_matches_one_process(tmp_path):
    D = gradi.distance_matrix(gradi.shapes.sphere(40))
    np.save(tmp_path / "D.npy", D)
    argv = ["solve", "--backend", "jax-sharded", "--distances", str(tmp_path / "D.npy"), "--dim", "3",
            "--niter", "200"]
    two = _run([*GRADI, "launch", "-n", "2", "--", *GRADI, *argv, "--out", str(tmp_path / "two.npy"),
                "--json", str(tmp_path / "two.json")])
    one = _run([*GRADI, *argv, "--out", str(tmp_path / "one.npy")])
    assert two.returncode == 0 and one.returncode == 0, two.stderr + one.stderr
    assert two.stdout.count("final stress") == 1 and "processes=2" in two.stdout
    assert two.stdout.count("wrote") == 2, "only process 0 writes"
    assert json.loads((tmp_path / "two.json").read_text())["processes"] == 2
    assert_agrees(np.load(tmp_path / "two.npy"), np.load(tmp_path / "one.npy"), D, "float32")


def test_dry_run_plans_without_solving():
    done = _run([*GRADI, "solve", "--backend", "jax-sharded", "-n", "500", "--dry-run"])
    assert done.returncode == 0, done.stderr
    assert "passed; nothing was solved" in done.stdout and "final stress" not in done.stdout


def test_row_source_rescales_like_gradi_solve():
    points = gradi.shapes.helix(30) * 2.0**40  # outside KEPT_SCALES: runs rescaled by a power of two
    D = gradi.distance_matrix(points)
    rows = gradi.solve(PointRows(points), 3, backend="jax-sharded", niter=NITER, dtype="float64")
    whole = gradi.solve(D, 3, backend="numpy", niter=NITER, dtype="float64")
    assert rows.lr == pytest.approx(whole.lr, rel=1e-12)
    assert_agrees(rows.X, whole.X, D, "float64")
    assert rows.stress == pytest.approx(whole.stress, rel=1e-9)


def test_row_source_stops_at_the_tolerance_like_gradi_solve():
    points = gradi.shapes.circle(50)
    rows = gradi.solve(PointRows(points), 2, backend="jax-sharded", niter=5000, tol=1e-3, dtype="float64")
    whole = gradi.solve(gradi.distance_matrix(points), 2, backend="jax", niter=5000, tol=1e-3, dtype="float64")
    assert rows.stop_reason == whole.stop_reason == "converged"
    assert abs(rows.iterations - whole.iterations) <= 10  # one check interval


@pytest.mark.parametrize("env, pool, pinned", [({}, 1, True), ({"NPROC": "2"}, 2, False)])
def test_jax_threads_are_what_xla_runs(env, pool, pinned):
    script = textwrap.dedent("""
        import json, os
        import gradi
        from gradi.backends.jax_runtime import runtime
        from gradi.problem import ProblemSize
        from gradi.testing import make_case, run_backend
        X0, D, lr = make_case(50, 2, "float32")
        run_backend("jax", X0.copy(), D, lr, 5)
        names = [open(f"/proc/self/task/{t}/comm").read() for t in os.listdir("/proc/self/task")]
        jax = gradi.backends.get("jax")
        print(json.dumps({"pool": runtime().pool_threads, "pinned": runtime().pinned_by_gradi,
                          "xla_threads": sum(name.startswith("tf_XLAEigen") for name in names),
                          "default": jax.default_threads(), "NPROC": os.environ.get("NPROC"),
                          "refusal": jax.check(ProblemSize(50, 2, "float32"), 1)}))
    """)
    environ = {key: value for key, value in os.environ.items() if key not in ("NPROC", "PJRT_NPROC")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env={**environ, **env})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pool"] == pool and report["pinned"] is pinned and report["default"] == pool
    assert report["NPROC"] == env.get("NPROC"), "gradi must not leave its setting behind"
    if report["xla_threads"] == 0:
        pytest.skip("this XLA names its pool threads differently; the pool size is not visible")
    assert report["xla_threads"] == pool
    assert (report["refusal"] is None) == (pool == 1)


CHANGING = """
import sys
import numpy as np
import gradi
from gradi.cli import main

backend = gradi.backends.get("jax-sharded")
real = type(backend).descend


def descend(state, X, niter, stress=False):
    if not getattr(backend, "changed", False):  # another program changes the file mid-run
        backend.changed = True
        if sys.argv[2] == "truncated":
            with open(sys.argv[1], "r+b") as handle:
                handle.truncate(handle.seek(0, 2) // 2)
        else:
            np.save(sys.argv[1], 2 * np.load(sys.argv[1]))
    return real(backend, state, X, niter, stress)


backend.descend = descend
sys.exit(main(["solve", "--backend", "jax-sharded", "--distances", sys.argv[1], "--niter", "20"]))
"""


@pytest.mark.parametrize("change", ["truncated", "rewritten"])
def test_a_distance_file_changed_during_a_run_is_an_error_not_a_signal(change, tmp_path):
    np.save(tmp_path / "D.npy", gradi.distance_matrix(gradi.shapes.sphere(300)))
    done = _run([sys.executable, "-c", CHANGING, str(tmp_path / "D.npy"), change])
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gradi solve: error: {tmp_path / 'D.npy'} changed while"), lines
    assert "final stress" not in done.stdout
