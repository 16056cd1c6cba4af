"""Results of ``gradi bench`` as rows, a terminal table, JSON and CSV.

Throughput is reported two ways. Pair-updates per second = N^2 * niter / seconds (each iteration
visits every ordered pair (i, j) once). GFLOP/s counts ``5 * dim`` floating-point operations per
pair-update, the blog's loop algorithm with D^2 precomputed: for d = X_i - X_j, dim subtractions;
for |d|^2, dim multiplications and dim - 1 additions; one subtraction of D_ij^2; for
g_i += err * d, dim multiplications and dim additions. Per-point work (the factor 4, the step)
is O(N) and not counted. Backends that compute another way (the matrix forms of ``numpy`` and
``jax``) are credited with the same count: their GFLOP/s is the rate of the loop algorithm they
replace, a normalised throughput, not a hardware counter.
"""

import csv
import json
import math
import statistics
import time

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
    """One dict per measurement: the raw repeats plus everything derived from them."""
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
        }
        if m.status == "ok":
            row.update(_timings(m, ok))
        table.append(row)
    return table


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
              "x python", "x numpy-loops", "x numpy", "pair-upd/s", "GFLOP/s", "compile s", "lines"]
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
                     _optional(row["prepare_seconds"], ".3f"), _optional(row["source_lines"], "d")])
    aligned = _align([header] + body)
    lines = aligned[:1]
    for k, line in enumerate(aligned[1:]):
        if k and cases[k] != cases[k - 1]:
            lines.append("")  # a blank line between cases
        lines.append(line)
    if scaled:
        lines.append("* scaled: ran fewer iterations than niter (column 'iters run') and scaled the "
                     "time per iteration; speed-ups marked * involve a scaled time")
    lines.append(f"spread = half the range (max - min) of the repeats, relative to the median; "
                 f"GFLOP/s counts {FLOPS_FORMULA} flops per pair-update; "
                 f"lines = non-blank, non-comment source lines")
    lines += [f"{row['status']}: {row['backend']} N={row['n']} dim={row['dim']}: {row['reason']}"
              for row in table if row["status"] != "ok"]
    return "\n".join(lines)


def headlines(table):
    """At the largest N of each dim: the fastest backend and its speed-ups over the baselines."""
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
    return lines


def write_results(out_dir, sweep, table, text, command):
    """Write table.txt, bench.json (with the machine description) and bench.csv; returns their paths."""
    paths = [out_dir / "table.txt", out_dir / "bench.json", out_dir / "bench.csv"]
    paths[0].write_text(text + "\n")
    write_json(paths[1], sweep, table, describe(), command)
    write_csv(paths[2], table)
    return paths


def write_json(path, sweep, table, machine, command):
    """Write every measurement and its context as JSON.

    Fields: ``format`` ("gradi-bench/1"); ``created`` and ``finished`` (UTC, ISO 8601);
    ``command`` (argv); ``interrupted`` (true if Ctrl-C stopped the sweep: ``results`` then
    holds what finished); ``settings`` (backends, sizes, dims, niter, threads (null = all cores
    for parallel backends), dtype, repeats, budget (seconds per timed run), seed,
    check_iterations); ``machine`` (cpu, cores, usable_cores, memory_bytes, load_average (1, 5,
    15 min, when the sweep ended), os, machine, python, packages {name: version}, compiler,
    mojo, gradi, git_commit; see gradi.bench.machine);
    ``flops_per_pair_update`` (formula and meaning); ``results``: one object per backend and
    case with backend, language, tier, parallel, n, dim, dtype, threads, niter, lr, status
    ("ok", "excluded" = disagreed with the reference or diverged, "skipped" = cannot run or over
    budget, "failed" = raised), reason, iterations_run, scaled, repeat_seconds (every timed run of
    iterations_run iterations), seconds_median/min/max (of those), seconds (median scaled to
    niter), seconds_per_iteration, speedup_vs_python / _numpy_loops / _numpy (baseline seconds /
    these seconds, same case), pair_updates_per_second, gflops, prepare_seconds (first
    compile/warm-up), check_iterations, check_error and check_tolerance (relative to the largest
    distance), source_lines. Unmeasured or unknown values are null.
    """
    document = {
        "format": "gradi-bench/1",
        "created": _utc(sweep.started),
        "finished": _utc(sweep.finished or time.time()),
        "command": list(command),
        "interrupted": sweep.interrupted,
        "settings": {**vars(sweep.settings), "backends": list(sweep.settings.backends),
                     "sizes": list(sweep.settings.sizes), "dims": list(sweep.settings.dims)},
        "machine": machine,
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


def _optional(value, spec):
    return "n/a" if value is None else format(value, spec)


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _align(rows):
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return ["  ".join(cell.rjust(width) if k else cell.ljust(width)
                      for k, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in rows]


def _utc(timestamp):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
