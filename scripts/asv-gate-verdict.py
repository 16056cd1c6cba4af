"""The gate's verdict: compare BASE and HEAD in one asv results folder and say what happened.

Usage (scripts/asv-gate.sh runs it; any Python that has asv 0.6):
  python scripts/asv-gate-verdict.py RESULTS_DIR MACHINE BASE_HASH HEAD_HASH WALL_FACTOR COUNT_FACTOR COUNT_REGEX

RESULTS_DIR holds only what this gate run measured (the gate gives asv a fresh one), so the
table shows nothing left over from earlier runs. A row whose name (``name(params)``, as asv's
``--bench`` sees it) matches COUNT_REGEX is a deterministic count and fails above COUNT_FACTOR;
every other row is wall time and fails above WALL_FACTOR. Prints a markdown table and a
one-line summary; exits 0 (no regression), 1 (a regression, named) or 2 (something failed to
run: a commit that did not build or run, or a benchmark that failed on HEAD; not a regression).
"""

import itertools
import json
import math
import os
import re
import sys

from asv.results import Results
from asv.util import human_value


def load(results_dir, machine, commit):
    """{label: value} of every result of ``commit`` (None: failed, NaN: skipped); None if no file."""
    folder = os.path.join(results_dir, machine)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    found = [Results.load(os.path.join(folder, name), machine_name=machine)
             for name in names if name.endswith(".json") and name != "machine.json"]
    found = [results for results in found if results.commit_hash == commit]
    if not found:
        return None
    values = {}
    for results in found:
        for key in results.get_all_result_keys():
            params = results.get_result_params(key)
            value = results.get_result_value(key, params)
            combos = [f"{key}({', '.join(combo)})" for combo in itertools.product(*params)] if params else [key]
            for label, item in zip(combos, value if params else [value]):
                values[label] = item
    return values


def units(results_dir):
    """{benchmark name: unit} from the benchmarks.json asv wrote beside the results."""
    try:
        with open(os.path.join(results_dir, "benchmarks.json")) as listing:
            return {name: info.get("unit", "") for name, info in json.load(listing).items()
                    if isinstance(info, dict)}
    except (OSError, ValueError):
        return {}


def measured(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def verdict(base, head, wall_factor, count_factor, count_regex):
    """Rows (label, base, head, ratio, limit, outcome) for every label this run measured."""
    rows = []
    for label in sorted(set(base) | set(head)):
        before, after = base.get(label, float("nan")), head.get(label, float("nan"))
        limit = count_factor if count_regex and re.search(count_regex, label) else wall_factor
        if after is None:
            outcome, ratio = "failed on HEAD", None
        elif not measured(after):
            if not measured(before):
                continue  # skipped (or failed) on both: nothing was measured
            outcome, ratio = "skipped on HEAD", None
        elif not measured(before):
            outcome, ratio = ("failed on BASE" if before is None else "new on HEAD"), None
        else:
            ratio = after / before if before else math.inf
            outcome = "REGRESSION" if ratio > limit else ("faster" if ratio < 1 / limit else "same")
        rows.append((label, before, after, ratio, limit, outcome))
    return rows


def table(rows, unit_of):
    """The rows as a markdown table (readable in a terminal and in a job summary)."""
    def show(label, value):
        unit = unit_of.get(label.split("(")[0], "")
        return "failed" if value is None else ("n/a" if not measured(value) else human_value(value, unit))

    order = {"REGRESSION": 0, "failed on HEAD": 1, "skipped on HEAD": 2, "failed on BASE": 3,
             "new on HEAD": 4, "faster": 5, "same": 6}
    lines = ["| benchmark | BASE | HEAD | HEAD/BASE | fails above | outcome |", "|---|---|---|---|---|---|"]
    for label, before, after, ratio, limit, outcome in sorted(rows, key=lambda row: (order[row[5]], row[0])):
        shown = "" if ratio is None else f"{ratio:.3f}"
        lines.append(f"| `{label}` | {show(label, before)} | {show(label, after)} | {shown} | "
                     f"{limit:g}x | {outcome} |")
    return "\n".join(lines)


def decide(base, head, rows, base_hash, head_hash, wall_factor, count_factor, count_regex):
    """(exit status, one-line summary)."""
    missing = [f"{name} {commit[:8]}" for name, commit, values in
               (("BASE", base_hash, base), ("HEAD", head_hash, head))
               if not values or all(value is None for value in values.values())]
    if missing:
        return 2, (f"Failed to run: no results for {' and '.join(missing)} (it did not build or "
                   f"its benchmarks could not start; see the log). Not a regression.")
    failed = [row[0] for row in rows if row[5] == "failed on HEAD"]
    regressed = [f"{row[0]} ({row[3]:.3f}x)" for row in rows if row[5] == "REGRESSION"]
    if failed:
        also = f" Also slower: {', '.join(regressed)}." if regressed else ""
        return 2, f"Failed to run on HEAD (not a regression): {', '.join(failed)}.{also}"
    if regressed:
        return 1, (f"Regression (counts above {count_factor:g}x, wall time above {wall_factor:g}x): "
                   f"{', '.join(regressed)}.")
    if count_regex and not any(re.search(count_regex, row[0]) and row[3] is not None for row in rows):
        return 2, (f"Failed to run: no deterministic count was compared (the counted tracks skip "
                   f"without valgrind: apt-get install valgrind; ASV_GATE_COUNT_BENCH= gates wall "
                   f"time only).")
    compared = sum(row[3] is not None for row in rows)
    return 0, (f"No regression: {compared} benchmarks compared, none above its limit "
               f"(counts {count_factor:g}x, wall time {wall_factor:g}x).")


def main(argv):
    results_dir, machine, base_hash, head_hash, wall, count, count_regex = argv
    wall_factor, count_factor = float(wall), float(count)
    base, head = load(results_dir, machine, base_hash), load(results_dir, machine, head_hash)
    rows = verdict(base or {}, head or {}, wall_factor, count_factor, count_regex)
    status, summary = decide(base, head, rows, base_hash, head_hash, wall_factor, count_factor,
                             count_regex)
    print(table(rows, units(results_dir)))
    print()
    print(summary)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
