"""The C++ seed backends (cpp, cpp-parallel) and the extension's own defences (issue 3)."""

import threading
import time

import numpy as np
import pytest

native = pytest.importorskip("gradi._native", reason="C++ extension gradi._native not built (pip install .)")

from gradi.backends import cpp  # noqa: E402
from gradi.testing import assert_agrees, make_case, reference_descend, run_backend  # noqa: E402

NITER = 50
BACKENDS = {backend.name: backend for backend in cpp.BACKENDS}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [2, 17, 100])
@pytest.mark.parametrize("dim", [1, 2, 3, 5])
@pytest.mark.parametrize("name", ["cpp", "cpp-parallel"])
def test_agrees_with_reference(name, n, dim, dtype):
    X0, D, lr = make_case(n, dim, dtype)
    backend = BACKENDS[name]
    X = X0.copy()
    result = run_backend(backend, X, D, lr, NITER, 2 if backend.parallel else 1)
    assert result is X and result.dtype == np.dtype(dtype)
    assert_agrees(X, reference_descend(X0, D, lr, NITER), D, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parallel_is_bit_identical_for_any_thread_count(dtype):
    X0, D, lr = make_case(100, 3, dtype)
    results = {}
    for threads in (1, 2, 3, 8):
        X = X0.copy()
        native.descend_parallel(X, D, lr, NITER, threads)
        assert native.last_thread_count() == threads
        results[threads] = X
    for threads, X in results.items():
        np.testing.assert_array_equal(X, results[1], err_msg=f"threads={threads}")
    serial = X0.copy()
    native.descend(serial, D, lr, NITER)
    assert native.last_thread_count() == 1
    np.testing.assert_array_equal(serial, results[1])


def test_niter_zero_leaves_x_unchanged():
    X0, D, lr = make_case(10, 2, "float32")
    X = X0.copy()
    native.descend_parallel(X, D, lr, 0, 2)
    np.testing.assert_array_equal(X, X0)
    assert native.last_thread_count() == 0


def _bad_calls():
    """(label, X, D, niter, threads, exception) for buffers and scalars the extension must refuse."""
    X, D, _ = make_case(6, 2, "float64")
    readonly = X.copy()
    readonly.flags.writeable = False
    return [
        ("X not an array", X.tolist(), D, 1, 1, TypeError),
        ("D not an array", X, D.tolist(), 1, 1, TypeError),
        ("integer X", X.astype(np.int64), D, 1, 1, TypeError),
        ("float16 X", X.astype(np.float16), D.astype(np.float16), 1, 1, TypeError),
        ("mixed dtypes", X, D.astype(np.float32), 1, 1, TypeError),
        ("byte-swapped X", X.astype(">f8"), D.astype(">f8"), 1, 1, TypeError),
        ("1-D X", X[:, 0].copy(), D, 1, 1, ValueError),
        ("3-D X", X[:, :, None].copy(), D, 1, 1, ValueError),
        ("no columns", np.zeros((6, 0)), D, 1, 1, ValueError),
        ("D too small", X, D[:5, :5].copy(), 1, 1, ValueError),
        ("D not square", X, D[:, :5].copy(), 1, 1, ValueError),
        ("X not contiguous", np.asfortranarray(X), D, 1, 1, ValueError),
        ("X strided", np.zeros((6, 4))[:, ::2], D, 1, 1, ValueError),
        ("D not contiguous", X, D[:, ::-1], 1, 1, ValueError),
        ("X read-only", readonly, D, 1, 1, ValueError),
        ("X inside D", D.reshape(-1)[:12].reshape(6, 2), D, 1, 1, ValueError),
        ("negative niter", X, D, -1, 1, ValueError),
        ("zero threads", X, D, 1, 0, ValueError),
        ("too many threads", X, D, 1, 100_000, ValueError),
    ]


ENTRY_POINTS = {
    "descend": lambda X, D, lr, niter, threads: native.descend(X, D, lr, niter),
    "descend_parallel": native.descend_parallel,
    "descend_simd": native.descend_simd,
}


@pytest.mark.parametrize("entry, case", [
    (entry, case) for entry in ENTRY_POINTS for case in _bad_calls()
    if entry != "descend" or case[4] == 1  # descend takes no thread count
], ids=lambda value: value if isinstance(value, str) else value[0])
def test_direct_calls_with_bad_arguments_raise(entry, case):
    _, X, D, niter, threads, error = case
    before = np.array(X, copy=True) if isinstance(X, np.ndarray) else None
    with pytest.raises(error):
        ENTRY_POINTS[entry](X, D, 1e-3, niter, threads)
    if before is not None:
        np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_direct_calls_refuse_non_finite_lr(entry):
    X, D, _ = make_case(6, 2, "float64")
    with pytest.raises(ValueError, match="lr"):
        ENTRY_POINTS[entry](X, D, float("nan"), 1, 1)


def test_read_only_d_is_accepted():
    X0, D, lr = make_case(17, 2, "float64")
    D.flags.writeable = False
    X = X0.copy()
    native.descend(X, D, lr, NITER)
    assert_agrees(X, reference_descend(X0, D, lr, NITER), D, "float64")


def test_gil_is_released_while_the_kernel_runs():
    """A Python thread keeps ticking during a C++ call of a few tenths of a second."""
    X, D, lr = make_case(400, 3, "float64")
    ticks, stop = [], threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.002)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        time.sleep(0.01)
        start = time.perf_counter()
        native.descend(X, D, lr, 800)
        end = time.perf_counter()
    finally:
        stop.set()
        ticker.join()
    margin = 0.2 * (end - start)
    inside = [t for t in ticks if start + margin < t < end - margin]
    assert end - start > 0.05, "the call was too short to tell"
    assert len(inside) >= 2, f"{len(inside)} ticks during a {end - start:.2f} s call: GIL held?"


def test_parallel_backends_need_openmp(monkeypatch):
    class WithoutOpenMP:
        @staticmethod
        def has_openmp():
            return False

    monkeypatch.setattr(cpp, "_native", lambda: WithoutOpenMP)
    with pytest.raises(ImportError, match="built without OpenMP"):
        cpp.CppParallel().load()
    cpp.Cpp().load()


def test_missing_extension_is_reported(monkeypatch):
    def fail(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(cpp.importlib, "import_module", fail)
    assert cpp.Cpp().unavailable_reason.startswith("C++ extension not built: No module named")


def test_working_bytes():
    assert BACKENDS["cpp"].working_bytes(1000, 3, 4, 1) == 12_000
    assert BACKENDS["cpp-simd"].working_bytes(1000, 3, 4, 2) == (1000 * 1008 + 6 * 1008) * 4
    assert BACKENDS["cpp-simd"].working_bytes(4000, 3, 4, 2) == 31 * (2 << 20) + 6 * 4000 * 4  # huge pages
