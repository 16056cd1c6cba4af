"""Results of ``gradi bench`` as rows, a terminal table, JSON and CSV.

Throughput is reported two ways. Pair-updates per second = N^2 * niter / seconds (each iteration
visits every ordered pair (i, j) once). GFLOP/s counts ``5 * dim`` floating-point operations per
pair-update, the blog's loop algorithm with D^2 precomputed: for d = X_i - X_j, dim subtractions;
for |d|^2, dim multiplications and dim - 1 additions; one subtraction of D_ij^2; for
g_i += err * d, dim multiplications and dim additions. Per-point work (the factor 4, the step)
is O(N) and not counted. Backends that compute another way (the matrix forms of ``numpy`` and
``jax``) are credited with the same count: their GFLOP/s is the rate of the loop algorithm they
replace, a normalised throughput, not a hardware counter.

Every row also carries its fraction of this machine's pair-update ceiling (``gradi.bench.roofline``,
measured once per process by ``gradi.bench.probes``): the "% ceil" column, the fraction of the
op-mix ceiling of the scheme the backend runs, which stays comparable from one machine to the
next where absolute times do not.
"""

import csv
import importlib.util
import json
import math
import shlex
import statistics
import time

from ..columns import aligned
from . import roofline
from .machine import describe
from .sourcelines import count_backend_lines

BASELINES = ("python", "numpy-loops", "numpy")
FLOPS_FORMULA = "5*dim"


def flops_per_pair_update(dim):
    """Floating-point operations per pair-update (see the module docstring)."""
    return 5 * dim


def speedup_key(baseline):
    return "speedup_vs_" + baseline.replace("-", "_")


def rows(sweep):
    """One dict per measurement: the raw repeats plus everything derived from them, with the ceilings."""
    lines_of = {}
    ok = {(m.backend, m.n, m.dim): m for m in sweep.measurements if m.status == "ok"}
    table = []
    for m in sweep.measurements:
        if m.sources not in lines_of:
            lines_of[m.sources] = count_backend_lines(m.sources)
        row = {
            "backend": m.backend, "language": m.language, "tier": m.tier, "parallel": m.parallel,
            "n": m.n, "dim": m.dim, "dtype": m.dtype, "threads": m.threads, "niter": m.niter,
            "iterations_run": m.iterations_run, "scaled": m.scaled, "status": m.status,
            "reason": m.reason, "lr": m.lr, "repeat_seconds": list(m.repeat_seconds),
            "seconds_median": None, "seconds_min": None, "seconds_max": None, "seconds": None,
            "seconds_per_iteration": None,
            **{speedup_key(baseline): None for baseline in BASELINES},
            "pair_updates_per_second": None, "gflops": None,
            "prepare_seconds": m.prepare_seconds, "check_iterations": m.check_iterations,
            "check_error": m.check_error, "check_tolerance": m.check_tolerance,
            "source_lines": lines_of[m.sources],
            "round_trip_ns": None if m.round_trip_seconds is None
            else [None if value is None else value * 1e9 for value in m.round_trip_seconds],
        }
        if m.status == "ok":
            row.update(_timings(m, ok))
        table.append(row)
    return roofline.annotate(table, roofline.measured_for(table)[0], sweep.settings.threads)


def _timings(m, ok):
    pair_updates = m.n * m.n * m.niter / m.seconds
    derived = {
        "seconds_median": statistics.median(m.repeat_seconds), "seconds_min": min(m.repeat_seconds),
        "seconds_max": max(m.repeat_seconds), "seconds": m.seconds,
        "seconds_per_iteration": m.seconds_per_iteration,
        "pair_updates_per_second": pair_updates,
        "gflops": pair_updates * flops_per_pair_update(m.dim) / 1e9,
    }
    for baseline in BASELINES:
        reference = ok.get((baseline, m.n, m.dim))
        if reference is not None:
            derived[speedup_key(baseline)] = reference.seconds / m.seconds
    return derived


def format_table(table):
    """The terminal table of the measured rows, then the rows that were not measured and why."""
    header = ["backend", "N", "dim", "threads", "iters run", "seconds", "s/iter", "spread",
              "x python", "x numpy-loops", "x numpy", "pair-upd/s", "GFLOP/s", "% ceil", "compile s",
              "lines"]
    body, cases = [], []
    scaled = {(row["n"], row["dim"], row["backend"]) for row in table if row["scaled"]}
    for row in table:
        if row["status"] != "ok":
            continue
        mark = "*" if row["scaled"] else ""
        spread = (row["seconds_max"] - row["seconds_min"]) / row["seconds_median"]
        speedups = []
        for baseline in BASELINES:
            value = row[speedup_key(baseline)]
            either_scaled = row["scaled"] or (row["n"], row["dim"], baseline) in scaled
            speedups.append("-" if value is None else _ratio(value) + ("*" if either_scaled else ""))
        cases.append((row["dim"], row["n"]))
        body.append([row["backend"], str(row["n"]), str(row["dim"]), str(row["threads"]),
                     f"{row['iterations_run']}/{row['niter']}", f"{row['seconds']:.4g}{mark}",
                     f"{row['seconds_per_iteration']:.3g}", f"±{50 * spread:.0f}%", *speedups,
                     f"{row['pair_updates_per_second']:.3g}", f"{row['gflops']:.3g}",
                     _percent(row["fraction_of_ceiling"]),
                     _optional(row["prepare_seconds"], ".3f"), _optional(row["source_lines"], "d")])
    text = aligned([header] + body, right=range(1, len(header)))
    lines = text[:1]
    for k, line in enumerate(text[1:]):
        if k and cases[k] != cases[k - 1]:
            lines.append("")  # a blank line between cases
        lines.append(line)
    if scaled:
        lines.append("* scaled: ran fewer iterations than niter (column 'iters run') and scaled the "
                     "time per iteration; speed-ups marked * involve a scaled time")
    lines.append(f"spread = half the range (max - min) of the repeats, relative to the median; "
                 f"GFLOP/s counts {FLOPS_FORMULA} flops per pair-update; "
                 f"lines = non-blank, non-comment source lines")
    note = _ceiling_note(table)
    if note:
        lines.append(note)
    lines += [f"{row['status']}: {row['backend']} N={row['n']} dim={row['dim']}: {row['reason']}"
              for row in table if row["status"] != "ok"]
    return "\n".join(lines)


def _ceiling_note(table):
    """What "% ceil" divides by: the op-mix ceilings used, per ISA, dtype, scheme and dim."""
    used = {}
    for row in table:
        if row["op_mix_ceiling"] is not None:
            used.setdefault((row["isa"], row["dtype"], row["scheme"]), {})[row["dim"]] = row["op_mix_ceiling"]
    if not used:
        reason = roofline.measured_for(table)[1]
        return reason and f"% ceil: n/a ({reason})"
    cores = next(row["ceiling_cores"] for row in table if row["ceiling_cores"])
    parts = [f"{isa} {dtype} {roofline.SCHEME_WORDS[scheme]} "
             + ", ".join(f"dim {dim} {value:.3g}" for dim, value in sorted(dims.items()))
             for (isa, dtype, scheme), dims in sorted(used.items())]
    tuned = sorted({(row["backend"], row["isa"]) for row in table
                    if row["backend"] in roofline.TUNED_ISA_BACKENDS and row["status"] == "ok"})
    return (f"% ceil = pair-upd/s over the op-mix ceiling of the scheme the backend runs (each pair once "
            f"for the tuned tier, every pair for the rest: the kernels' own subtractions and FMAs in "
            f"registers) on {cores} core{'s' if cores > 1 else ''} ({'; '.join(parts)} pair-updates/s; "
            f"the FMA-only peak is in bench.json)"
            + (f"; tuned backends' ISA: {', '.join(f'{name} {isa}' for name, isa in tuned)}" if tuned else "")
            + _round_trip_note(table)
            + "; see gradi machine")


def _round_trip_note(table):
    """The core-to-core round trip measured with the ceilings and around the parallel rows:
    parallel figures fall as it grows (a VM's vCPUs may sit on one die or on two, and the host
    can move them)."""
    hardware = roofline.measured_for(table)[0]
    around = [value for row in table for value in row["round_trip_ns"] or () if value is not None]
    parts = []
    if hardware is not None and hardware.round_trip_seconds:
        parts.append(f"{hardware.round_trip_seconds * 1e9:.0f} ns with the ceilings")
    if around:
        parts.append(f"{min(around):.0f}-{max(around):.0f} ns around the parallel rows (each row's "
                     f"in bench.json)")
    if not parts:
        return ""
    return f"; core-to-core round trip {', '.join(parts)} (parallel figures fall as it grows)"


def headlines(table):
    """At the largest N of each dim: the fastest backend, its speed-ups, the tuned tier's fractions."""
    lines = []
    for dim in sorted({row["dim"] for row in table}):
        measured = [row for row in table if row["dim"] == dim and row["status"] == "ok"]
        if not measured:
            continue
        n = max(row["n"] for row in measured)
        best = min((row for row in measured if row["n"] == n), key=lambda row: row["seconds"])
        ratios = [f"{_ratio(best[speedup_key(b)])}x vs {b}" for b in BASELINES
                  if best[speedup_key(b)] is not None and b != best["backend"]]
        lines.append(f"N={n} dim={dim}: fastest is {best['backend']} ({best['seconds']:.4g} s for "
                     f"{best['niter']} iterations)" + (", " + ", ".join(ratios) if ratios else ""))
        tuned = [row for row in measured if row["n"] == n and row["tier"] == "tuned"
                 and row["fraction_of_ceiling"] is not None]
        if tuned:
            lines.append(f"N={n} dim={dim}: tuned tier at " + ", ".join(
                f"{row['backend']} {_fraction(row['fraction_of_ceiling'])} of its op-mix ceiling "
                f"({roofline.SCHEME_WORDS[row['scheme']]}, {row['isa']}; "
                f"{_fraction(row['fraction_of_fma_ceiling'])} of the FMA-only peak)"
                for row in tuned))
    return lines


def write_results(out_dir, sweep, table, text, command):
    """Write table.txt, bench.json (with the machine description), bench.csv and results.md;
    returns their paths."""
    paths = [out_dir / name for name in ("table.txt", "bench.json", "bench.csv", "results.md")]
    paths[0].write_text(text + "\n")
    hardware, reason = roofline.measured_for(table)
    cores = roofline.sweep_cores(hardware, sweep.settings.threads) if hardware else None
    write_json(paths[1], sweep, table, describe(), command, roofline.document(hardware, reason, cores))
    write_csv(paths[2], table)
    paths[3].write_text(results_markdown(sweep, text, command, hardware, reason))
    return paths


def results_markdown(sweep, text, command, hardware, reason):
    """The results file a README can link: the machine as ``gradi machine`` describes it, the
    date, the exact command and the table."""
    machine = roofline.describe(hardware, hardware.cores) if hardware else reason
    cpu = hardware.cpu if hardware else describe()["cpu"]
    figures = ""
    if importlib.util.find_spec("matplotlib"):
        figures = "\n![roofline](bench-roofline.png)\n\n![time per backend](bench-log.png)\n"
    return (f"# gradi bench results\n\n"
            f"- **Machine**: {cpu or 'unknown CPU'} (what `gradi machine` measured, below)\n"
            f"- **Date**: {_utc(sweep.finished or time.time())}"
            + (" (interrupted: the measurements that finished)" if sweep.interrupted else "") + "\n"
            f"- **Command**: `{shlex.join(['gradi', *command[1:]])}`\n\n"
            f"## Results\n\n```text\n{text}\n```\n{figures}\n"
            f"## Machine (`gradi machine`)\n\n```text\n{machine}\n```\n")


def write_json(path, sweep, table, machine, command, ceilings):
    """Write every measurement and its context as JSON.

    Fields: ``format`` ("gradi-bench/2"); ``created`` and ``finished`` (UTC, ISO 8601);
    ``command`` (argv); ``interrupted`` (true if Ctrl-C stopped the sweep: ``results`` then
    holds what finished); ``settings`` (backends, sizes, dims, niter, threads (null = all cores
    for parallel backends), dtype, repeats, budget (seconds per timed run), seed,
    check_iterations); ``machine`` (cpu, cores, usable_cores, memory_bytes, load_average (1, 5,
    15 min, when the sweep ended), os, machine, python, packages {name: version}, compiler,
    mojo, gradi, git_commit; see gradi.bench.machine); ``roofline`` (``hardware``: what
    ``gradi machine`` measured — clock_hz (dependent multiplies), fma_latency_cycles (its
    cross-check), vector_units [isa, vector_bytes, fma_per_second per core, fma_per_cycle (null
    where the clock is not trusted), all_cores_fma_per_second (every usable core at once, in
    total; null on one core)], op_mix [isa, scheme, dim, pair_vectors_per_second per core,
    all_cores_pair_vectors_per_second (likewise)], read_bandwidth {threads: bytes/s},
    read_bytes, read_sweep [[bytes, bytes/s] on one thread], cache_knee_bytes,
    last_level_cache_bytes (sysfs), cores, load_average, round_trip_seconds, seconds;
    ``cores``: cores the ceilings count; ``ceilings``: every compute ceiling, kind "op_mix" and
    "fma" (per isa, scheme full/symmetric, dtype, dim), and memory ceiling (per scheme, dtype,
    with the cache_limit_n where it binds), in pair-updates/s; or ``unavailable`` with the
    reason);
    ``flops_per_pair_update`` (formula and meaning); ``results``: one object per backend and
    case with backend, language, tier, parallel, n, dim, dtype, threads, niter, lr, status
    ("ok", "excluded" = disagreed with the reference or diverged, "skipped" = cannot run or over
    budget, "failed" = raised), reason, iterations_run, scaled, repeat_seconds (every timed run of
    iterations_run iterations), seconds_median/min/max (of those), seconds (median scaled to
    niter), seconds_per_iteration, speedup_vs_python / _numpy_loops / _numpy (baseline seconds /
    these seconds, same case), pair_updates_per_second, gflops, prepare_seconds (first
    compile/warm-up), check_iterations, check_error and check_tolerance (relative to the largest
    distance), source_lines, round_trip_ns (the core-to-core round trip just before and just
    after the timed repeats, for rows on more than one thread), and from the roofline: isa (the
    ceiling's instruction set: the one a tuned backend ran, else the widest), scheme (symmetric
    for the tuned tier, else full), ceiling_cores, op_mix_ceiling and fma_ceiling (the scheme's
    op-mix ceiling and FMA-only peak), memory_ceiling (the scheme's D^2 from memory),
    fraction_of_ceiling (of the op-mix ceiling: "% ceil") and fraction_of_fma_ceiling.
    Unmeasured or unknown values are null.
    """
    document = {
        "format": "gradi-bench/2",
        "created": _utc(sweep.started),
        "finished": _utc(sweep.finished or time.time()),
        "command": list(command),
        "interrupted": sweep.interrupted,
        "settings": {**vars(sweep.settings), "backends": list(sweep.settings.backends),
                     "sizes": list(sweep.settings.sizes), "dims": list(sweep.settings.dims)},
        "machine": machine,
        "roofline": ceilings,
        "flops_per_pair_update": {"formula": FLOPS_FORMULA,
                                  "meaning": "flops of one (i, j) term of the gradient loop, "
                                             "D^2 precomputed; see gradi.bench.report"},
        "results": [{key: _finite(value) for key, value in row.items()} for row in table],
    }
    with open(path, "w") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")


def write_csv(path, table):
    """Write the rows as CSV, one line per backend and case; repeats joined by ';'."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]) if table else ["backend"])
        writer.writeheader()
        for row in table:
            writer.writerow({**row, "repeat_seconds": ";".join(f"{s:.9g}" for s in row["repeat_seconds"])})


def _ratio(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _fraction(value):
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def _percent(fraction):
    if fraction is None:
        return "-"
    percent = 100 * fraction
    return f"{percent:.0f}%" if percent >= 10 else f"{percent:.2g}%"


def _optional(value, spec):
    return "n/a" if value is None else format(value, spec)


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _utc(timestamp):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
