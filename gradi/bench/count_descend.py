"""The program valgrind runs for ``gradi.bench.counted``: count exactly one ``descend`` call.

``python -P -m gradi.bench.count_descend BACKEND N DIM NITER DTYPE RESULT_JSON``, started by
``counted.count`` under callgrind with instrumentation off. Pins itself to the CPU in
$GRADI_COUNT_CPU, then (all uncounted) validates the problem, asks the backend's ``check``,
prepares it (compile, JIT) and runs one warm-up call; then switches callgrind on for one
``descend`` from X0 and off again, and checks the result against the float64 reference. Writes
``{"code_path": ...}`` to RESULT_JSON, or ``{"skipped": reason}`` when it cannot count this
backend here. A wrong result or an AVX-512 CPU is an error (exit 1), not a count.
"""

import json
import os
import sys


def visible_isa():
    """The widest x86 vector extension this process sees ("AVX-512", "AVX2", ...), as NumPy's
    run-time dispatch reads it from CPUID (under valgrind: valgrind's virtual CPU)."""
    from numpy._core._multiarray_umath import __cpu_features__ as features

    for name, label in (("AVX512F", "AVX-512"), ("AVX2", "AVX2"), ("SSE42", "SSE4.2")):
        if features.get(name):
            return label
    return "SSE2"


def mojo_build_reason(counted_cpu):
    """Why the Mojo backends would not run a build for ``counted_cpu``, or None if they would.

    Compares the library a load would pick (``build()``, which honours $GRADI_MOJO_TARGET_CPU
    where this gradi supports it) with the one built for ``counted_cpu``; nothing is loaded, so
    no host-CPU code runs under valgrind.
    """
    from gradi.backends import mojo_build

    try:
        wanted, _ = mojo_build.build(target_cpu=counted_cpu)
        loaded, _ = mojo_build.build()
    except ImportError as exc:
        return str(exc)
    if wanted != loaded:
        return (f"this gradi's Mojo backends load a build for this CPU, not {counted_cpu} "
                f"(GRADI_MOJO_TARGET_CPU is not honoured): valgrind cannot run host-CPU code")
    return None


def code_path(backend, counted_cpu):
    """Which instruction set the counted call ran, in words, for the report."""
    isa = visible_isa()
    if backend.language == "Mojo":
        return f"Mojo built for {counted_cpu}"
    if backend.language == "JAX":
        return "XLA, max ISA AVX2"
    if backend.name == "cpp-simd":
        return f"{backend.native.simd_isa()} kernel (run-time choice)"
    if backend.language == "C++":
        return "C++ as compiled (no run-time choice)"
    if backend.language == "NumPy":
        return f"NumPy dispatch on {isa}"
    return "interpreter"


def run(name, n, dim, niter, dtype):
    """The result record (see the module docstring); exceptions for failures."""
    from pytest_codspeed.instruments.hooks import dist_instrument_hooks as hooks

    import gradi
    from gradi.backends import BACKENDS
    from gradi.testing import assert_agrees, reference_descend
    from gradi.validation import validate

    from .counted import COUNTED_CPU
    from .prepared import PreparedRun
    from .sweep import target

    if name not in BACKENDS:
        return {"skipped": f"backend {name!r} is not in this gradi's registry"}
    isa = visible_isa()
    if isa == "AVX-512":
        raise RuntimeError("this CPU shows AVX-512 under valgrind: counts would not compare with "
                           "counts of the x86-64-v3 path taken elsewhere")
    backend = BACKENDS[name]
    if backend.language == "Mojo":
        reason = mojo_build_reason(COUNTED_CPU)
        if reason is not None:
            return {"skipped": reason}
    problem = validate(gradi.distance_matrix(target(n, dim)), dim, niter=niter, dtype=dtype)
    reason = backend.check(problem, 1)
    if reason is not None:
        return {"skipped": reason}
    with PreparedRun(backend, problem) as prepared:
        prepared.descend(niter)  # the warm-up call
        X = prepared.start()
        hooks.callgrind_start_instrumentation()
        X = prepared.descend(niter, X)
        hooks.callgrind_stop_instrumentation()
    assert_agrees(X, reference_descend(problem.X0, problem.D, problem.lr, niter), problem.D, dtype)
    return {"code_path": code_path(backend, COUNTED_CPU), "visible_isa": isa}


def main(argv):
    name, n, dim, niter, dtype, result_file = argv
    cpu = os.environ.get("GRADI_COUNT_CPU")
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})  # before any library sizes a thread pool
    result = run(name, int(n), int(dim), int(niter), dtype)
    with open(result_file, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1:])
