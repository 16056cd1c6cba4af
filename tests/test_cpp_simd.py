"""The tuned C++ backend cpp-simd (issues 8, 12, 14, 17, 19): every instruction set this CPU has,
both dtypes, its per-solve state, fork safety and its choice of kernel under valgrind."""

import functools
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

native = pytest.importorskip("gradi._native", reason="C++ extension gradi._native not built (pip install .)")

from gradi.backends import cpp  # noqa: E402
from gradi.problem import ProblemSize, distance_matrix  # noqa: E402
from gradi.shapes import sphere  # noqa: E402
from gradi.testing import assert_agrees, make_case, reference_descend  # noqa: E402
from gradi.validation import validate  # noqa: E402

NITER = 50
ISAS = native.simd_isas()
BACKEND = next(b for b in cpp.BACKENDS if b.name == "cpp-simd")


@functools.cache
def case(n, dim, dtype):
    """(X0, D, lr, reference X after NITER steps), computed once per problem."""
    X0, D, lr = make_case(n, dim, dtype)
    X0.flags.writeable = False
    return X0, D, lr, reference_descend(X0, D, lr, NITER)


def test_isas():
    assert ISAS[0] == "baseline" and native.simd_isa() == ISAS[-1] == BACKEND.isa()
    _, D, lr = make_case(4, 2, "float32")
    with pytest.raises(ValueError, match="isa"):
        native.SimdState(D, 2, lr, 1, isa="sse9")
    for isa in ISAS:
        assert native.SimdState(D, 2, lr, 1, isa=isa).isa == isa
    assert native.SimdState(D, 2, lr, 1).isa == native.simd_isa()


# 15, 16, 17 around the 16 float32 lanes of AVX-512 (and the 8, 4, 2 of narrower vectors); 255,
# 256, 257 around a tile; 600 has three blocks, so tiles off the diagonal, and a masked last
# vector for every width. dim up to 8 has its own kernel, 11 the generic one.
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [2, 15, 16, 17, 100, 255, 256, 257, 600])
@pytest.mark.parametrize("dim", [1, 2, 3, 4, 5, 11])
def test_agrees_with_reference(isa, dtype, n, dim):
    X0, D, lr, expected = case(n, dim, dtype)
    X = X0.copy()
    state = native.SimdState(D, dim, lr, 2, isa=isa, parallel_min_n=0)
    state.descend(X, NITER)
    assert state.threads_used == 2
    assert_agrees(X, expected, D, dtype)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n, dim, parallel_min_n", [
    (600, 3, 0), (1100, 3, 0), (300, 11, 0), (native.simd_parallel_min_n() + 37, 2, -1)])  # -1: the default
def test_bit_identical_for_any_thread_count_and_chunking(isa, dtype, n, dim, parallel_min_n):
    """20 steps in one call, or in 20 calls of one step on the same state, on 1, 2, 3 or 8 threads."""
    X0, D, lr = make_case(n, dim, dtype)
    results = {}
    for threads in (1, 2, 3, 8):
        state = native.SimdState(D, dim, lr, threads, isa=isa, parallel_min_n=parallel_min_n)
        X = X0.copy()
        state.descend(X, 20)
        assert state.team == state.threads_used == threads
        chunked = X0.copy()
        for _ in range(20):
            state.descend(chunked, 1)
        np.testing.assert_array_equal(chunked, X, err_msg=f"threads={threads}, one step per call")
        results[threads] = X
    for threads, X in results.items():
        np.testing.assert_array_equal(X, results[1], err_msg=f"threads={threads}")


def test_a_failed_run_leaves_the_state_clean():
    """A descent that overflows to inf/NaN must not change what the state computes next."""
    X0, D, lr = make_case(300, 3, "float32")
    expected = X0.copy()
    native.SimdState(D, 3, lr, 2, parallel_min_n=0).descend(expected, 5)
    state = native.SimdState(D, 3, lr, 2, parallel_min_n=0)
    with np.errstate(all="ignore"):
        state.descend(X0 * np.float32(1e30), 3)
    X = X0.copy()
    state.descend(X, 5)
    np.testing.assert_array_equal(X, expected)


def test_small_problems_run_serially():
    threshold = native.simd_parallel_min_n()
    _, D, lr = make_case(max(threshold - 1, 2), 3, "float32")
    assert native.SimdState(D, 3, lr, 2).team == (1 if threshold > 2 else 2)
    _, D, lr = make_case(threshold + 1, 3, "float32")
    assert native.SimdState(D, 3, lr, 2).team == 2


def test_niter_zero_leaves_x_unchanged():
    X0, D, lr, _ = case(17, 3, "float64")
    X = X0.copy()
    state = native.SimdState(D, 3, lr, 2)
    state.descend(X, 0)
    np.testing.assert_array_equal(X, X0)
    assert state.threads_used == 0


def test_x_may_alias_d_since_the_state_holds_its_own_d_squared():
    X0, D, lr, expected = case(16, 2, "float64")
    D = D.copy()
    state = native.SimdState(D, 2, lr, 1)
    X = D.reshape(-1)[:32].reshape(16, 2)
    X[:] = X0
    state.descend(X, NITER)
    assert_agrees(X, expected, np.asarray(case(16, 2, "float64")[1]), "float64")


def _run_python(script, timeout, wrapper=()):
    """Run script in a fresh interpreter on the installed gradi (-P: not the checkout in the cwd)."""
    return subprocess.run([*wrapper, sys.executable, "-P", "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=timeout)


def test_forked_child_gets_a_clear_error_instead_of_a_hang():
    """After the parent ran OpenMP teams, a forked child's team raises; one thread still works."""
    script = """
        import os, sys
        import numpy as np
        from gradi import _native
        from gradi.testing import make_case

        X0, D, lr = make_case(300, 3, "float32")
        simd, seed = X0.copy(), X0.copy()
        team = dict(parallel_min_n=0)  # a team whatever N
        _native.SimdState(D, 3, lr, 2, **team).descend(simd, 5)
        _native.SeedState(D, 3, lr, 2).descend(seed, 5)
        inherited = _native.SimdState(D, 3, lr, 2, **team)
        pid = os.fork()
        if pid == 0:
            refused = 0
            for attempt in (lambda: _native.SimdState(D, 3, lr, 2, **team),
                            lambda: _native.SeedState(D, 3, lr, 2),
                            lambda: inherited.descend(X0.copy(), 1)):
                try:
                    attempt()
                except RuntimeError as exc:
                    refused += "forked" in str(exc) and isinstance(exc, _native.TeamError)
            X, Y = X0.copy(), X0.copy()
            _native.SimdState(D, 3, lr, 1).descend(X, 5)
            _native.SeedState(D, 3, lr, 1).descend(Y, 5)
            os._exit(0 if refused == 3 and np.array_equal(X, simd) and np.array_equal(Y, seed) else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """
    run = _run_python(script, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_child_forked_after_the_read_probe_gets_the_same_clear_error():
    """The memory probe's OpenMP team (gradi machine) counts as one the parent ran."""
    script = """
        import os, sys
        from gradi import _native
        from gradi.testing import make_case

        _native.probe_read(4 << 20, 2, 1)
        X0, D, lr = make_case(300, 3, "float32")
        pid = os.fork()
        if pid == 0:
            try:
                _native.SimdState(D, 3, lr, 2, parallel_min_n=0).descend(X0.copy(), 1)
            except _native.TeamError as exc:
                os._exit(0 if "forked" in str(exc) else 3)
            os._exit(4)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """
    run = _run_python(script, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_smaller_team_than_asked_still_runs_every_tile():
    """OpenMP may give fewer threads than asked (OMP_THREAD_LIMIT): the result must not change."""
    script = """
        import numpy as np
        from gradi import _native
        from gradi.testing import make_case

        X0, D, lr = make_case(700, 3, "float32")
        one, team = X0.copy(), X0.copy()
        _native.SimdState(D, 3, lr, 1).descend(one, 10)
        state = _native.SimdState(D, 3, lr, 4)
        state.descend(team, 10)
        print(state.threads_used, np.array_equal(one, team))
    """
    run = subprocess.run([sys.executable, "-P", "-c", textwrap.dedent(script)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "OMP_THREAD_LIMIT": "2"})
    assert run.returncode == 0, run.stderr
    used, identical = run.stdout.split()
    assert 1 <= int(used) <= 2 and identical == "True"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2
                    or not native.has_openmp(), reason="needs two usable CPUs, CPU affinity and OpenMP")
def test_a_thread_behind_has_its_tiles_stolen_and_the_result_does_not_change():
    """The two threads pinned to two CPUs and a busy process on the second: the first, done with
    its step early, runs the second's remaining own tiles (ThreadPlan); the positions stay the
    one-thread ones, and a state on one thread never steals."""
    script = """
        import os, sys, numpy as np
        from gradi import _native
        from gradi.testing import make_case

        second = int(sys.argv[1])
        busy = os.fork()
        if busy == 0:
            os.sched_setaffinity(0, {second})
            while True:
                pass
        try:
            X0, D, lr = make_case(1000, 2, "float32")
            one, two = X0.copy(), X0.copy()
            alone = _native.SimdState(D, 2, lr, 1)
            alone.descend(one, 300)
            state = _native.SimdState(D, 2, lr, 2)
            stolen = 0
            for _ in range(3):
                two[:] = X0
                state.descend(two, 300)
                stolen = max(stolen, state.tiles_stolen)
                assert np.array_equal(one, two)
            print(alone.tiles_stolen, stolen)
        finally:
            os.kill(busy, 9)
    """
    first, second = sorted(os.sched_getaffinity(0))[:2]
    run = subprocess.run([sys.executable, "-P", "-c", textwrap.dedent(script), str(second)], capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, "OMP_PROC_BIND": "true", "OMP_PLACES": f"{{{first}}},{{{second}}}"})
    assert run.returncode == 0, run.stderr
    alone, stolen = map(int, run.stdout.split())
    # tiles 10 a step at N=1000; the thread behind has 2 of its own that can be taken
    assert alone == 0 and 0 < stolen <= 300 * 2


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_under_valgrind_the_kernel_is_avx2():
    """valgrind emulates no AVX-512: the run-time choice (CPUID) must fall back to AVX2 and run."""
    if "avx2" not in ISAS:
        pytest.skip("this CPU has no AVX2")
    script = """
        import numpy as np
        from gradi import _native
        points = np.random.default_rng(0).random((40, 3))
        D = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)).astype(np.float32)
        state = _native.SimdState(D, 3, 1e-3, 1)
        state.descend(np.zeros((40, 3), np.float32) + points.astype(np.float32), 2)
        try:
            _native.SimdState(D, 3, 1e-3, 1, isa="avx512")
        except ValueError:
            print(_native.simd_isa(), state.isa, "refused")
    """
    run = _run_python(script, timeout=300, wrapper=("valgrind", "--tool=none", "-q"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["avx2", "avx2", "refused"]


@pytest.mark.parametrize("kind", ["SimdState", "SeedState"])
def test_working_bytes_bounds_what_a_state_allocates(kind):
    """The peak resident memory a state adds (building it and one parallel step) is within its
    estimate; for SimdState, whose buffers are all touched, also close to it."""
    script = f"""
        import numpy as np
        from gradi import _native

        def status(field):
            line = next(l for l in open("/proc/self/status") if l.startswith(field + ":"))
            return int(line.split()[1]) * 1024

        n, dim = 3000, 3
        D = np.ones((n, n), np.float32)
        X = np.zeros((n, dim), np.float32)
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak to the current size
        before = status("VmRSS")
        state = _native.{kind}(D, dim, 1e-3, 2)
        state.descend(X, 1)
        print(status("VmHWM") - before, _native.{kind}.working_bytes(n, dim, 4, 2))
    """
    run = _run_python(script, timeout=120)
    assert run.returncode == 0, run.stderr
    grown, estimate = map(int, run.stdout.split())
    assert grown <= estimate, (grown, estimate)
    if kind == "SimdState":
        assert grown >= 0.9 * estimate, (grown, estimate)


def test_working_bytes_of_the_backend_is_the_extensions():
    assert BACKEND.working_bytes(4000, 3, 4, 2) == native.SimdState.working_bytes(4000, 3, 4, 2)
    assert BACKEND.working_bytes(4000, 3, 8, 2) > BACKEND.working_bytes(4000, 3, 4, 2)
    for args, word in [((10, 3, 2, 1), "itemsize"), ((-1, 3, 4, 1), "n"), ((10, 0, 4, 1), "dim"),
                       ((10, 3, 4, 0), "threads")]:
        with pytest.raises(ValueError, match=word):
            native.SimdState.working_bytes(*args)
        with pytest.raises(ValueError, match=word):
            native.SeedState.working_bytes(*args)



def test_gradi_cpp_isa_forces_the_kernel(monkeypatch):
    D = distance_matrix(sphere(400))
    for isa in ISAS:
        monkeypatch.setenv("GRADI_CPP_ISA", isa)
        backend = cpp.CppSimd()
        assert backend.isa() == isa
        problem = validate(D, 3, niter=2, backend=backend, threads=1)
        with backend.prepare(problem, 1) as state:
            assert state.data.isa == isa


def test_gradi_cpp_isa_must_name_a_kernel(monkeypatch):
    monkeypatch.setenv("GRADI_CPP_ISA", "sse9")
    backend = cpp.CppSimd()
    reason = "GRADI_CPP_ISA=sse9 is not a cpp-simd kernel (one of avx512, avx2, baseline)"
    assert backend.status() == f"unavailable: {reason}"
    assert backend.unavailable_reason == reason


def test_gradi_cpp_isa_this_cpu_cannot_run_makes_cpp_simd_unavailable(monkeypatch):
    monkeypatch.setenv("GRADI_CPP_ISA", "avx512")
    monkeypatch.setattr(native, "simd_isas", lambda: ["baseline", "avx2"])
    backend = cpp.CppSimd()
    assert backend.unavailable_reason == ("GRADI_CPP_ISA=avx512 is not a cpp-simd kernel this CPU "
                                          "runs (one of baseline, avx2)")
    assert "is unavailable: GRADI_CPP_ISA=avx512" in backend.check(ProblemSize(400, 3, np.dtype("float32")), 1)


LLVM_MCA = shutil.which("llvm-mca-19") or shutil.which("llvm-mca")


@pytest.mark.skipif(LLVM_MCA is None or shutil.which("g++") is None, reason="llvm-mca or g++ is not installed")
def test_the_static_analysis_finds_the_kernels_inner_loop_and_the_probes():
    """native/mca.py: one line per dim and CPU model, the kernel's cycles per pair-vector against
    the probe's, which the model must put within a few percent of each other (the probe is the
    kernel's own op mix; a wrong loop, say the masked tail or an outer loop, would not be)."""
    script = os.path.join(os.path.dirname(__file__), "..", "native", "mca.py")
    run = subprocess.run([sys.executable, script, "--cpus", "znver3", "sapphirerapids", "--dims", "2", "3",
                          "--llvm-mca", LLVM_MCA], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    found = re.findall(r"dim (\d)\s+(\S+)\s+([\d.]+) /\s+([\d.]+)\s+\(([\d.]+)\)", run.stdout)
    assert [(dim, cpu) for dim, cpu, *_ in found] == [("2", "znver3"), ("2", "sapphirerapids"),
                                                      ("3", "znver3"), ("3", "sapphirerapids")]
    for *_, kernel, probe, ratio in found:
        assert float(probe) > 0 and 0.8 <= float(probe) / float(kernel) <= 1.01
        assert float(ratio) == pytest.approx(float(probe) / float(kernel), abs=0.01)
