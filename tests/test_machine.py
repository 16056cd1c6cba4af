"""``gradi machine`` and its probes: plausible measurements, checked arguments, a clear error
without the C++ extension, and the sysfs cache reader.

The plausibility bounds are wide on purpose (a busy machine is slow, not wrong): they catch a
probe whose loop the compiler removed or folded, which reads as thousands of GHz."""

import os
import subprocess
import sys

import pytest

from gradi import host
from gradi.bench import probes
from gradi.cli import main

native = pytest.importorskip("gradi._native", reason="the probes live in the C++ extension")


def test_gradi_machine_prints_what_it_measured_and_the_ceilings(capsys):
    assert main(["machine"]) == 0
    out = capsys.readouterr().out
    for words in ("clock", "vector FMA", "memory read", "pair-update ceilings on",
                  "compute", "memory", "dim 2", "dim 3", "full (4/6 FMAs)", "symmetric (3/4.5 FMAs)"):
        assert words in out
    for isa in native.simd_isas():
        assert f"compute {isa}" in out


def test_the_measurement_is_plausible():
    hardware, reason = probes.measured()
    assert reason is None
    assert 0.1e9 < hardware.clock_hz < 10e9
    assert [unit.isa for unit in hardware.vector_units] == sorted(native.simd_isas(), key=native.probe_vector_bytes)
    for unit in hardware.vector_units:
        assert 0.1 < unit.fma_per_cycle < 16 and unit.vector_bytes in (16, 32, 64)
    assert set(hardware.read_bandwidth) <= {1, hardware.cores} and 1 in hardware.read_bandwidth
    assert all(1e8 < rate < 1e13 for rate in hardware.read_bandwidth.values())
    assert hardware.read_bytes >= min(probes.MIN_READ_BYTES, host.available_memory() // 4)
    if hardware.cores > 1:
        assert 1e-9 < hardware.round_trip_seconds < 0.1
        assert 1e-9 < probes.round_trip_now() < 0.1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_the_round_trip_needs_two_usable_cores_not_an_openmp_team():
    script = ONE_CORE + "from gradi.bench import probes; print(probes.round_trip_now())"
    done = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "None"
    # Two plain threads: works where OpenMP would give one thread (OMP_THREAD_LIMIT=1).
    script = "from gradi.bench import probes; print(probes.round_trip_now())"
    done = subprocess.run([sys.executable, "-P", "-c", script], env={**os.environ, "OMP_THREAD_LIMIT": "1"},
                          capture_output=True, text=True, timeout=60)
    if host.usable_cores() > 1:
        assert done.returncode == 0 and 1e-9 < float(done.stdout) < 0.1


ONE_CORE = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_the_handoff_probe_needs_two_usable_cores():
    script = ONE_CORE + "from gradi import _native; _native.probe_handoff(10)"
    done = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "needs two usable cores" in done.stderr


def test_the_probes_count_what_they_ran():
    fmas, seconds = native.probe_fma("baseline", 1000)
    assert fmas == 12 * 1000 and seconds > 0
    assert len(native.probe_read(4 << 20, 1, 3)) == 3
    assert native.probe_add_chain(1600) > 0
    assert native.probe_vector_bytes("baseline") == 16


@pytest.mark.parametrize("call, words", [
    (lambda: native.probe_fma("sse9", 10), "isa must be"),
    (lambda: native.probe_fma("baseline", 0), "rounds must be >= 1"),
    (lambda: native.probe_read(1 << 20, 0, 1), "threads must be >= 1"),
    (lambda: native.probe_read(0, 1, 1), "bytes must be >= 1"),
    (lambda: native.probe_add_chain(-5), "adds must be >= 1"),
    (lambda: native.probe_handoff(0), "rounds must be >= 1"),
])
def test_the_probes_refuse_bad_arguments(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_without_the_extension_gradi_machine_says_why_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradi._native", None)  # import now fails
    probes.measured.cache_clear()
    try:
        assert main(["machine"]) == 2
    finally:
        probes.measured.cache_clear()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "C++ extension" in lines[0] and lines[0].startswith("gradi machine: error:")


def test_the_best_rate_is_the_fastest_of_the_repeats():
    speeds = iter([1.0] * 50)  # work per second of successive runs, one stalled

    def run(work):
        speed = next(speeds)
        return work, work / speed
    assert probes._best_rate(run, 1) == pytest.approx(1.0)
    stalled = iter([1e3] * 6 + [10.0] + [1e3] * 20)

    def busy(work):
        return work, work / next(stalled)
    assert probes._best_rate(busy, 1) == pytest.approx(1e3)


def test_the_last_level_cache_is_the_largest_data_cache(tmp_path):
    for index, (kind, size) in enumerate([("Data", "48K"), ("Instruction", "64M"), ("Unified", "1024K"),
                                          ("Unified", "32768K")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "type").write_text(kind + "\n")
        (folder / "size").write_text(size + "\n")
    assert probes.last_level_cache_bytes(tmp_path) == 32 << 20
    assert probes.last_level_cache_bytes(tmp_path / "missing") is None
