"""The roofline: this machine's pair-update ceilings, and each measurement as a fraction of them.

A pair-update is one ordered pair (i, j) of one iteration, N^2 per iteration (as the report
counts throughput). Absolute speeds change with the machine; fractions of its ceiling carry over,
provided the ceiling is one a kernel can reach on that core. Two schemes (``probes.SCHEMES``):

- ``full``: every ordered pair visited, its row updated (the seed and idiomatic tiers): per
  pair-vector (one row against one vector of columns) dim subtractions d = x_i - x_j, dim FMAs
  for c = |d|^2 - D^2 and dim for row += c d: one pair-update per lane;
- ``symmetric``: each unordered pair visited once and both rows updated (the tuned tier): dim
  more FMAs for col -= c d, for two pair-updates per lane.

Compute ceilings, per instruction set (ISA), dtype and dim, on ``cores`` cores:

- the **op mix** ceiling (what ``% ceil`` divides by): the kernels' own subtractions and FMAs run
  in registers on this core (``probes``) x lanes x pair-updates per lane x cores. It counts what
  the core really does with the subtractions: on Intel every one takes an FMA port, on AMD it
  goes to separate adders;
- the **FMA-only** peak: lanes x vector FMAs per second x cores / FMAs per pair-update (2 dim for
  full, 1.5 dim for symmetric), the hardware's peak, shown beside it.

Memory ceiling = read bandwidth / bytes of D^2 per pair-update (itemsize for full, itemsize / 2
for symmetric, which stores one triangle); it binds once what the scheme stores of D^2 outgrows
the cache the read sweep found (``Hardware.cache_knee_bytes``), not the one sysfs names.

Each row is compared with the ceilings of the scheme its backend runs (symmetric for the tuned
tier, full for the rest) and of the widest ISA, or for a tuned backend the ISA it ran (``isa``).
"""

import numpy as np

from ..columns import aligned
from . import probes
from .probes import CLOCK_TOLERANCE, FMA_LATENCIES, KNEE_DROP, SCHEMES

SCHEME_WORDS = {"full": "every pair", "symmetric": "each pair once"}
TUNED_ISA_BACKENDS = ("cpp-simd", "mojo-simd")


def scheme_of(tier):
    """The scheme a backend of ``tier`` runs: the tuned tier visits each pair once."""
    return "symmetric" if tier == "tuned" else "full"


def fmas_per_pair_update(dim, scheme="full"):
    """Vector FMAs per pair-update and lane (see the module docstring)."""
    return 2 * dim if scheme == "full" else 1.5 * dim


def pair_updates_per_lane(scheme):
    """Pair-updates one lane of a pair-vector makes: both rows' in the symmetric scheme."""
    return 2 if scheme == "symmetric" else 1


def d2_bytes_per_pair_update(itemsize, scheme="full"):
    """Bytes of D^2 read per pair-update when it is streamed from memory every iteration."""
    return itemsize if scheme == "full" else itemsize / 2


def fma_ceiling(hardware, isa, dtype, dim, cores, scheme="full"):
    """Pair-updates per second that the vector FMA units of ``cores`` cores allow (the FMA-only peak)."""
    unit = hardware.unit(isa)
    return unit.lanes(np.dtype(dtype).itemsize) * unit.fma_rate(cores) / fmas_per_pair_update(dim, scheme)


def op_mix_ceiling(hardware, isa, dtype, dim, cores, scheme="full"):
    """Pair-updates per second of the kernels' op mix on ``cores`` cores, or None where it was
    not measured (a dim the probe has no loop for)."""
    rate = hardware.op_mix_rate(isa, scheme, dim, cores)
    if rate is None:
        return None
    return op_mix_pair_updates(rate, hardware.unit(isa).vector_bytes, dtype, scheme)


def op_mix_pair_updates(pair_vectors_per_second, vector_bytes, dtype, scheme):
    """Pair-updates per second of an op mix measured in pair-vectors per second with vectors of
    ``vector_bytes``."""
    lanes = vector_bytes // np.dtype(dtype).itemsize
    return pair_vectors_per_second * lanes * pair_updates_per_lane(scheme)


def memory_ceiling(hardware, dtype, cores, scheme="full"):
    """Pair-updates per second when D^2 streams from memory each iteration."""
    return hardware.bandwidth(cores) / d2_bytes_per_pair_update(np.dtype(dtype).itemsize, scheme)


def cache_limit_n(cache_bytes, dtype, scheme="full"):
    """The N above which the scheme's D^2 (N^2 entries, or N^2 / 2 for one triangle) outgrows
    ``cache_bytes`` (None where that is unknown)."""
    if cache_bytes is None:
        return None
    return int((cache_bytes / d2_bytes_per_pair_update(np.dtype(dtype).itemsize, scheme)) ** 0.5)


def measured_for(table):
    """(Hardware, None) or (None, why) for the rows of ``table``: one measurement per process,
    with the op mix of every dim the rows have."""
    return probes.measured_for({row["dim"] for row in table})


def sweep_cores(hardware, threads):
    """Cores a sweep's ceilings count: its threads (default: all usable), at most the usable cores."""
    return min(threads or hardware.cores, hardware.cores)


def backend_isa(name):
    """The ISA a tuned backend that has run uses (asked of its loaded module), else None."""
    try:
        if name == "cpp-simd":
            from ..backends import get

            return get("cpp-simd").isa()
        if name == "mojo-simd":
            from .. import _native
            from ..backends import mojo_build

            vector_bytes = mojo_build.load_extension().info()["simd_width_float32"] * 4
            return next(isa for isa in _native.simd_isas() if _native.probe_vector_bytes(isa) == vector_bytes)
    except (ImportError, OSError, KeyError, StopIteration):
        return None
    return None


ROW_FIELDS = ("isa", "scheme", "ceiling_cores", "op_mix_ceiling", "fma_ceiling", "memory_ceiling",
              "fraction_of_ceiling", "fraction_of_fma_ceiling")


def annotate(table, hardware, threads):
    """Add the ceilings and fractions to every row of ``report.rows`` (None where unmeasured)."""
    isas = {}
    cores = sweep_cores(hardware, threads) if hardware else None
    for row in table:
        fields = dict.fromkeys(ROW_FIELDS)
        if hardware is not None:
            if row["backend"] in TUNED_ISA_BACKENDS and row["status"] == "ok" and row["backend"] not in isas:
                isas[row["backend"]] = backend_isa(row["backend"])
            isa = isas.get(row["backend"]) or hardware.widest.isa
            scheme = scheme_of(row["tier"])
            case = (isa, row["dtype"], row["dim"], cores, scheme)
            fields.update(isa=isa, scheme=scheme, ceiling_cores=cores, op_mix_ceiling=op_mix_ceiling(hardware, *case),
                          fma_ceiling=fma_ceiling(hardware, *case),
                          memory_ceiling=memory_ceiling(hardware, row["dtype"], cores, scheme))
            rate = row["pair_updates_per_second"]
            if rate is not None:
                fields["fraction_of_fma_ceiling"] = rate / fields["fma_ceiling"]
                if fields["op_mix_ceiling"] is not None:
                    fields["fraction_of_ceiling"] = rate / fields["op_mix_ceiling"]
        row.update(fields)
    return table


def measured_dims(hardware):
    """The dims whose op mix ``hardware`` measured."""
    return sorted({mix.dim for mix in hardware.op_mix})


def ceilings(hardware, cores, dtypes=("float32", "float64")):
    """Every ceiling for ``cores`` cores, as JSON-ready dicts (kind, isa, scheme, dtype, dim, value):
    kind "op_mix" and "fma" (compute, per ISA, for every dim measured) and "memory"."""
    dims = measured_dims(hardware)
    found = []
    for dtype in dtypes:
        for unit in reversed(hardware.vector_units):
            for scheme in SCHEMES:
                for dim in dims:
                    case = (unit.isa, dtype, dim, cores, scheme)
                    found.append({"kind": "op_mix", "isa": unit.isa, "scheme": scheme, "dtype": dtype, "dim": dim,
                                  "cores": cores, "pair_updates_per_second": op_mix_ceiling(hardware, *case)})
                    found.append({"kind": "fma", "isa": unit.isa, "scheme": scheme, "dtype": dtype, "dim": dim,
                                  "cores": cores, "fmas_per_pair_update": fmas_per_pair_update(dim, scheme),
                                  "pair_updates_per_second": fma_ceiling(hardware, *case)})
        for scheme in SCHEMES:
            found.append({"kind": "memory", "isa": None, "scheme": scheme, "dtype": dtype, "dim": None,
                          "cores": cores,
                          "d2_bytes_per_pair_update": d2_bytes_per_pair_update(np.dtype(dtype).itemsize, scheme),
                          "cache_limit_n": cache_limit_n(hardware.cache_knee_bytes, dtype, scheme),
                          "pair_updates_per_second": memory_ceiling(hardware, dtype, cores, scheme)})
    return found


def document(hardware, reason, cores):
    """The ``roofline`` object of bench.json: the measurement and every ceiling, or why there is none."""
    if hardware is None:
        return {"unavailable": reason}
    return {"hardware": hardware.as_dict(), "cores": cores, "ceilings": ceilings(hardware, cores)}


def describe(hardware, cores):
    """The text ``gradi machine`` prints: what was measured, then the ceilings on ``cores`` cores."""
    load = hardware.load_average
    lines = [f"cpu            {hardware.cpu or 'unknown'}, {hardware.cores} usable cores",
             _clock_line(hardware),
             "vector FMA     per core, float32 instructions (best of short runs):"]
    for unit in reversed(hardware.vector_units):
        lines.append(f"  {unit.isa:<9} {unit.vector_bytes * 8:>3}-bit  {unit.fma_per_second / 1e9:6.2f} G/s"
                     + (f"  {unit.fma_per_cycle:.2f} per cycle" if unit.fma_per_cycle else "")
                     + _together(unit.fma_per_second, unit.all_cores_fma_per_second, hardware.cores))
    tuned = backend_isa("cpp-simd")
    if tuned:
        lines.append(f"  cpp-simd runs {tuned} here (chosen at run time); mojo-simd is compiled for this CPU")
    lines += _op_mix_lines(hardware)
    reads = ", ".join(f"{threads} thread{'s' if threads > 1 else ''} {rate / 1e9:.1f} GB/s"
                      for threads, rate in sorted(hardware.read_bandwidth.items()))
    lines.append(f"memory read    {reads} (streaming {hardware.read_bytes / 2**20:g} MiB)")
    lines.append(_cache_line(hardware))
    if hardware.round_trip_seconds:
        lines.append(f"core to core   {hardware.round_trip_seconds * 1e9:.0f} ns for a cache line to go to "
                     "another core and back (paid each time threads hand data to each other)")
    lines.append(f"measured in    {hardware.seconds:.1f} s"
                 + (f", load average {load[0]:.1f} on {hardware.cores} cores" if load else ""))
    lines += ["", f"pair-update ceilings on {cores} core{'s' if cores > 1 else ''} (pair-updates/s; "
                  f"N^2 per iteration):"]
    lines += _ceiling_table(hardware, cores)
    lines.append(_crossover_line(hardware))
    return "\n".join(lines)


def _clock_line(hardware):
    """The clock, its cross-check, or why there is no trusted clock."""
    if hardware.clock_hz is None:
        return "clock          not measured (no instruction chain of known latency on this architecture)"
    latencies = " or ".join(str(latency) for latency in FMA_LATENCIES)
    multiplies = f"{hardware.clock_hz / 1e9:.2f} GHz (dependent integer multiplies, 3 cycles each)"
    if hardware.clock_agrees is None:
        return f"clock          {multiplies}; not cross-checked (no FMA here)"
    if hardware.clock_agrees:
        return (f"clock          {multiplies}; cross-check: a dependent FMA takes "
                f"{hardware.fma_latency_cycles:.2f} cycles at that clock (it takes {latencies})")
    fma_clocks = " or ".join(f"{hardware.clock_hz * latency / hardware.fma_latency_cycles / 1e9:.2f} GHz at "
                             f"{latency} cycles" for latency in FMA_LATENCIES)
    return (f"clock          unknown: dependent integer multiplies read {multiplies}, a dependent FMA chain "
            f"{fma_clocks} per FMA; they disagree by more than {CLOCK_TOLERANCE:.0%}, so no per-cycle figures")


def _op_mix_lines(hardware):
    """Per ISA and scheme, the op mix's pair-updates/s on one core beside the FMA-only peak, and
    how many cores' worth every core reached at once."""
    dims = measured_dims(hardware)
    lines = ["op mix         per core, float32 pair-updates/s of the kernels' own subtractions and FMAs in "
             "registers, of the FMA-only peak:"]
    for unit in reversed(hardware.vector_units):
        for scheme in SCHEMES:
            cells = []
            for dim in dims:
                mix = op_mix_ceiling(hardware, unit.isa, "float32", dim, 1, scheme)
                peak = fma_ceiling(hardware, unit.isa, "float32", dim, 1, scheme)
                measured = hardware.op_mix_of(unit.isa, scheme, dim)
                cells.append(f"dim {dim} {mix:.3g} = {mix / peak:.2f} of {peak:.3g}"
                             + _together(measured.pair_vectors_per_second, measured.all_cores_pair_vectors_per_second,
                                         hardware.cores))
            lines.append(f"  {unit.isa:<9} {SCHEME_WORDS[scheme]:<15} " + "   ".join(cells))
    return lines


def _together(one_core, all_cores, cores):
    """What every core reached at once, in cores' worth (where it was measured), for a line of ``describe``."""
    if all_cores is None:
        return ""
    return f"; {cores} cores at once {all_cores / one_core:.2f}x one"


def _cache_line(hardware):
    """The cache the read sweep found, with what sysfs (lscpu) says beside it."""
    sweep = hardware.read_sweep
    where = f"a read sweep of {sweep[0][0] / 2**20:g}-{sweep[-1][0] / 2**20:g} MiB on one thread"
    sysfs = (f"; lscpu/sysfs say {hardware.last_level_cache_bytes / 2**20:g} MiB last-level"
             if hardware.last_level_cache_bytes else "; lscpu/sysfs do not say")
    if hardware.cache_knee_bytes is None:
        return f"cache          none found: {where} slowed from its first working set on{sysfs}"
    return (f"cache          {hardware.cache_knee_bytes / 2**20:.3g} MiB measured: reads stay within "
            f"{KNEE_DROP:.3g}x of the fastest up to there ({where}){sysfs}")


def _ceiling_table(hardware, cores):
    """Op-mix and FMA-only compute ceilings per ISA and scheme, and memory ceilings, by dtype and dim."""
    dims = measured_dims(hardware)
    table = [["", "", "", *(f"dim {dim}" for dim in dims)]]
    for dtype in ("float32", "float64"):
        for unit in reversed(hardware.vector_units):
            for scheme in SCHEMES:
                mixes = [op_mix_ceiling(hardware, unit.isa, dtype, dim, cores, scheme) for dim in dims]
                table.append([f"op mix {unit.isa}", dtype, SCHEME_WORDS[scheme], *(f"{value:.3g}" for value in mixes)])
            for scheme in SCHEMES:
                peaks = [fma_ceiling(hardware, unit.isa, dtype, dim, cores, scheme) for dim in dims]
                fmas = "/".join(f"{fmas_per_pair_update(dim, scheme):g}" for dim in dims)
                table.append([f"FMA-only {unit.isa}", dtype, f"{SCHEME_WORDS[scheme]} ({fmas} FMAs)",
                              *(f"{value:.3g}" for value in peaks)])
        for scheme in SCHEMES:
            value = memory_ceiling(hardware, dtype, cores, scheme)
            table.append(["memory", dtype,
                          f"{SCHEME_WORDS[scheme]} ({d2_bytes_per_pair_update(np.dtype(dtype).itemsize, scheme):g} B "
                          f"of D^2)", *(f"{value:.3g}" for _ in dims)])
    return ["  " + line for line in aligned(table, right=range(3, len(table[0])))]


def _crossover_line(hardware):
    """Where each memory ceiling starts to bind: from the measured cache, sysfs's figure beside."""
    def limits(cache):
        return "; ".join(f"{SCHEME_WORDS[scheme]} N > {cache_limit_n(cache, 'float32', scheme)} in float32, "
                         f"N > {cache_limit_n(cache, 'float64', scheme)} in float64" for scheme in SCHEMES)

    sysfs = hardware.last_level_cache_bytes
    beside = f" (lscpu's {sysfs / 2**20:g} MiB would say {limits(sysfs)})" if sysfs else ""
    if hardware.cache_knee_bytes is None:
        return f"the memory ceiling binds at every N: the read sweep found no cache{beside}"
    return (f"the memory ceiling binds once D^2 outgrows the measured cache: {limits(hardware.cache_knee_bytes)}"
            + beside)
