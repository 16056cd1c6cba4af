"""Mojo backends: agreement with the float64 reference, bit-identical thread counts, safety, builds.

The first run compiles the extension into the cache (GRADI_CACHE_DIR or ~/.cache/gradi).
Fresh processes come from subprocess, never fork: a forked child of a process that has run
Mojo's thread pool hangs on its next parallel call.
"""

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradi.backends
from gradi.backends import mojo_build
from gradi.backends.mojo import SERIAL_BELOW, call_kernel, simd_threads
from gradi.testing import assert_agrees, make_case, reference_descend, run_backend

ROOT = Path(__file__).resolve().parents[1]

def _mojo_installed():
    try:
        importlib.metadata.version("mojo")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _mojo_installed(), reason="the mojo package is not installed")

DTYPES = ("float32", "float64")


@pytest.fixture(scope="module")
def ext():
    """The compiled extension; a failed build fails the tests (Mojo is installed here)."""
    return mojo_build.load_extension()


def descend(name, X0, D, lr, niter, threads=1):
    return run_backend(name, X0.copy(), D, lr, niter, threads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 17, 100])
@pytest.mark.parametrize("dim", [1, 2, 3, 5])
@pytest.mark.parametrize("name,threads", [("mojo", 1), ("mojo-parallel", 2)])
def test_seed_agrees_with_reference(ext, name, threads, n, dim, dtype):
    X0, D, lr = make_case(n, dim, dtype, seed=n + dim)
    X = descend(name, X0, D, lr, 50, threads)
    assert X.dtype == np.dtype(dtype)
    assert_agrees(X, reference_descend(X0, D, lr, 50), D, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 15, 16, 17, 100, 257])
@pytest.mark.parametrize("dim", [1, 2, 3, 4, 5])
def test_simd_agrees_with_reference(ext, n, dim, dtype):
    X0, D, lr = make_case(n, dim, dtype, seed=n + dim)
    X = descend("mojo-simd", X0, D, lr, 50, threads=2)
    assert X.dtype == np.dtype(dtype)
    assert_agrees(X, reference_descend(X0, D, lr, 50), D, dtype)


@pytest.mark.parametrize("name", ["mojo", "mojo-parallel", "mojo-simd"])
@pytest.mark.parametrize("niter", [0, 1, 7])
def test_short_runs_agree(ext, name, niter):
    # Odd and zero step counts: the tuned kernel double-buffers, so parity matters.
    X0, D, lr = make_case(33, 3, "float64", seed=3)
    X = descend(name, X0, D, lr, niter)
    assert_agrees(X, reference_descend(X0, D, lr, niter), D, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [3, 5])
@pytest.mark.parametrize("n", [5, 17, SERIAL_BELOW + 67])
@pytest.mark.parametrize("kernel", ["seed", "simd"])
def test_thread_counts_bit_identical(ext, kernel, n, dim, dtype):
    # Straight to the kernel: mojo-simd itself runs small problems on one thread.
    X0, D, lr = make_case(n, dim, dtype, seed=7)
    results = [call_kernel(kernel, X0.copy(), D, lr, 21, threads) for threads in (1, 2, 3, 8)]
    for X in results[1:]:
        np.testing.assert_array_equal(X, results[0])
    assert not np.array_equal(results[0], X0)


def test_simd_runs_small_problems_on_one_thread():
    assert simd_threads(SERIAL_BELOW - 1, 10**6, 2) == 1
    assert simd_threads(SERIAL_BELOW, 1000, 2) == 2
    assert simd_threads(1000, 1, 8) == 1  # one step of N=1000 is below PARALLEL_MIN_WORK
    assert simd_threads(1000, 5, 8) == 8


def test_solve_runs_the_mojo_backends(ext):
    D = gradi.distance_matrix(np.random.default_rng(0).random((40, 2)))
    results = {name: gradi.solve(D, 2, backend=name, niter=30, dtype="float64").X
               for name in ("numpy", "mojo", "mojo-parallel", "mojo-simd")}
    for name in ("mojo", "mojo-parallel", "mojo-simd"):
        assert_agrees(results[name], results["numpy"], D, "float64")


def _bad_calls():
    X, D, _ = make_case(10, 3, "float32")
    readonly = X.copy()
    readonly.flags.writeable = False
    return {
        "int64 X": (X.astype(np.int64), D.astype(np.int64), 1, 1),
        "float16 X": (X.astype(np.float16), D.astype(np.float16), 1, 1),
        "mixed dtypes": (X, D.astype(np.float64), 1, 1),
        "big-endian": (X.astype(">f4"), D.astype(">f4"), 1, 1),
        "non-contiguous X": (np.ascontiguousarray(np.repeat(X, 2, axis=1))[:, ::2], D, 1, 1),
        "Fortran D": (X.copy(), np.asfortranarray(D), 1, 1),
        "read-only X": (readonly, D, 1, 1),
        "D too small": (X.copy(), D[:5, :5].copy(), 1, 1),
        "1-D X": (X[:, 0].copy(), D, 1, 1),
        "dim 0": (np.zeros((10, 0), np.float32), D, 1, 1),
        "negative niter": (X.copy(), D, -1, 1),
        "zero threads": (X.copy(), D, 1, 0),
        "too many threads": (X.copy(), D, 1, 100_000),
        "too many steps": (X.copy(), D, 2**62, 1),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
@pytest.mark.parametrize("kernel", ["seed", "simd"])
def test_bad_buffers_raise(ext, kernel, case):
    X, D, niter, threads = _bad_calls()[case]
    before = X.copy()
    with pytest.raises((ValueError, TypeError)):
        call_kernel(kernel, X, D, 1e-3, niter, threads)
    with pytest.raises(Exception):  # the extension's own checks, without the Python wrapper
        getattr(ext, kernel)(X, D, 1e-3, niter, threads)
    np.testing.assert_array_equal(X, before)


def test_overlapping_buffers_raise(ext):
    buffer = np.zeros((4, 4))
    with pytest.raises(ValueError, match="overlap"):
        call_kernel("simd", buffer.reshape(-1)[:4].reshape(4, 1), buffer, 1e-3, 1, 1)


def _run(code, **env):
    """Run Python code in a fresh interpreter (subprocess, not fork) with extra environment."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environment, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout


REPORT = """
    import json, numpy as np, gradi
    from gradi.errors import BackendUnavailableError
    reasons = {n: gradi.backends.get(n).unavailable_reason for n in ("mojo", "mojo-parallel", "mojo-simd")}
    D = gradi.distance_matrix(np.random.default_rng(0).random((10, 2)))
    try:
        gradi.solve(D, 2, backend="mojo-simd", niter=5)
        error = None
    except BackendUnavailableError as exc:
        error = str(exc)
    numpy_ok = bool(np.isfinite(gradi.solve(D, 2, backend="numpy", niter=5).X).all())
    print(json.dumps({"reasons": reasons, "error": error, "numpy_ok": numpy_ok}))
"""


def test_missing_compiler_makes_backends_unavailable(tmp_path):
    report = json.loads(_run(REPORT, GRADI_MOJO=str(tmp_path / "no-such-mojo"),
                             GRADI_CACHE_DIR=str(tmp_path / "cache")))
    for reason in report["reasons"].values():
        assert reason and "no-such-mojo" in reason and "\n" not in reason
    assert "mojo-simd" in report["error"] and "unavailable" in report["error"]
    assert report["numpy_ok"]


def test_failing_compiler_reports_its_error_line(tmp_path):
    fake = tmp_path / "mojo"
    fake.write_text(textwrap.dedent("""\
        #!/bin/sh
        if [ "$1" = "--version" ]; then echo "Mojo 0.0 (fake)"; exit 0; fi
        echo "gradi_mojo.mojo:1:1: error: fake compiler refuses" >&2
        exit 1
        """))
    fake.chmod(0o755)
    report = json.loads(_run(REPORT, GRADI_MOJO=str(fake), GRADI_CACHE_DIR=str(tmp_path / "cache")))
    assert report["reasons"]["mojo"] == "mojo build failed: gradi_mojo.mojo:1:1: error: fake compiler refuses"
    assert report["numpy_ok"]
    assert not list((tmp_path / "cache" / "mojo").iterdir())  # no half-built entry left behind


def test_concurrent_calls_finish_and_agree(ext):
    # Python threads call the kernels at once (the GIL is released), so the runtime's pool has
    # fewer threads than the workers asked for; in a subprocess so a hang fails instead of blocking.
    out = _run("""
        import threading, numpy as np
        from gradi.backends.mojo import call_kernel
        from gradi.testing import make_case
        X0, D, lr = make_case(300, 3, "float32")
        expected = {k: call_kernel(k, X0.copy(), D, lr, 30, 1) for k in ("seed", "simd")}
        runs = [("simd", 2), ("seed", 8), ("simd", 8), ("seed", 2), ("simd", 3), ("simd", 2)]
        results = [None] * len(runs)
        def work(i):
            results[i] = call_kernel(runs[i][0], X0.copy(), D, lr, 30, runs[i][1])
        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(runs))]
        for t in threads: t.start()
        for t in threads: t.join()
        print(all(np.array_equal(r, expected[k]) for r, (k, _) in zip(results, runs)))
    """)
    assert out.strip() == "True"


def test_cache_is_reused_and_keyed_by_content(ext, tmp_path):
    library, record = mojo_build.build()
    assert mojo_build.build()[0] == library and library.is_file()
    assert record["compile_seconds"] > 0
    compiler = mojo_build.find_compiler()
    version = mojo_build.compiler_version(compiler)
    for source in mojo_build.source_dir().glob("*.mojo"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    key = mojo_build.build_key(tmp_path, compiler, version)
    assert key == library.parent.name
    with open(tmp_path / "simd_kernel.mojo", "a") as handle:
        handle.write("\n")
    assert mojo_build.build_key(tmp_path, compiler, version) != key


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 CPU levels")
@pytest.mark.parametrize("cpu,lanes", [("x86-64-v3", 8), ("x86-64-v2", 4)])
def test_narrower_simd_builds_agree(tmp_path, cpu, lanes):
    # AVX2 and SSE4 builds (8 and 4 float32 lanes) run here too: nothing may assume 16 lanes.
    out = _run(f"""
        import importlib.util, numpy as np
        from gradi.backends import mojo_build
        from gradi.testing import assert_agrees, make_case, reference_descend
        library, _ = mojo_build.build(target_cpu="{cpu}")
        spec = importlib.util.spec_from_file_location("gradi_mojo", library)
        ext = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ext)
        assert ext.info()["simd_width_float32"] == {lanes}
        for dtype in ("float32", "float64"):
            for n, dim in [(2, 1), (15, 3), (17, 2), (257, 4), (300, 5)]:
                X0, D, lr = make_case(n, dim, dtype, seed=n)
                runs = [ext.simd(X0.copy(), D, lr, 20, threads) for threads in (1, 3)]
                np.testing.assert_array_equal(runs[0], runs[1])
                assert_agrees(runs[0], reference_descend(X0, D, lr, 20), D, dtype)
        print("ok")
    """, GRADI_CACHE_DIR=str(tmp_path))
    assert out.strip() == "ok"


def test_build_command_prints_the_library(ext):
    out = _run("from gradi.backends import mojo_build; mojo_build.main([])")
    assert out.splitlines()[0].endswith("gradi_mojo.so")
    assert "compile seconds" in out and "warm lookup + import seconds" in out


@pytest.mark.parametrize("name", ["mojo", "mojo-parallel", "mojo-simd"])
def test_solve_reports_preparation_separately(ext, name):
    D = gradi.distance_matrix(np.random.default_rng(1).random((20, 3)))
    result = gradi.solve(D, 3, backend=name, niter=5, threads=1 if name == "mojo" else 2)
    assert result.prepare_seconds >= 0 and np.isfinite(result.X).all()
