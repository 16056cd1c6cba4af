"""The roofline arithmetic: FMAs and bytes per pair-update, the op-mix and FMA-only compute
ceilings, memory ceilings and where they bind, each row's fraction of the ceiling of the scheme
and ISA it ran, and the text of ``gradi machine`` (clock cross-check, op mix, measured cache)."""

from dataclasses import replace

import pytest

from gradi.bench import probes, report, roofline
from gradi.bench.probes import Hardware, OpMix, VectorUnit

GHZ = 1e9


def hardware(clock=2.84 * GHZ, fma_per_cycle=2.0, cores=2, bandwidth=None, cache=32 << 20, knee=16 << 20,
             avx512=False, fma_latency=4.02, mix_share=0.9):
    """A machine like the issue's Zen 3 (AVX2 + FMA, 2 cores, ~2.84 GHz, 2 ymm FMAs per cycle),
    whose op mix runs at ``mix_share`` of the FMA-only rate, for dims 2 and 3."""
    units = [VectorUnit("baseline", 16, fma_per_cycle * clock, fma_per_cycle),
             VectorUnit("avx2", 32, fma_per_cycle * clock, fma_per_cycle)]
    if avx512:
        units.append(VectorUnit("avx512", 64, fma_per_cycle * clock, fma_per_cycle))
    mixes = tuple(OpMix(unit.isa, scheme, dim, mix_share * unit.fma_per_second / (3 * dim if scheme == "symmetric"
                                                                                   else 2 * dim))
                  for unit in units for scheme in probes.SCHEMES for dim in (2, 3))
    sweep = ((2 << 20, 90e9), (4 << 20, 60e9), (8 << 20, 95e9), (16 << 20, 88e9), (32 << 20, 40e9),
             (64 << 20, 21e9), (256 << 20, 20e9))
    return Hardware(cpu="test CPU", cores=cores, clock_hz=clock, fma_latency_cycles=fma_latency,
                    vector_units=tuple(units), op_mix=mixes, read_bytes=256 << 20,
                    read_bandwidth=bandwidth or {1: 20e9, 2: 30e9}, read_sweep=sweep, cache_knee_bytes=knee,
                    last_level_cache_bytes=cache, load_average=None, round_trip_seconds=None, seconds=1.0)


def test_fmas_and_bytes_per_pair_update_for_both_schemes():
    assert roofline.fmas_per_pair_update(3) == 6 and roofline.fmas_per_pair_update(2) == 4
    assert roofline.fmas_per_pair_update(3, "symmetric") == 4.5
    assert roofline.d2_bytes_per_pair_update(4) == 4 and roofline.d2_bytes_per_pair_update(8, "symmetric") == 4


def test_the_issue_example_fma_only_full_pair_peak_in_dim_3_is_about_1_5e10():
    # 8 float32 lanes x 2 FMAs/cycle x 2.84 GHz x 2 cores / 6 FMAs per pair-update
    machine = hardware()
    assert roofline.fma_ceiling(machine, "avx2", "float32", 3, 2) == pytest.approx(1.515e10, rel=1e-3)
    assert roofline.fma_ceiling(machine, "avx2", "float64", 3, 2) == pytest.approx(1.515e10 / 2, rel=1e-3)
    assert roofline.fma_ceiling(machine, "avx2", "float32", 3, 2, "symmetric") == pytest.approx(
        1.515e10 * 4 / 3, rel=1e-3)
    assert roofline.fma_ceiling(machine, "avx2", "float32", 3, 1) == pytest.approx(1.515e10 / 2, rel=1e-3)


def test_the_op_mix_ceiling_is_pair_vectors_times_lanes_times_updates_per_lane_times_cores():
    machine = hardware(avx512=True)
    rate = machine.op_mix_rate("avx512", "symmetric", 3)
    assert roofline.op_mix_ceiling(machine, "avx512", "float32", 3, 2, "symmetric") == pytest.approx(rate * 16 * 2 * 2)
    assert roofline.op_mix_ceiling(machine, "avx512", "float64", 3, 1, "symmetric") == pytest.approx(rate * 8 * 2)
    full = machine.op_mix_rate("avx2", "full", 2)
    assert roofline.op_mix_ceiling(machine, "avx2", "float32", 2, 2) == pytest.approx(full * 8 * 2)
    for scheme in probes.SCHEMES:  # this machine's op mix runs at 0.9 of the FMA-only rate
        assert roofline.op_mix_ceiling(machine, "avx2", "float32", 3, 2, scheme) == pytest.approx(
            0.9 * roofline.fma_ceiling(machine, "avx2", "float32", 3, 2, scheme))
    assert roofline.op_mix_ceiling(machine, "avx2", "float32", 5, 2) is None  # dim 5 not measured


def test_several_cores_count_what_they_reached_together_never_more_than_their_number():
    machine = hardware()
    unit = machine.unit("avx2")
    mix = machine.op_mix_of("avx2", "symmetric", 3)
    one_core = roofline.op_mix_ceiling(machine, "avx2", "float32", 3, 1, "symmetric")
    def together(mix_share, fma_share=None):
        units = machine.vector_units
        if fma_share is not None:
            units = (units[0], replace(unit, all_cores_fma_per_second=fma_share * unit.fma_per_second))
        mixes = tuple(replace(m, all_cores_pair_vectors_per_second=mix_share * m.pair_vectors_per_second)
                      for m in machine.op_mix)
        return replace(machine, vector_units=units, op_mix=mixes)

    siblings = together(1.2, 1.1)
    # two vCPUs sharing one core's vector units: together 1.2x and 1.1x one core, not 2x
    assert roofline.op_mix_ceiling(siblings, "avx2", "float32", 3, 2, "symmetric") == pytest.approx(1.2 * one_core)
    assert roofline.fma_ceiling(siblings, "avx2", "float32", 3, 2) == pytest.approx(
        1.1 * roofline.fma_ceiling(machine, "avx2", "float32", 3, 1))
    assert roofline.op_mix_ceiling(siblings, "avx2", "float32", 3, 1, "symmetric") == pytest.approx(one_core)
    # a quiet moment for the two and a busy one for the one: no more than twice one core
    assert roofline.op_mix_ceiling(together(2.5), "avx2", "float32", 3, 2, "symmetric") == pytest.approx(2 * one_core)
    assert probes.on_cores(mix.pair_vectors_per_second, None, 2) == 2 * mix.pair_vectors_per_second
    text = roofline.describe(siblings, 2)
    assert "2 cores at once 1.10x one" in text and "2 cores at once 1.20x one" in text
    assert "at once" not in roofline.describe(machine, 2)  # not measured: nothing said


def test_memory_ceilings_use_the_bandwidth_of_the_threads_in_use():
    machine = hardware(bandwidth={1: 20e9, 2: 30e9})
    assert roofline.memory_ceiling(machine, "float32", 2) == pytest.approx(7.5e9)
    assert roofline.memory_ceiling(machine, "float32", 1) == pytest.approx(5e9)
    assert roofline.memory_ceiling(machine, "float64", 2, "symmetric") == pytest.approx(7.5e9)
    busy = hardware(bandwidth={1: 25e9, 2: 15e9})  # two threads measured on a busy machine
    assert roofline.memory_ceiling(busy, "float32", 2) == pytest.approx(25e9 / 4)


def test_d2_outgrows_the_cache_at_the_square_root_of_its_elements():
    assert roofline.cache_limit_n(32 << 20, "float32") == 2896
    assert roofline.cache_limit_n(32 << 20, "float64") == 2048
    assert roofline.cache_limit_n(None, "float32") is None
    assert roofline.cache_limit_n(32 << 20, "float32", "symmetric") == 4096


def _row(backend, rate, status="ok", dim=3, tier="idiomatic"):
    return {"backend": backend, "tier": tier, "status": status, "dtype": "float32", "dim": dim,
            "pair_updates_per_second": rate}


def test_every_untuned_row_is_compared_with_the_every_pair_op_mix_of_the_widest_isa(monkeypatch):
    machine = hardware(avx512=True)
    monkeypatch.setattr(roofline, "backend_isa", lambda name: None)
    table = roofline.annotate([_row("numpy", 1e9), _row("cpp", 2e9, dim=2, tier="seed"),
                               _row("python", None, "skipped", tier="seed")], machine, threads=None)
    ceiling = roofline.op_mix_ceiling(machine, "avx512", "float32", 3, 2)
    peak = roofline.fma_ceiling(machine, "avx512", "float32", 3, 2)
    assert table[0]["isa"] == "avx512" and table[0]["scheme"] == "full" and table[0]["ceiling_cores"] == 2
    assert table[0]["op_mix_ceiling"] == ceiling and table[0]["fraction_of_ceiling"] == pytest.approx(1e9 / ceiling)
    assert table[0]["fma_ceiling"] == peak and table[0]["fraction_of_fma_ceiling"] == pytest.approx(1e9 / peak)
    assert table[1]["fraction_of_ceiling"] == pytest.approx(2e9 / roofline.op_mix_ceiling(machine, "avx512",
                                                                                        "float32", 2, 2))
    assert table[2]["fraction_of_ceiling"] is None and table[2]["op_mix_ceiling"] == ceiling
    assert table[0]["memory_ceiling"] == roofline.memory_ceiling(machine, "float32", 2)


def test_a_tuned_backend_is_compared_with_the_symmetric_op_mix_of_the_isa_it_ran(monkeypatch):
    machine = hardware(avx512=True)
    monkeypatch.setattr(roofline, "backend_isa", lambda name: "avx2" if name == "cpp-simd" else None)
    simd, mojo = roofline.annotate([_row("cpp-simd", 1e10, tier="tuned"), _row("mojo-simd", 1e10, tier="tuned")],
                                   machine, threads=2)
    assert simd["isa"] == "avx2" and mojo["isa"] == "avx512" and simd["scheme"] == mojo["scheme"] == "symmetric"
    assert simd["fraction_of_ceiling"] == pytest.approx(2 * mojo["fraction_of_ceiling"])
    assert simd["op_mix_ceiling"] == roofline.op_mix_ceiling(machine, "avx2", "float32", 3, 2, "symmetric")
    assert simd["memory_ceiling"] == roofline.memory_ceiling(machine, "float32", 2, "symmetric")


def test_a_dim_without_an_op_mix_has_no_fraction_but_its_fma_only_peak(monkeypatch):
    monkeypatch.setattr(roofline, "backend_isa", lambda name: None)
    (row,) = roofline.annotate([_row("numpy", 1e9, dim=12)], hardware(), threads=None)
    assert row["op_mix_ceiling"] is None and row["fraction_of_ceiling"] is None
    assert row["fraction_of_fma_ceiling"] == pytest.approx(1e9 / roofline.fma_ceiling(hardware(), "avx2", "float32",
                                                                                     12, 2))


def test_the_ceilings_count_the_sweeps_threads_at_most_the_usable_cores():
    machine = hardware(cores=2)
    assert roofline.sweep_cores(machine, None) == 2 and roofline.sweep_cores(machine, 1) == 1
    assert roofline.sweep_cores(machine, 8) == 2


def test_without_a_measurement_every_field_is_none():
    (row,) = roofline.annotate([_row("numpy", 1e9)], None, threads=None)
    assert set(roofline.ROW_FIELDS) <= set(row) and all(row[field] is None for field in roofline.ROW_FIELDS)
    assert roofline.document(None, "no probes", None) == {"unavailable": "no probes"}


def test_the_bench_json_document_lists_every_ceiling():
    machine = hardware(avx512=True)
    ceilings = roofline.document(machine, None, 2)["ceilings"]
    for kind in ("op_mix", "fma"):
        assert len([c for c in ceilings if c["kind"] == kind]) == 3 * 2 * 2 * 2  # isa x scheme x dtype x dim
    memory = [c for c in ceilings if c["kind"] == "memory"]
    assert len(memory) == 2 * 2  # scheme x dtype
    full = next(c for c in ceilings if (c["kind"], c["isa"], c["scheme"], c["dtype"], c["dim"])
                == ("fma", "avx2", "full", "float32", 3))
    assert full["pair_updates_per_second"] == pytest.approx(1.515e10, rel=1e-3) and full["fmas_per_pair_update"] == 6
    mix = next(c for c in ceilings if (c["kind"], c["isa"], c["scheme"], c["dtype"], c["dim"])
               == ("op_mix", "avx2", "full", "float32", 3))
    assert mix["pair_updates_per_second"] == pytest.approx(0.9 * 1.515e10, rel=1e-3)
    assert next(c for c in memory if (c["scheme"], c["dtype"]) == ("full", "float32"))["cache_limit_n"] == 2048


def test_the_machine_text_gives_the_clock_the_op_mix_beside_the_fma_peak_and_the_measured_cache():
    text = roofline.describe(hardware(avx512=True), 2)
    for words in ("2.84 GHz (dependent integer multiplies", "a dependent FMA takes 4.02 cycles", "avx512", "avx2",
                  "baseline", "2.00 per cycle", "every pair (4/6 FMAs)", "each pair once (3/4.5 FMAs)",
                  "1 thread 20.0 GB/s, 2 threads 30.0 GB/s", "16 MiB measured", "32 MiB last-level",
                  "every pair N > 2048 in float32", "lscpu's 32 MiB would say every pair N > 2896 in float32"):
        assert words in text
    mix = [line for line in text.splitlines() if line.startswith("  avx2      each pair once  ")]
    assert len(mix) == 1 and "dim 3 9.09e+09 = 0.90 of 1.01e+10" in mix[0]  # 8 lanes x 5.68e9 / 4.5, x 0.9
    assert any(line.startswith("op mix") for line in text.splitlines())


def test_when_the_clocks_disagree_the_machine_text_says_so_and_gives_no_per_cycle_figure():
    machine = hardware(fma_latency=6.3)  # an add-folding renamer would make the multiplies look slower
    assert machine.clock_agrees is False and machine.cycle_hz is None
    clock = next(line for line in roofline.describe(machine, 2).splitlines() if line.startswith("clock"))
    assert "unknown" in clock and "disagree by more than 10%" in clock and "1.80 GHz at 4 cycles" in clock
    assert hardware(fma_latency=None).cycle_hz == 2.84 * GHZ  # no FMA to cross-check with: unchecked


@pytest.mark.parametrize("cycles, agrees", [(4.0, True), (4.39, True), (5.45, True), (4.5, True),
                                            (3.55, False), (6.3, False), (8.0, False), (None, None)])
def test_the_clock_agrees_when_a_dependent_fma_takes_about_4_or_5_of_its_cycles(cycles, agrees):
    assert probes.clock_agrees(cycles) is agrees


def test_without_a_cache_knee_the_memory_ceiling_binds_everywhere():
    text = roofline.describe(hardware(knee=None), 2)
    assert "cache          none found" in text and "the memory ceiling binds at every N" in text


def test_the_report_names_the_core_to_core_round_trip(monkeypatch):
    serial, parallel = {"round_trip_ns": None, "dim": 3}, {"round_trip_ns": [52.4, 361.0], "dim": 3}
    monkeypatch.setattr(probes, "measured_for", lambda dims: (replace(hardware(), round_trip_seconds=3.5e-7), None))
    assert report._round_trip_note([serial]) == ("; core-to-core round trip 350 ns with the ceilings "
                                                 "(parallel figures fall as it grows)")
    assert report._round_trip_note([serial, parallel]) == (
        "; core-to-core round trip 350 ns with the ceilings, 52-361 ns around the parallel rows "
        "(each row's in bench.json) (parallel figures fall as it grows)")
    monkeypatch.setattr(probes, "measured_for", lambda dims: (hardware(cores=1), None))
    assert report._round_trip_note([serial]) == ""
