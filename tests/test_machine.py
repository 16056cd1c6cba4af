"""``gradi machine`` and its probes: plausible measurements, checked arguments, one ISA parser, a
clear error without the C++ extension, the cache knee and the sysfs cache reader.

The plausibility bounds are wide on purpose and hold on any x86-64 (Intel or AMD) or other CPU
(a busy machine is slow, not wrong): they catch a probe whose loop the compiler removed or
folded, which reads as thousands of GHz, or an op mix faster than the FMAs it is made of."""

import itertools
import os
import platform
import re
import subprocess
import sys

import numpy as np
import pytest

from gradi import host
from gradi.bench import probes
from gradi.cli import main

native = pytest.importorskip("gradi._native", reason="the probes live in the C++ extension")


def test_gradi_machine_prints_what_it_measured_and_the_ceilings(capsys):
    assert main(["machine"]) == 0
    out = capsys.readouterr().out
    for words in ("clock", "vector FMA", "op mix", "memory read", "cache", "pair-update ceilings on",
                  "memory", "dim 2", "dim 3", "every pair (4/6 FMAs)", "each pair once (3/4.5 FMAs)",
                  "the memory ceiling binds"):
        assert words in out
    for isa in native.simd_isas():
        assert f"op mix {isa}" in out and f"FMA-only {isa}" in out


def test_the_measurement_is_plausible():
    hardware, reason = probes.measured()
    assert reason is None
    if hardware.clock_hz is not None:  # x86-64
        assert 0.1e9 < hardware.clock_hz < 10e9
    if hardware.fma_latency_cycles is not None:
        assert 1 < hardware.fma_latency_cycles < 20
    assert [unit.isa for unit in hardware.vector_units] == sorted(native.simd_isas(), key=native.probe_vector_bytes)
    for unit in hardware.vector_units:
        assert unit.vector_bytes in (16, 32, 64)
        assert unit.fma_per_cycle is None if hardware.cycle_hz is None else 0.1 < unit.fma_per_cycle < 16
        # every core at once: measured where there are several, and at most their number's worth
        together = unit.all_cores_fma_per_second
        assert together is None if hardware.cores == 1 else 0 < together < 1.5 * hardware.cores * unit.fma_per_second
        for scheme in probes.SCHEMES:
            for dim in probes.OP_MIX_DIMS:  # a pair-vector takes at least 2 dim FMAs (or mul-add pairs)
                rate = hardware.op_mix_rate(unit.isa, scheme, dim)
                assert 0 < rate < 1.5 * unit.fma_per_second / (2 * dim)
                mix = hardware.op_mix_of(unit.isa, scheme, dim)
                together = mix.all_cores_pair_vectors_per_second
                assert together is None if hardware.cores == 1 else 0 < together < 1.5 * hardware.cores * rate
                assert hardware.op_mix_rate(unit.isa, scheme, dim, hardware.cores) == (
                    hardware.cores * rate if together is None else min(hardware.cores * rate, together))
    assert set(hardware.read_bandwidth) <= {1, hardware.cores} and 1 in hardware.read_bandwidth
    assert all(1e8 < rate < 1e13 for rate in hardware.read_bandwidth.values())
    assert hardware.read_bytes >= min(probes.MIN_READ_BYTES, host.available_memory() // 4)
    sizes = [size for size, _ in hardware.read_sweep]
    assert sizes == sorted(sizes) and sizes[-1] == hardware.read_bytes
    assert all(1e8 < rate < 1e14 for _, rate in hardware.read_sweep)
    assert hardware.read_sweep[-1][1] == hardware.read_bandwidth[1]
    assert hardware.cache_knee_bytes is None or hardware.cache_knee_bytes in sizes[:-1]
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


X86 = platform.machine().lower() in ("x86_64", "amd64")


def test_the_probes_count_what_they_ran():
    fmas, seconds = native.probe_fma("baseline", 1000)
    assert fmas == 12 * 1000 and seconds > 0
    assert len(native.probe_read(4 << 20, 1, 3)) == 3
    rates = native.probe_read_sweep([1 << 20, 3 << 20], 1, 2, 4 << 20)
    assert len(rates) == 2 and all(rate > 0 for rate in rates)
    for isa in native.simd_isas():
        for symmetric in (False, True):
            pair_vectors, seconds = native.probe_op_mix(isa, 3, symmetric, 100)
            assert pair_vectors % 100 == 0 and 100 <= pair_vectors <= 800 and seconds > 0  # 1 to 8 rows a round
            assert native.probe_op_mix(isa, 3, symmetric, 100, threads=3)[0] == 3 * pair_vectors
    # on several threads at once (more than the cores is allowed: it is then what they share)
    assert native.probe_fma("baseline", 1000, threads=3)[0] == 3 * 12 * 1000
    assert native.probe_vector_bytes("baseline") == 16
    if X86:
        cycles, seconds = native.probe_mul_chain(1600)
        assert cycles == 3 * 1600 and seconds > 0
        assert native.probe_mul_chain(1)[0] == 3 * 16  # rounded up to 16 links
    else:
        with pytest.raises(RuntimeError, match="no instruction chain of known latency"):
            native.probe_mul_chain(1600)
    if "avx2" in native.simd_isas():
        assert native.probe_fma_chain(20)[0] == 32


@pytest.mark.parametrize("call, words", [
    (lambda: native.probe_fma("sse9", 10), "isa must be 'baseline', 'avx2' or 'avx512', got 'sse9'"),
    (lambda: native.probe_fma("auto", 10), "isa must be 'baseline', 'avx2' or 'avx512', got 'auto'"),
    (lambda: native.probe_fma("baseline", 0), "rounds must be >= 1"),
    (lambda: native.probe_op_mix("baseline", 0, True, 10), "dim must be 1 to 8, got 0"),
    (lambda: native.probe_op_mix("baseline", 9, False, 10), "dim must be 1 to 8, got 9"),
    (lambda: native.probe_op_mix("sse9", 3, False, 10), "isa must be"),
    (lambda: native.probe_op_mix("baseline", 3, False, 0), "rounds must be >= 1"),
    (lambda: native.probe_op_mix("baseline", 3, False, 10, threads=0), "threads must be >= 1"),
    (lambda: native.probe_fma("baseline", 10, threads=-1), "threads must be >= 1"),
    (lambda: native.probe_read(1 << 20, 0, 1), "threads must be >= 1"),
    (lambda: native.probe_read(0, 1, 1), "bytes must be >= 1"),
    (lambda: native.probe_read_sweep([], 1, 1, 1 << 20), "sizes must not be empty"),
    (lambda: native.probe_read_sweep([1 << 20, 32], 1, 1, 1 << 20), "every size must be >= 64 bytes, got 32"),
    (lambda: native.probe_read_sweep([1 << 20], 1, 0, 1 << 20), "passes must be >= 1"),
    (lambda: native.probe_read_sweep([1 << 20], 1, 1, 0), "pass_bytes must be >= 1"),
    (lambda: native.probe_mul_chain(-5), "links must be >= 1"),
    (lambda: native.probe_fma_chain(0), "links must be >= 1"),
    (lambda: native.probe_handoff(0), "rounds must be >= 1"),
])
def test_the_probes_refuse_bad_arguments(call, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        call()


def test_one_isa_parser_names_the_same_choices_for_the_kernel_and_the_probes():
    D = np.ones((4, 4), dtype=np.float32) - np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match=re.escape("isa must be 'auto', 'baseline', 'avx2' or 'avx512', got 'sse9'")):
        native.SimdState(D, 2, 1e-3, 1, "sse9")
    assert native.SimdState(D, 2, 1e-3, 1, "auto").isa == native.simd_isa()
    unsupported = [isa for isa in ("avx2", "avx512") if isa not in native.simd_isas()]
    for isa in unsupported:  # the same refusal from both
        with pytest.raises(ValueError, match=f"isa '{isa}' is not supported by this CPU or build"):
            native.SimdState(D, 2, 1e-3, 1, isa)
        with pytest.raises(ValueError, match=f"isa '{isa}' is not supported by this CPU or build"):
            native.probe_fma(isa, 1)


def test_without_the_extension_gradi_machine_says_why_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradi._native", None)  # import now fails
    probes.measured.cache_clear()
    try:
        assert main(["machine"]) == 2
    finally:
        probes.measured.cache_clear()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "C++ extension" in lines[0] and lines[0].startswith("gradi machine: error:")


def test_the_best_rate_is_the_fastest_of_the_repeats_and_the_probes_take_turns():
    calls = []

    def probe(name, speeds):  # work per second of successive runs
        def run(work):
            calls.append(name)
            return work, work / next(speeds)
        return run
    steady = probe("steady", itertools.repeat(1.0))
    stalled = probe("stalled", iter([1e3] * 6 + [10.0] + [1e3] * 30))  # one run of a busy spell
    assert probes.best_rates([steady, stalled]) == pytest.approx([1.0, 1e3])
    assert calls[-2 * probes.REPEATS:] == ["steady", "stalled"] * probes.REPEATS


class SpellNative:
    """A stand-in for the extension's probes on a host whose vCPU runs at half speed for a spell:
    during the first pass of the compute probes (``slow_first``) or the second, the spell's edge
    being the memory probes between them. Rates: clock 3 GHz, 2 FMA instructions a cycle, 1e9
    pair-vectors per second of every op mix; the memory reads 10 GB/s."""

    CLOCK = 3e9

    def __init__(self, slow_first):
        self.slow = slow_first

    def pace(self, units_per_second):
        return units_per_second / (2 if self.slow else 1)

    def probe_mul_chain(self, links):
        return 3 * links, 3 * links / self.pace(self.CLOCK)

    def probe_fma_chain(self, links):
        return links, 4 * links / self.pace(self.CLOCK)

    def simd_isas(self):
        return ["baseline"]

    def probe_vector_bytes(self, isa):
        return 16

    def probe_fma(self, isa, rounds, threads=1):
        return 12 * rounds, 12 * rounds / self.pace(2 * self.CLOCK)

    def probe_op_mix(self, isa, dim, symmetric, rounds, threads=1):
        return rounds, rounds / self.pace(1e9)

    def probe_read_sweep(self, sizes, threads, passes, pass_bytes):
        self.slow = not self.slow  # the spell ends, or begins, while memory is read
        return [1e10] * len(sizes)


@pytest.mark.parametrize("slow_first", [True, False])
def test_a_busy_spell_over_one_pass_of_the_compute_probes_lowers_no_ceiling(monkeypatch, slow_first):
    monkeypatch.setitem(sys.modules, "gradi._native", SpellNative(slow_first))
    monkeypatch.setattr(host, "usable_cores", lambda: 1)
    hardware = probes.measure()
    assert hardware.clock_hz == pytest.approx(SpellNative.CLOCK)
    assert hardware.fma_latency_cycles == pytest.approx(4)
    assert hardware.unit("baseline").fma_per_second == pytest.approx(2 * SpellNative.CLOCK)
    for scheme in probes.SCHEMES:
        for dim in probes.OP_MIX_DIMS:
            assert hardware.op_mix_rate("baseline", scheme, dim) == pytest.approx(1e9)
    assert hardware.read_bandwidth == {1: 1e10}


def test_sysfs_caches_are_the_data_and_unified_ones_by_level(tmp_path):
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "64M"),
                                                 (2, "Unified", "1024K"), (3, "Unified", "32768K")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(kind + "\n")
        (folder / "size").write_text(size + "\n")
    assert probes.sysfs_caches(tmp_path) == {1: 48 << 10, 2: 1 << 20, 3: 32 << 20}
    assert probes.sysfs_caches(tmp_path / "missing") == {}


MIB = 1 << 20


@pytest.mark.parametrize("rates, knee", [
    ([90, 95, 94, 80, 50, 30, 20, 20], 16 * MIB),  # a plateau to 16 MiB (80 is within 1.41x of 95)
    ([90, 40, 94, 93, 50, 30, 20, 20], 16 * MIB),  # 40: a disturbed run among faster larger ones
    ([60, 58, 59, 61, 60, 59, 58, 60], None),  # no cache beyond the first working set's
    ([95, 60, 40, 30, 25, 20, 20, 20], 2 * MIB),  # slower from the second working set on
    ([95, 95, 95, 95, 95, 95, 95, 60], 128 * MIB),
])
def test_the_cache_knee_is_the_largest_working_set_read_within_its_drop_of_the_fastest(rates, knee):
    sizes = [2 * MIB, 4 * MIB, 8 * MIB, 16 * MIB, 32 * MIB, 64 * MIB, 128 * MIB, 256 * MIB]
    assert probes.cache_knee(list(zip(sizes, [rate * 1e9 for rate in rates]))) == knee


def test_the_sweep_grows_by_its_step_to_the_streamed_buffer():
    sizes = probes.sweep_sizes(2 * MIB, 512 * MIB)
    assert sizes[0] == 2 * MIB and sizes[-1] == 512 * MIB and sizes[2] == 4 * MIB
    assert all(size % 64 == 0 for size in sizes) and len(sizes) == 17
