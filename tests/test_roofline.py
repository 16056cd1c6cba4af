"""The roofline arithmetic: FMAs and bytes per pair-update, compute and memory ceilings, each
row's fraction of them, and the ISA a tuned backend is compared against."""

from dataclasses import replace

import pytest

from gradi.bench import probes, report, roofline
from gradi.bench.probes import Hardware, VectorUnit

GHZ = 1e9


def hardware(clock=2.84 * GHZ, fma_per_cycle=2.0, cores=2, bandwidth=None, cache=32 << 20, avx512=False):
    """A machine like the issue's Zen 3 (AVX2 + FMA, 2 cores, ~2.84 GHz, 2 ymm FMAs per cycle)."""
    units = [VectorUnit("baseline", 16, fma_per_cycle * clock, fma_per_cycle),
             VectorUnit("avx2", 32, fma_per_cycle * clock, fma_per_cycle)]
    if avx512:
        units.append(VectorUnit("avx512", 64, fma_per_cycle * clock, fma_per_cycle))
    return Hardware(cpu="test CPU", cores=cores, clock_hz=clock, vector_units=tuple(units),
                    read_bytes=256 << 20, read_bandwidth=bandwidth or {1: 20e9, 2: 30e9},
                    last_level_cache_bytes=cache, load_average=None, round_trip_seconds=None,
                    seconds=1.0)


def test_fmas_and_bytes_per_pair_update_for_both_schemes():
    assert roofline.fmas_per_pair_update(3) == 6 and roofline.fmas_per_pair_update(2) == 4
    assert roofline.fmas_per_pair_update(3, "symmetric") == 4.5
    assert roofline.d2_bytes_per_pair_update(4) == 4 and roofline.d2_bytes_per_pair_update(8, "symmetric") == 4


def test_the_issue_example_full_pair_ceiling_in_dim_3_is_about_1_5e10():
    # 8 float32 lanes x 2 FMAs/cycle x 2.84 GHz x 2 cores / 6 FMAs per pair-update
    machine = hardware()
    assert roofline.compute_ceiling(machine, "avx2", "float32", 3, 2) == pytest.approx(1.515e10, rel=1e-3)
    assert roofline.compute_ceiling(machine, "avx2", "float64", 3, 2) == pytest.approx(1.515e10 / 2, rel=1e-3)
    assert roofline.compute_ceiling(machine, "avx2", "float32", 3, 2, "symmetric") == pytest.approx(
        1.515e10 * 4 / 3, rel=1e-3)
    assert roofline.compute_ceiling(machine, "avx2", "float32", 3, 1) == pytest.approx(1.515e10 / 2, rel=1e-3)


def test_memory_ceilings_use_the_bandwidth_of_the_threads_in_use():
    machine = hardware(bandwidth={1: 20e9, 2: 30e9})
    assert roofline.memory_ceiling(machine, "float32", 2) == pytest.approx(7.5e9)
    assert roofline.memory_ceiling(machine, "float32", 1) == pytest.approx(5e9)
    assert roofline.memory_ceiling(machine, "float64", 2, "symmetric") == pytest.approx(7.5e9)
    busy = hardware(bandwidth={1: 25e9, 2: 15e9})  # two threads measured on a busy machine
    assert roofline.memory_ceiling(busy, "float32", 2) == pytest.approx(25e9 / 4)


def test_d2_outgrows_the_cache_at_the_square_root_of_its_elements():
    assert roofline.cache_limit_n(hardware(cache=32 << 20), "float32") == 2896
    assert roofline.cache_limit_n(hardware(cache=32 << 20), "float64") == 2048
    assert roofline.cache_limit_n(hardware(cache=None), "float32") is None
    assert roofline.cache_limit_n(hardware(cache=32 << 20), "float32", "symmetric") == 4096


def _row(backend, rate, status="ok", dim=3):
    return {"backend": backend, "status": status, "dtype": "float32", "dim": dim,
            "pair_updates_per_second": rate}


def test_every_row_is_compared_with_the_same_full_pair_ceiling_of_the_widest_isa(monkeypatch):
    machine = hardware(avx512=True)
    monkeypatch.setattr(roofline, "backend_isa", lambda name, hardware: None)
    table = roofline.annotate([_row("numpy", 1e9), _row("cpp", 2e9, dim=2), _row("python", None, "skipped")],
                              machine, threads=None)
    ceiling = roofline.compute_ceiling(machine, "avx512", "float32", 3, 2)
    assert table[0]["isa"] == "avx512" and table[0]["ceiling_cores"] == 2
    assert table[0]["compute_ceiling"] == ceiling and table[0]["fraction_of_ceiling"] == pytest.approx(1e9 / ceiling)
    assert table[0]["fraction_of_symmetric_ceiling"] == pytest.approx(0.75e9 / ceiling)
    assert table[1]["fraction_of_ceiling"] == pytest.approx(2e9 / roofline.compute_ceiling(machine, "avx512",
                                                                                         "float32", 2, 2))
    assert table[2]["fraction_of_ceiling"] is None and table[2]["compute_ceiling"] == ceiling
    assert table[0]["memory_ceiling"] == roofline.memory_ceiling(machine, "float32", 2)


def test_a_tuned_backend_is_compared_with_the_isa_it_ran(monkeypatch):
    machine = hardware(avx512=True)
    monkeypatch.setattr(roofline, "backend_isa", lambda name, hardware: "avx2" if name == "cpp-simd" else None)
    simd, mojo = roofline.annotate([_row("cpp-simd", 1e10), _row("mojo-simd", 1e10)], machine, threads=2)
    assert simd["isa"] == "avx2" and mojo["isa"] == "avx512"
    assert simd["fraction_of_ceiling"] == pytest.approx(2 * mojo["fraction_of_ceiling"])


def test_the_ceilings_count_the_sweeps_threads_at_most_the_usable_cores():
    machine = hardware(cores=2)
    assert roofline.sweep_cores(machine, None) == 2 and roofline.sweep_cores(machine, 1) == 1
    assert roofline.sweep_cores(machine, 8) == 2


def test_without_a_measurement_every_field_is_none():
    (row,) = roofline.annotate([_row("numpy", 1e9)], None, threads=None)
    assert row["compute_ceiling"] is None and row["fraction_of_ceiling"] is None and row["isa"] is None
    assert roofline.document(None, "no probes", None) == {"unavailable": "no probes"}


def test_the_bench_json_document_lists_every_ceiling():
    machine = hardware(avx512=True)
    ceilings = roofline.document(machine, None, 2)["ceilings"]
    compute = [c for c in ceilings if c["kind"] == "compute"]
    assert len(compute) == 3 * 2 * 2 * 2  # isa x scheme x dtype x dim
    assert len([c for c in ceilings if c["kind"] == "memory"]) == 2 * 2  # scheme x dtype
    full = next(c for c in compute if (c["isa"], c["scheme"], c["dtype"], c["dim"]) == ("avx2", "full", "float32", 3))
    assert full["pair_updates_per_second"] == pytest.approx(1.515e10, rel=1e-3) and full["fmas_per_pair_update"] == 6


def test_the_machine_text_names_every_isa_and_both_schemes():
    text = roofline.describe(hardware(avx512=True), 2)
    for words in ("2.84 GHz", "avx512", "avx2", "baseline", "full (4/6 FMAs)", "symmetric (3/4.5 FMAs)",
                  "1 thread 20.0 GB/s, 2 threads 30.0 GB/s", "N > 2896 in float32"):
        assert words in text


def test_the_report_names_the_core_to_core_round_trip(monkeypatch):
    serial, parallel = {"round_trip_ns": None}, {"round_trip_ns": [52.4, 361.0]}
    monkeypatch.setattr(probes, "measured", lambda: (replace(hardware(), round_trip_seconds=3.5e-7), None))
    assert report._round_trip_note([serial]) == ("; core-to-core round trip 350 ns with the ceilings "
                                                 "(parallel figures fall as it grows)")
    assert report._round_trip_note([serial, parallel]) == (
        "; core-to-core round trip 350 ns with the ceilings, 52-361 ns around the parallel rows "
        "(each row's in bench.json) (parallel figures fall as it grows)")
    monkeypatch.setattr(probes, "measured", lambda: (hardware(cores=1), None))
    assert report._round_trip_note([serial]) == ""
