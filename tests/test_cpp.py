"""The C++ seed backends (cpp, cpp-parallel) and the extension's own defences (issues 3 and 19)."""

import threading
import time

import numpy as np
import pytest

native = pytest.importorskip("gradi._native", reason="C++ extension gradi._native not built (pip install .)")

from gradi.backends import cpp  # noqa: E402
from gradi.problem import Problem  # noqa: E402
from gradi.testing import assert_agrees, make_case, reference_descend  # noqa: E402
from gradi.validation import MAX_THREADS  # noqa: E402

NITER = 50
BACKENDS = {backend.name: backend for backend in cpp.BACKENDS}


def test_niter_zero_leaves_x_unchanged():
    X0, D, lr = make_case(10, 2, "float32")
    state = native.SeedState(D, 2, lr, 2)
    X = X0.copy()
    state.descend(X, 0)
    np.testing.assert_array_equal(X, X0)
    assert state.threads_used == 0


STATES = {
    "SeedState": lambda D, dim, lr, threads: native.SeedState(D, dim, lr, threads),
    "SimdState": lambda D, dim, lr, threads: native.SimdState(D, dim, lr, threads),
}


def _bad_states():
    """(label, D, dim, lr, threads, exception): constructions the extension must refuse."""
    _, D, _ = make_case(6, 2, "float64")
    return [
        ("D not an array", D.tolist(), 2, 1e-3, 1, TypeError),
        ("integer D", D.astype(np.int64), 2, 1e-3, 1, TypeError),
        ("float16 D", D.astype(np.float16), 2, 1e-3, 1, TypeError),
        ("byte-swapped D", D.astype(">f8"), 2, 1e-3, 1, TypeError),
        ("1-D D", D[0].copy(), 2, 1e-3, 1, ValueError),
        ("D not square", D[:, :5].copy(), 2, 1e-3, 1, ValueError),
        ("D not contiguous", D[:, ::-1], 2, 1e-3, 1, ValueError),
        ("zero dim", D, 0, 1e-3, 1, ValueError),
        ("nan lr", D, 2, float("nan"), 1, ValueError),
        ("inf lr", D, 2, float("inf"), 1, ValueError),
        ("zero threads", D, 2, 1e-3, 0, ValueError),
        ("too many threads", D, 2, 1e-3, 100_000, ValueError),
    ]


@pytest.mark.parametrize("kind, case", [(kind, case) for kind in STATES for case in _bad_states()],
                         ids=lambda value: value if isinstance(value, str) else value[0])
def test_bad_states_are_refused(kind, case):
    _, D, dim, lr, threads, error = case
    with pytest.raises(error):
        STATES[kind](D, dim, lr, threads)


def _bad_positions():
    """(label, X, D, niter, exception) for descend calls the extension must refuse."""
    X, D, _ = make_case(6, 2, "float64")
    readonly = X.copy()
    readonly.flags.writeable = False
    return [
        ("X not an array", X.tolist(), D, 1, TypeError),
        ("integer X", X.astype(np.int64), D, 1, TypeError),
        ("X of another dtype than D", X.astype(np.float32), D, 1, TypeError),
        ("byte-swapped X", X.astype(">f8"), D, 1, TypeError),
        ("1-D X", X[:, 0].copy(), D, 1, ValueError),
        ("3-D X", X[:, :, None].copy(), D, 1, ValueError),
        ("X too short", X[:5].copy(), D, 1, ValueError),
        ("X of another dim", np.zeros((6, 3)), D, 1, ValueError),
        ("X not contiguous", np.asfortranarray(X), D, 1, ValueError),
        ("X strided", np.zeros((6, 4))[:, ::2], D, 1, ValueError),
        ("X read-only", readonly, D, 1, ValueError),
        ("negative niter", X, D, -1, ValueError),
    ]


@pytest.mark.parametrize("kind, case", [(kind, case) for kind in STATES for case in _bad_positions()],
                         ids=lambda value: value if isinstance(value, str) else value[0])
def test_bad_positions_are_refused_and_left_alone(kind, case):
    _, X, D, niter, error = case
    state = STATES[kind](D, 2, 1e-3, 1)
    before = np.array(X, copy=True) if isinstance(X, np.ndarray) else None
    with pytest.raises(error):
        state.descend(X, niter)
    if before is not None:
        np.testing.assert_array_equal(X, before)


def test_seed_state_refuses_x_inside_the_d_it_reads():
    _, D, lr = make_case(6, 2, "float64")
    state = native.SeedState(D, 2, lr, 1)
    with pytest.raises(ValueError, match="share memory"):
        state.descend(D.reshape(-1)[:12].reshape(6, 2), 1)


@pytest.mark.parametrize("kind", list(STATES))
def test_closed_state_refuses_and_close_is_idempotent(kind):
    X, D, lr = make_case(6, 2, "float64")
    state = STATES[kind](D, 2, lr, 1)
    state.close()
    state.close()
    assert state.closed
    with pytest.raises(ValueError, match="closed"):
        state.descend(X, 1)


@pytest.mark.parametrize("kind, n, niter", [("SeedState", 300, 1500), ("SimdState", 1000, 3000)])
def test_a_state_in_use_refuses_a_second_thread(kind, n, niter):
    """While one thread runs a state (about half a second), another thread's close() raises."""
    X0, D, lr = make_case(n, 3, "float32")
    for _ in range(5):  # retried: the worker may not have entered the call before close() ran
        state = STATES[kind](D, 3, lr, 1)
        started, outcome = threading.Event(), {}

        def work(state=state, started=started, outcome=outcome):
            started.set()
            try:
                state.descend(X0.copy(), niter)
            except ValueError as exc:
                outcome["worker"] = exc

        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        time.sleep(0.05)
        try:
            state.close()
        except RuntimeError as exc:
            outcome["close"] = exc
        worker.join()
        if "close" in outcome:
            assert "in use" in str(outcome["close"]) and "worker" not in outcome
            return
    pytest.fail("the worker never held the state when close() ran")


def test_the_thread_bound_is_gradis_and_enforced_at_it():
    assert native.max_threads() == MAX_THREADS
    X0, D, lr = make_case(20, 2, "float64")
    for make in (native.SeedState, native.SimdState):
        with pytest.raises(ValueError, match=f"threads must be <= {MAX_THREADS}, got {MAX_THREADS + 1}"):
            make(D, 2, lr, MAX_THREADS + 1)


def test_read_only_d_is_accepted():
    X0, D, lr = make_case(17, 2, "float64")
    D.flags.writeable = False
    X = X0.copy()
    native.SeedState(D, 2, lr, 1).descend(X, NITER)
    assert_agrees(X, reference_descend(X0, D, lr, NITER), D, "float64")


def test_seed_state_keeps_d_alive():
    X0, D, lr = make_case(17, 2, "float64")
    expected = X0.copy()
    native.SeedState(D, 2, lr, 1).descend(expected, NITER)
    state = native.SeedState(D.copy(), 2, lr, 1)  # the only reference to this D is the state's
    X = X0.copy()
    state.descend(X, NITER)
    np.testing.assert_array_equal(X, expected)


def test_gil_is_released_while_the_kernel_runs():
    """A Python thread keeps ticking during a C++ call of a few tenths of a second."""
    X, D, lr = make_case(400, 3, "float64")
    state = native.SeedState(D, 3, lr, 1)
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
        state.descend(X, 800)
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


def test_state_is_released_by_close():
    X0, D, lr = make_case(50, 2, "float32")
    backend = BACKENDS["cpp-parallel"]
    with backend.prepare(Problem(D=D, X0=X0, lr=lr, niter=1), 2) as state:
        native_state = state.data
        assert not native_state.closed
    assert native_state.closed and state.data is None


def test_seed_working_bytes_is_the_gradient_the_row_stresses_and_the_state():
    overhead = BACKENDS["cpp"].working_bytes(0, 3, 4, 1)
    assert 0 < overhead <= 1 << 20
    assert BACKENDS["cpp"].working_bytes(1000, 3, 4, 1) == 12_000 + 8_000 + overhead  # float64 per row
    assert BACKENDS["cpp-parallel"].working_bytes(1000, 3, 8, 2) == 24_000 + 8_000 + overhead
