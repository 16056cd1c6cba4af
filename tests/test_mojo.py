"""Mojo backends: agreement with the float64 reference, bit-identical thread counts and chunks,
the per-solve workspace, the extension's own argument checks, and the build cache.

The first run compiles the extension into the cache (GRADI_CACHE_DIR or ~/.cache/gradi).
Fresh processes come from subprocess, never fork: a forked child of a process that has run
Mojo's thread pool hangs on its next parallel call. Cases that crashed the interpreter before
(look-alike arrays, corrupt cached libraries) run in subprocesses with a timeout.
"""

import gc
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest

import gradi.backends
from gradi.backends import mojo_build
from gradi.backends.mojo import SERIAL_BELOW, simd_threads
from gradi.problem import Problem
from gradi.testing import assert_agrees, make_case, reference_descend, run_backend

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("mojo", "mojo-parallel", "mojo-simd")


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


def simd_call(ext, X0, D, lr, niter, threads, prepared_threads=None):
    """The tuned kernel straight from the extension (which honours ``threads`` exactly)."""
    W = np.empty(ext.simd_workspace_size(len(D), X0.shape[1], prepared_threads or threads, D.itemsize), D.dtype)
    ext.simd_prepare(W, D, X0.shape[1], prepared_threads or threads)
    return ext.simd(W, X0.copy(), lr, niter, threads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 15, 16, 17, 100, 257, 520])
@pytest.mark.parametrize("dim", [1, 2, 3, 4, 5])
def test_simd_agrees_with_reference(ext, n, dim, dtype):
    X0, D, lr = make_case(n, dim, dtype, seed=n + dim)
    X = descend("mojo-simd", X0, D, lr, 50, threads=2)
    assert X.dtype == np.dtype(dtype)
    assert_agrees(X, reference_descend(X0, D, lr, 50), D, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [3, 5])
@pytest.mark.parametrize("n", [5, 17, SERIAL_BELOW + 67])
@pytest.mark.parametrize("kernel", ["seed", "simd"])
def test_thread_counts_bit_identical(ext, kernel, n, dim, dtype):
    # Straight to the kernels: mojo-simd itself runs small problems on one thread.
    X0, D, lr = make_case(n, dim, dtype, seed=7)
    if kernel == "seed":
        results = [ext.seed(X0.copy(), D, lr, 21, threads) for threads in (1, 2, 3, 8)]
    else:
        results = [simd_call(ext, X0, D, lr, 21, threads, prepared_threads=8) for threads in (1, 2, 3, 8)]
    for X in results[1:]:
        np.testing.assert_array_equal(X, results[0])
    assert not np.array_equal(results[0], X0)


@pytest.mark.parametrize("name", NAMES)
def test_solve_with_recording_is_bit_identical(ext, name):
    D = gradi.distance_matrix(np.random.default_rng(2).random((300, 3)))
    threads = 2 if gradi.backends.get(name).parallel else 1
    plain = gradi.solve(D, 3, backend=name, niter=30, threads=threads)
    recorded = gradi.solve(D, 3, backend=name, niter=30, threads=threads, record_every=4)
    np.testing.assert_array_equal(plain.X, recorded.X)
    assert recorded.history_iterations == [0, 4, 8, 12, 16, 20, 24, 28, 30]


def test_simd_runs_small_problems_on_one_thread():
    assert simd_threads(SERIAL_BELOW - 1, 10**6, 2) == 1
    assert simd_threads(SERIAL_BELOW, 1000, 2) == 2
    assert simd_threads(1000, 1, 8) == 1  # one step of N=1000 is below PARALLEL_MIN_WORK
    assert simd_threads(1000, 5, 8) == 8


def test_solve_runs_the_mojo_backends(ext):
    D = gradi.distance_matrix(np.random.default_rng(0).random((40, 2)))
    results = {name: gradi.solve(D, 2, backend=name, niter=30, dtype="float64").X
               for name in ("numpy",) + NAMES}
    for name in NAMES:
        assert_agrees(results[name], results["numpy"], D, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,dim,threads", [(1, 1, 1), (10, 3, 2), (129, 2, 8), (300, 5, 3), (1000, 7, 2)])
def test_workspace_is_what_working_bytes_estimates(ext, n, dim, threads, dtype):
    itemsize = np.dtype(dtype).itemsize
    elements = ext.simd_workspace_size(n, dim, threads, itemsize)
    assert elements * itemsize == gradi.backends.get("mojo-simd").working_bytes(n, dim, itemsize, threads)


def test_state_owns_the_workspace_and_close_releases_it(ext):
    X0, D, lr = make_case(300, 3, "float32")
    backend = gradi.backends.get("mojo-simd")
    state = backend.prepare(Problem(D=D, X0=X0, lr=lr, niter=5), 2)
    workspace = weakref.ref(state.data.workspace)
    assert workspace().nbytes == backend.working_bytes(300, 3, 4, 2)
    backend.descend(state, X0.copy(), 2)
    state.close()
    gc.collect()
    assert workspace() is None
    with pytest.raises(ValueError, match="closed"):
        backend.descend(state, X0.copy(), 1)


# Hostile calls straight to the extension: each must raise TypeError or ValueError (never a
# bare Exception, never a crash). Run in a subprocess so a crash fails the test, not pytest.
HOSTILE = """
    import json, numpy as np
    from gradi.backends import mojo_build
    ext = mojo_build.load_extension()

    class Liar(np.ndarray):
        @property
        def shape(self):
            return (100000, 100000)

    class Duck:
        ndim = 2
        shape = (10, 3)
        dtype = np.dtype("float32")
        class flags:
            c_contiguous = True
            writeable = True
        class ctypes:
            data = 8
        __array_interface__ = {"data": (8, False), "shape": (10, 3), "typestr": "<f4", "version": 3}

    X = np.zeros((10, 3), np.float32)
    D = np.ones((10, 10), np.float32)
    readonly = X.copy()
    readonly.flags.writeable = False
    shared = np.zeros(200, np.float32)
    W = np.empty(ext.simd_workspace_size(10, 3, 2, 4), np.float32)
    ext.simd_prepare(W, D, 3, 2)
    calls = {
        "duck X": ("seed", Duck(), D, 1e-3, 1, 1),
        "duck D": ("seed", X.copy(), Duck(), 1e-3, 1, 1),
        "lying D subclass": ("seed", X.copy(), np.ones((3, 3), np.float32).view(Liar), 1e-3, 1, 1),
        "lying X subclass": ("seed", np.zeros((3, 3), np.float32).view(Liar), D, 1e-3, 1, 1),
        "list X": ("seed", X.tolist(), D, 1e-3, 1, 1),
        "int64": ("seed", X.astype(np.int64), D.astype(np.int64), 1e-3, 1, 1),
        "float16": ("seed", X.astype(np.float16), D.astype(np.float16), 1e-3, 1, 1),
        "mixed dtypes": ("seed", X.copy(), D.astype(np.float64), 1e-3, 1, 1),
        "big-endian": ("seed", X.astype(">f4"), D.astype(">f4"), 1e-3, 1, 1),
        "non-contiguous X": ("seed", np.zeros((10, 6), np.float32)[:, ::2], D, 1e-3, 1, 1),
        "Fortran D": ("seed", X.copy(), np.asfortranarray(D + np.arange(10, dtype=np.float32)), 1e-3, 1, 1),
        "read-only X": ("seed", readonly, D, 1e-3, 1, 1),
        "D too small": ("seed", X.copy(), D[:5, :5].copy(), 1e-3, 1, 1),
        "1-D X": ("seed", X[:, 0].copy(), D, 1e-3, 1, 1),
        "3-D X": ("seed", X.reshape(10, 3, 1).copy(), D, 1e-3, 1, 1),
        "dim 0": ("seed", np.zeros((10, 0), np.float32), D, 1e-3, 1, 1),
        "X inside D": ("seed", shared[:30].reshape(10, 3), shared[20:120].reshape(10, 10), 1e-3, 1, 1),
        "lr nan": ("seed", X.copy(), D, float("nan"), 1, 1),
        "lr inf": ("seed", X.copy(), D, float("inf"), 1, 1),
        "lr text": ("seed", X.copy(), D, "0.1", 1, 1),
        "niter float": ("seed", X.copy(), D, 1e-3, 1.0, 1),
        "niter bool": ("seed", X.copy(), D, 1e-3, True, 1),
        "negative niter": ("seed", X.copy(), D, 1e-3, -1, 1),
        "too many steps": ("seed", X.copy(), D, 1e-3, 2**62, 1),
        "huge niter": ("seed", X.copy(), D, 1e-3, 2**80, 1),
        "zero threads": ("seed", X.copy(), D, 1e-3, 1, 0),
        "threads bool": ("seed", X.copy(), D, 1e-3, 1, True),
        "too many threads": ("seed", X.copy(), D, 1e-3, 1, 100_000),
        "four arguments": ("seed", X.copy(), D, 1e-3, 1),
        "simd duck W": ("simd", Duck(), X.copy(), 1e-3, 1, 1),
        "simd W too small": ("simd", W[:100], X.copy(), 1e-3, 1, 1),
        "simd W for fewer threads": ("simd", W, np.zeros((10, 6), np.float32), 1e-3, 1, 3),
        "simd W other dtype": ("simd", W.astype(np.float64), X.copy(), 1e-3, 1, 1),
        "simd W 2-D": ("simd", W[:W.size // 2 * 2].reshape(2, -1), X.copy(), 1e-3, 1, 1),
        "simd X inside W": ("simd", W, W[:30].reshape(10, 3), 1e-3, 1, 1),
        "simd lying X": ("simd", W, np.zeros((3, 3), np.float32).view(Liar), 1e-3, 1, 1),
        "simd read-only W": ("simd", np.frombuffer(W.tobytes(), np.float32), X.copy(), 1e-3, 1, 1),
        "simd lr inf": ("simd", W, X.copy(), float("inf"), 1, 1),
        "prepare duck D": ("simd_prepare", W, Duck(), 3, 1),
        "prepare lying D": ("simd_prepare", W.copy(), np.ones((3, 3), np.float32).view(Liar), 3, 1),
        "simd unprepared W": ("simd", np.zeros_like(W), X.copy(), 1e-3, 1, 1),
        "prepare D not square": ("simd_prepare", W, np.ones((10, 9), np.float32), 3, 1),
        "prepare W too small": ("simd_prepare", W[:10], D, 3, 1),
        "prepare dim 0": ("simd_prepare", W, D, 0, 1),
        "prepare D inside W": ("simd_prepare", W, W[:100].reshape(10, 10), 3, 1),
        "size: dim float": ("simd_workspace_size", 10, 3.0, 1, 4),
        "size: itemsize 2": ("simd_workspace_size", 10, 3, 1, 2),
        "size: overflowing": ("simd_workspace_size", 2**31, 2**19, 1024, 8),
    }
    out = {}
    for name, (entry, *args) in calls.items():
        try:
            getattr(ext, entry)(*args)
            out[name] = "no error"
        except Exception as exc:
            out[name] = type(exc).__name__ + ": " + str(exc)
    print(json.dumps(out))
"""


def _run(code, timeout=180, **env):
    """Run Python code in a fresh interpreter (subprocess, not fork) with extra environment."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environment, timeout=timeout)


def _run_ok(code, **env):
    done = _run(code, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_extension_raises_on_every_hostile_call(ext):
    results = json.loads(_run_ok(HOSTILE))
    # A subclass whose `shape` lies is read through its real buffer: a valid 3 x 3 D is prepared.
    assert results.pop("prepare lying D") == "no error"
    failed = {name: result for name, result in results.items()
              if not result.startswith(("TypeError: ", "ValueError: "))}
    assert not failed, failed
    assert results["duck X"].startswith("TypeError: X must be a numpy.ndarray")
    assert "shape (3, 3)" in results["lying D subclass"]  # the buffer's shape, not the property's
    assert results["X inside D"] == "ValueError: X and D must not share memory"
    assert results["lr nan"] == "ValueError: lr must be finite, got nan"


def test_bad_calls_leave_the_arrays_alone(ext):
    X0, D, _ = make_case(10, 3, "float32")
    X = X0.copy()
    with pytest.raises(ValueError):
        ext.seed(X, D, float("inf"), 5, 1)
    with pytest.raises(TypeError):
        ext.seed(X, D.astype(np.float64), 1e-3, 5, 1)
    np.testing.assert_array_equal(X, X0)


@pytest.mark.parametrize("name", NAMES)
def test_descend_raises_for_a_lying_subclass_through_the_backend(ext, name):
    class Liar(np.ndarray):
        @property
        def shape(self):
            return (10**5, 3)

    X0, D, lr = make_case(10, 3, "float32")
    backend = gradi.backends.get(name)
    with backend.prepare(Problem(D=D, X0=X0, lr=lr, niter=1), 1) as state:
        with pytest.raises(ValueError, match="D must be N x N|prepared for"):
            backend.descend(state, np.zeros((200, 3), np.float32).view(Liar), 1)


REPORT = """
    import json, sys, numpy as np, gradi
    from gradi.errors import BackendUnavailableError
    names = ("mojo", "mojo-parallel", "mojo-simd")
    before = {n: gradi.backends.get(n).unavailable_reason for n in names}
    D = gradi.distance_matrix(np.random.default_rng(0).random((10, 2)))
    try:
        result = gradi.solve(D, 2, backend="mojo-simd", niter=5)
        error, prepare = None, result.prepare_seconds
    except BackendUnavailableError as exc:
        error, prepare = str(exc), None
    after = {n: gradi.backends.get(n).unavailable_reason for n in names}
    numpy_ok = bool(np.isfinite(gradi.solve(D, 2, backend="numpy", niter=5).X).all())
    print(json.dumps({"before": before, "after": after, "error": error, "prepare": prepare,
                      "numpy_ok": numpy_ok}))
"""


def _fake_compiler(path, body):
    """A shell script standing in for ``mojo``: prints the real version, then runs ``body``
    for ``build`` (arguments: build SOURCE --emit shared-lib -o OUT ...)."""
    version = mojo_build.compiler_version(mojo_build.find_compiler())
    path.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        if [ "$1" = "--version" ]; then echo "{version}"; echo x >> "{path}.versions"; exit 0; fi
        """) + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def _copying_compiler(tmp_path, library, delay=0):
    """A fake compiler whose build copies the real, already built library (after ``delay`` s)."""
    return _fake_compiler(tmp_path / "mojo", f"""\
        sleep {delay}
        cp "{library}" "$6"
        """)


def test_missing_compiler_makes_backends_unavailable(tmp_path):
    report = json.loads(_run_ok(REPORT, GRADI_MOJO=str(tmp_path / "no-such-mojo"),
                                GRADI_CACHE_DIR=str(tmp_path / "cache")))
    for reason in report["before"].values():
        assert reason and "no-such-mojo" in reason and "\n" not in reason
    assert "mojo-simd" in report["error"] and "unavailable" in report["error"]
    assert report["numpy_ok"]


def test_failing_compiler_fails_in_prepare_with_its_error_line(tmp_path):
    fake = _fake_compiler(tmp_path / "mojo", """\
        echo "gradi_mojo.mojo:1:1: error: fake compiler refuses" >&2
        exit 1
        """)
    report = json.loads(_run_ok(REPORT, GRADI_MOJO=str(fake), GRADI_CACHE_DIR=str(tmp_path / "cache")))
    line = "mojo build failed: gradi_mojo.mojo:1:1: error: fake compiler refuses"
    assert report["before"] == {name: None for name in NAMES}  # checking never compiles
    assert report["error"] == f"backend 'mojo-simd' is unavailable: {line}"
    assert report["after"] == {name: line for name in NAMES}
    assert report["numpy_ok"]
    assert not [p for p in (tmp_path / "cache" / "mojo").iterdir() if p.is_dir()]  # nothing half-built


def test_prepare_seconds_include_the_compile(ext, tmp_path):
    library, _ = mojo_build.build()
    fake = _copying_compiler(tmp_path, library, delay=1.5)
    report = json.loads(_run_ok(REPORT, GRADI_MOJO=str(fake), GRADI_CACHE_DIR=str(tmp_path / "cache")))
    assert report["error"] is None
    assert report["prepare"] >= 1.5


def _cached_copy(tmp_path, library):
    """A cache (GRADI_CACHE_DIR) holding a verified build of a copying fake compiler; its folder."""
    fake = _copying_compiler(tmp_path, library)
    environment = dict(GRADI_MOJO=str(fake), GRADI_CACHE_DIR=str(tmp_path / "cache"))
    out = _run_ok("from gradi.backends import mojo_build; print(mojo_build.build()[0])", **environment)
    return Path(out.strip()).parent, environment


LOAD_AND_RUN = """
    import numpy as np, gradi
    D = gradi.distance_matrix(np.random.default_rng(0).random((30, 2)))
    print(gradi.backends.get("mojo-simd").status())
    print(np.isfinite(gradi.solve(D, 2, backend="mojo-simd", niter=5).X).all())
    print(gradi.backends.get("mojo-simd").status())
"""


@pytest.mark.parametrize("damage", ["truncated library", "flipped byte", "corrupt build.json",
                                    "missing build.json", "missing library"])
def test_damaged_cache_entry_is_rebuilt_not_loaded(ext, tmp_path, damage):
    library, _ = mojo_build.build()
    folder, environment = _cached_copy(tmp_path, library)
    cached = folder / library.name
    if damage == "truncated library":
        cached.write_bytes(cached.read_bytes()[:4096])
    elif damage == "flipped byte":
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0xFF
        cached.write_bytes(bytes(data))
    elif damage == "corrupt build.json":
        (folder / "build.json").write_text("{not json")
    elif damage == "missing build.json":
        (folder / "build.json").unlink()
    else:
        cached.unlink()
    done = _run(LOAD_AND_RUN, timeout=120, **environment)
    assert done.returncode == 0, done.stderr  # a SIGBUS would show as -7
    first, ok, last = done.stdout.split("\n")[:3]
    assert first.startswith("rebuilds on first use (") and ok == "True" and last == "available"
    assert "unusable" in done.stderr and "rebuilding it" in done.stderr
    assert mojo_build._sha256(cached) == mojo_build._sha256(library)


def test_status_is_cheap_and_says_what_first_use_will_do(ext, tmp_path):
    library, _ = mojo_build.build()
    fake = _copying_compiler(tmp_path, library)
    environment = dict(GRADI_MOJO=str(fake), GRADI_CACHE_DIR=str(tmp_path / "cache"))
    listing = """
        import sys, gradi
        print(gradi.backends.get("mojo-simd").status())
        print("gradi_mojo" in sys.modules)
    """
    assert _run_ok(listing, **environment).split() == ["builds", "on", "first", "use", "False"]
    assert _run_ok(listing, **environment).split()[:4] == ["builds", "on", "first", "use"]
    versions = Path(f"{fake}.versions")
    assert versions.read_text().count("x") == 1  # the compiler's version is asked once, then cached
    _run_ok(LOAD_AND_RUN, **environment)
    assert _run_ok(listing, **environment).split() == ["available", "False"]
    assert versions.read_text().count("x") == 1
    assert not [p for p in (tmp_path / "cache" / "mojo").iterdir() if p.name.startswith("build-")]


def test_target_cpu_selects_another_build(ext, monkeypatch):
    host_folder = mojo_build.entry_folder(None)
    monkeypatch.setenv(mojo_build.TARGET_ENV, "x86-64-v2")
    if platform.machine() != "x86_64":
        with pytest.raises(mojo_build.MojoUnavailable):
            mojo_build.env_target_cpu()
        return
    assert mojo_build.entry_folder(mojo_build.env_target_cpu()) != host_folder
    monkeypatch.setenv(mojo_build.TARGET_ENV, "pentium-pro")
    with pytest.raises(mojo_build.MojoUnavailable, match="not an x86-64 level"):
        mojo_build.env_target_cpu()


def test_unknown_target_cpu_makes_backends_unavailable(tmp_path):
    report = json.loads(_run_ok(REPORT, GRADI_MOJO_TARGET_CPU="x86-64-v9",
                                GRADI_CACHE_DIR=str(tmp_path / "cache")))
    assert all("GRADI_MOJO_TARGET_CPU=x86-64-v9" in reason for reason in report["before"].values())
    assert report["numpy_ok"]


def test_concurrent_calls_finish_and_agree(ext):
    # Python threads call the kernels at once (the GIL is released), so the runtime's pool has
    # fewer threads than the workers asked for; in a subprocess so a hang fails instead of blocking.
    out = _run_ok("""
        import threading, numpy as np
        from gradi.backends import mojo_build
        from gradi.testing import make_case
        ext = mojo_build.load_extension()
        X0, D, lr = make_case(300, 3, "float32")
        def simd(X, threads):
            W = np.empty(ext.simd_workspace_size(300, 3, threads, 4), np.float32)
            ext.simd_prepare(W, D, 3, threads)
            return ext.simd(W, X, lr, 30, threads)
        run = {"seed": lambda X, t: ext.seed(X, D, lr, 30, t), "simd": simd}
        expected = {k: run[k](X0.copy(), 1) for k in run}
        runs = [("simd", 2), ("seed", 8), ("simd", 8), ("seed", 2), ("simd", 3), ("simd", 2)]
        results = [None] * len(runs)
        def work(i):
            results[i] = run[runs[i][0]](X0.copy(), runs[i][1])
        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(runs))]
        for t in threads: t.start()
        for t in threads: t.join()
        print(all(np.array_equal(r, expected[k]) for r, (k, _) in zip(results, runs)))
    """)
    assert out.strip() == "True"


def test_one_workspace_serves_one_call_at_a_time(ext):
    # A long call in one thread; meanwhile calls on the same workspace are refused, not mixed in.
    out = _run_ok("""
        import threading, numpy as np
        from gradi.backends import mojo_build
        from gradi.testing import make_case
        ext = mojo_build.load_extension()
        X0, D, lr = make_case(1000, 3, "float32")
        W = np.empty(ext.simd_workspace_size(1000, 3, 1, 4), np.float32)
        ext.simd_prepare(W, D, 3, 1)
        expected = ext.simd(W, X0.copy(), lr, 2000, 1)
        long_run = X0.copy()
        def long_call():
            while True:  # until it has the workspace (a short call may hold it at first)
                try:
                    return ext.simd(W, long_run, lr, 2000, 1)
                except ValueError:
                    pass
        worker = threading.Thread(target=long_call)
        worker.start()
        refused = []
        while worker.is_alive():
            try:
                ext.simd(W, X0.copy(), lr, 1, 1)
            except ValueError as exc:
                refused.append(str(exc))
        worker.join()
        print(np.array_equal(long_run, expected), len(refused) > 0, set(refused))
    """)
    assert out.startswith("True True {'W is in use by another call")


def test_cache_is_reused_and_keyed_by_content(ext, tmp_path):
    library, record = mojo_build.build()
    assert mojo_build.build()[0] == library and library.is_file()
    assert record["compile_seconds"] > 0 and record["library_bytes"] == library.stat().st_size
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
@pytest.mark.parametrize("cpu,lanes", [("x86-64-v4", 16), ("x86-64-v3", 8), ("x86-64-v2", 4)])
def test_cpu_level_builds_agree(cpu, lanes):
    # The AVX-512, AVX2 and SSE4 code paths (16, 8 and 4 float32 lanes), each where this CPU runs
    # it: each agrees with the reference and gives bit-identical results on 1 and 3 threads.
    try:
        mojo_build.check_target(cpu)
    except mojo_build.MojoUnavailable as exc:
        pytest.skip(str(exc))
    out = _run_ok(f"""
        import numpy as np
        from gradi.backends import mojo_build
        from gradi.testing import assert_agrees, make_case, reference_descend
        ext = mojo_build.load_extension()
        assert ext.info()["simd_width_float32"] == {lanes}
        for dtype in ("float32", "float64"):
            for n, dim in [(2, 1), (15, 3), (17, 2), (257, 4), (300, 5), (600, 3)]:
                X0, D, lr = make_case(n, dim, dtype, seed=n)
                W = np.empty(ext.simd_workspace_size(n, dim, 3, X0.itemsize), dtype)
                ext.simd_prepare(W, D, dim, 3)
                runs = [ext.simd(W, X0.copy(), lr, 20, threads) for threads in (1, 3)]
                np.testing.assert_array_equal(runs[0], runs[1])
                assert_agrees(runs[0], reference_descend(X0, D, lr, 20), D, dtype)
        print("ok")
    """, GRADI_MOJO_TARGET_CPU=cpu)
    assert out.strip() == "ok"


def test_build_command_prints_the_library(ext):
    out = _run_ok("from gradi.backends import mojo_build; mojo_build.main([])")
    assert out.splitlines()[0].endswith("gradi_mojo.so")
    assert "compile seconds" in out and "warm lookup + import seconds" in out
