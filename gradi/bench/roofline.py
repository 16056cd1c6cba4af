"""The roofline: this machine's pair-update ceilings, and each measurement as a fraction of them.

A pair-update is one ordered pair (i, j) of one iteration, N^2 per iteration (as the report
counts throughput). Absolute speeds change with the machine; fractions of its ceiling carry over.

Compute ceiling = lanes x vector FMAs per second per core x cores / FMAs per pair-update, with
lanes = vector bytes / itemsize of the instruction set (ISA) and FMAs counted per scheme:

- ``full``: every ordered pair visited (the seed and idiomatic tiers): c = |d|^2 - D^2 takes dim
  FMAs and acc += c d another dim, so 2 dim (6 in dim 3);
- ``symmetric``: each unordered pair visited once and both rows updated (both tuned backends):
  dim FMAs for c, dim for row i, dim for row j, for two pair-updates, so 1.5 dim (4.5 in dim 3).

Only FMAs are counted: the dim subtractions d = x_i - x_j run on the adder pipes of AMD's cores;
where adds share the FMA pipes (Intel) the ceiling is optimistic. Memory ceiling = read bandwidth
/ bytes of D^2 per pair-update (itemsize for full, itemsize / 2 for symmetric, which stores one
triangle); it binds once what the scheme stores of D^2 (all of it, or one triangle) no longer
fits the last-level cache.

Every backend is compared with the full-scheme ceiling of the widest ISA on the cores the sweep
used, so the fractions compare stacks; a tuned backend that ran a narrower ISA is compared with
that ISA's instead (``isa`` in its row).
"""

import numpy as np

SCHEMES = ("full", "symmetric")
TUNED_ISA_BACKENDS = ("cpp-simd", "mojo-simd")


def fmas_per_pair_update(dim, scheme="full"):
    """Vector FMAs per pair-update and lane (see the module docstring)."""
    return 2 * dim if scheme == "full" else 1.5 * dim


def d2_bytes_per_pair_update(itemsize, scheme="full"):
    """Bytes of D^2 read per pair-update when it is streamed from memory every iteration."""
    return itemsize if scheme == "full" else itemsize / 2


def compute_ceiling(hardware, isa, dtype, dim, cores, scheme="full"):
    """Pair-updates per second that the vector FMA units of ``cores`` cores allow."""
    unit = hardware.unit(isa)
    return unit.lanes(np.dtype(dtype).itemsize) * unit.fma_per_second * cores / fmas_per_pair_update(dim, scheme)


def memory_ceiling(hardware, dtype, cores, scheme="full"):
    """Pair-updates per second when D^2 streams from memory each iteration."""
    return hardware.bandwidth(cores) / d2_bytes_per_pair_update(np.dtype(dtype).itemsize, scheme)


def cache_limit_n(hardware, dtype, scheme="full"):
    """The N above which the scheme's D^2 (N^2 entries, or N^2 / 2 for one triangle) outgrows
    the last-level cache (None where its size is unknown)."""
    cache = hardware.last_level_cache_bytes
    if cache is None:
        return None
    return int((cache / d2_bytes_per_pair_update(np.dtype(dtype).itemsize, scheme)) ** 0.5)


def sweep_cores(hardware, threads):
    """Cores a sweep's ceilings count: its threads (default: all usable), at most the usable cores."""
    return min(threads or hardware.cores, hardware.cores)


def backend_isa(name, hardware):
    """The ISA a tuned backend that has run uses (asked of its loaded module), else None."""
    try:
        if name == "cpp-simd":
            from ..backends import get

            return get("cpp-simd").isa()
        if name == "mojo-simd":
            from ..backends import mojo_build

            vector_bytes = mojo_build.load_extension().info()["simd_width_float32"] * 4
            return next(unit.isa for unit in hardware.vector_units if unit.vector_bytes == vector_bytes)
    except (ImportError, OSError, KeyError, StopIteration):
        return None
    return None


def annotate(table, hardware, threads):
    """Add the ceilings and fractions to every row of ``report.rows`` (None where unmeasured)."""
    isas = {}
    cores = sweep_cores(hardware, threads) if hardware else None
    for row in table:
        fields = dict.fromkeys(("isa", "ceiling_cores", "compute_ceiling", "symmetric_ceiling",
                                "memory_ceiling", "fraction_of_ceiling",
                                "fraction_of_symmetric_ceiling"))
        if hardware is not None:
            if row["backend"] in TUNED_ISA_BACKENDS and row["status"] == "ok" and row["backend"] not in isas:
                isas[row["backend"]] = backend_isa(row["backend"], hardware)
            isa = isas.get(row["backend"]) or hardware.widest.isa
            fields.update(
                isa=isa, ceiling_cores=cores,
                compute_ceiling=compute_ceiling(hardware, isa, row["dtype"], row["dim"], cores),
                symmetric_ceiling=compute_ceiling(hardware, isa, row["dtype"], row["dim"], cores, "symmetric"),
                memory_ceiling=memory_ceiling(hardware, row["dtype"], cores))
            rate = row["pair_updates_per_second"]
            if rate is not None:
                fields["fraction_of_ceiling"] = rate / fields["compute_ceiling"]
                fields["fraction_of_symmetric_ceiling"] = rate / fields["symmetric_ceiling"]
        row.update(fields)
    return table


def ceilings(hardware, cores, dims=(2, 3), dtypes=("float32", "float64")):
    """Every ceiling for ``cores`` cores, as JSON-ready dicts (kind, isa, scheme, dtype, dim, value)."""
    found = []
    for dtype in dtypes:
        for unit in reversed(hardware.vector_units):
            for scheme in SCHEMES:
                for dim in dims:
                    found.append({"kind": "compute", "isa": unit.isa, "scheme": scheme, "dtype": dtype,
                                  "dim": dim, "cores": cores,
                                  "fmas_per_pair_update": fmas_per_pair_update(dim, scheme),
                                  "pair_updates_per_second": compute_ceiling(hardware, unit.isa, dtype,
                                                                             dim, cores, scheme)})
        for scheme in SCHEMES:
            found.append({"kind": "memory", "isa": None, "scheme": scheme, "dtype": dtype, "dim": None,
                          "cores": cores,
                          "d2_bytes_per_pair_update": d2_bytes_per_pair_update(np.dtype(dtype).itemsize, scheme),
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
    lines = [f"cpu            {hardware.cpu or 'unknown'}, {hardware.cores} usable cores"
             + (f", last-level cache {hardware.last_level_cache_bytes / 2**20:g} MiB"
                if hardware.last_level_cache_bytes else ""),
             f"clock          {hardware.clock_hz / 1e9:.2f} GHz (dependent integer adds per second)",
             "vector FMA     per core, float32 instructions (best of short runs):"]
    for unit in reversed(hardware.vector_units):
        lines.append(f"  {unit.isa:<9} {unit.vector_bytes * 8:>3}-bit  {unit.fma_per_second / 1e9:6.2f} G/s  "
                     f"{unit.fma_per_cycle:.2f} per cycle")
    tuned = backend_isa("cpp-simd", hardware)
    if tuned:
        lines.append(f"  cpp-simd runs {tuned} here (chosen at run time); mojo-simd is compiled for this CPU")
    reads = ", ".join(f"{threads} thread{'s' if threads > 1 else ''} {rate / 1e9:.1f} GB/s"
                      for threads, rate in sorted(hardware.read_bandwidth.items()))
    lines.append(f"memory read    {reads} (streaming {hardware.read_bytes / 2**20:g} MiB)")
    if hardware.round_trip_seconds:
        lines.append(f"core to core   {hardware.round_trip_seconds * 1e9:.0f} ns for a cache line to go to "
                     "another core and back (paid each time threads hand data to each other)")
    lines.append(f"measured in    {hardware.seconds:.1f} s"
                 + (f", load average {load[0]:.1f} on {hardware.cores} cores" if load else ""))
    lines += ["", f"pair-update ceilings on {cores} core{'s' if cores > 1 else ''} (pair-updates/s; "
                  f"N^2 per iteration):"]
    table = [["", "", "", "dim 2", "dim 3"]]
    for dtype in ("float32", "float64"):
        for unit in reversed(hardware.vector_units):
            for scheme in SCHEMES:
                values = [compute_ceiling(hardware, unit.isa, dtype, dim, cores, scheme) for dim in (2, 3)]
                fmas = f"{fmas_per_pair_update(2, scheme):g}/{fmas_per_pair_update(3, scheme):g} FMAs"
                table.append([f"compute {unit.isa}", dtype, f"{scheme} ({fmas})",
                              *(f"{value:.3g}" for value in values)])
        for scheme in SCHEMES:
            value = memory_ceiling(hardware, dtype, cores, scheme)
            table.append(["memory", dtype,
                          f"{scheme} ({d2_bytes_per_pair_update(np.dtype(dtype).itemsize, scheme):g} B of D^2)",
                          f"{value:.3g}", f"{value:.3g}"])
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    lines += ["  " + "  ".join(cell.ljust(width) if k < 3 else cell.rjust(width)
                               for k, (cell, width) in enumerate(zip(row, widths))).rstrip()
              for row in table]
    if hardware.last_level_cache_bytes:
        lines.append("the memory ceiling binds once D^2 outgrows the cache: "
                     + "; ".join(f"{scheme} N > {cache_limit_n(hardware, 'float32', scheme)} in float32, "
                                 f"N > {cache_limit_n(hardware, 'float64', scheme)} in float64"
                                 for scheme in SCHEMES))
    else:
        lines.append("the memory ceiling binds once D^2 outgrows the cache")
    return "\n".join(lines)
