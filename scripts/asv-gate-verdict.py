"""The gate's verdict: compare BASE and HEAD in one asv results folder and say what happened.

Usage (scripts/asv-gate.sh runs it; any Python that has asv 0.6):
  python scripts/asv-gate-verdict.py RESULTS_DIR MACHINE BASE_HASH HEAD_HASH
      --wall-factor F --count-factor F --wall-regex R --count-regex R
      --base-suite BENCHMARKS_JSON --asv NAME=STATUS [--asv NAME=STATUS ...]

RESULTS_DIR holds only what this gate run measured (the gate gives asv a fresh one), with HEAD's
suite, whose listing asv wrote there as benchmarks.json; --base-suite is the benchmarks.json of
BASE's own suite. Rows are labelled ``name(params)``, as asv's ``--bench`` sees them. A row
matching --count-regex is a deterministic count and fails above --count-factor; every other row
is wall time and fails above --wall-factor. --asv gives each asv command's exit status.

Exit status (the last line printed says why):
  0  no regression;
  1  a regression: a row above its limit, or a row BASE measured that HEAD did not run (skipped
     or failed: a backend that no longer loads, a check that now fails). A row that HEAD's suite
     no longer has (a backend or parameter removed on purpose) is listed apart and does not fail;
  2  something failed to run, which is not a regression: asv itself failed, a commit did not
     build or start, a row HEAD failed that BASE did not measure either, or a backend whose wall
     time was compared had no count compared (with the counts gated, each such backend needs one).
"""

import argparse
import itertools
import json
import math
import os
import re
import sys

from asv.results import Results
from asv.util import human_value

# Outcomes, in the order the table lists them; LOST ones fail the gate with exit 1.
ORDER = ["REGRESSION", "failed on HEAD", "skipped on HEAD", "failed on HEAD only", "failed on BASE",
         "new on HEAD", "faster", "same"]
LOST = ("failed on HEAD", "skipped on HEAD")
BACKEND = re.compile(r"\('([^']*)'")  # a row's backend: its first parameter (benchmarks/README.md)


def labels(name, params):
    """asv's label of each parameter combination of a benchmark (just its name if unparametrized)."""
    if not params:
        return [name]
    return [f"{name}({', '.join(combo)})" for combo in itertools.product(*params)]


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
            values.update(zip(labels(key, params), value if params else [value]))
    return values


def suite(path):
    """{benchmark name: description} of the suite asv listed in ``path`` (a benchmarks.json)."""
    try:
        with open(path) as listing:
            return {name: info for name, info in json.load(listing).items() if isinstance(info, dict)}
    except (OSError, ValueError):
        return {}


def suite_labels(benchmarks, *regexes):
    """Every label of the suite that one of ``regexes`` selects (as asv's --bench would)."""
    every = (label for name, info in benchmarks.items() for label in labels(name, info.get("params")))
    return {label for label in every if any(regex and re.search(regex, label) for regex in regexes)}


def measured(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def verdict(base, head, wall_factor, count_factor, count_regex):
    """Rows (label, base, head, ratio, limit, outcome) for every label either commit ran."""
    rows = []
    for label in sorted(set(base) | set(head)):
        before, after = base.get(label, float("nan")), head.get(label, float("nan"))
        limit = count_factor if count_regex and re.search(count_regex, label) else wall_factor
        ratio = None
        if after is None:
            outcome = "failed on HEAD" if measured(before) else "failed on HEAD only"
        elif not measured(after):
            if not measured(before):
                continue  # skipped (or failed) on BASE and skipped on HEAD: nothing was measured
            outcome = "skipped on HEAD"
        elif not measured(before):
            outcome = "failed on BASE" if before is None else "new on HEAD"
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

    lines = ["| benchmark | BASE | HEAD | HEAD/BASE | fails above | outcome |", "|---|---|---|---|---|---|"]
    for label, before, after, ratio, limit, outcome in sorted(rows, key=lambda row: (ORDER.index(row[5]), row[0])):
        shown = "" if ratio is None else f"{ratio:.3f}"
        lines.append(f"| `{label}` | {show(label, before)} | {show(label, after)} | {shown} | "
                     f"{limit:g}x | {outcome} |")
    return "\n".join(lines)


def broken(values):
    """No results for a commit, or only failures: it did not build or could not start."""
    return not values or all(value is None for value in values.values())


def named(rows, *outcomes):
    return [row for row in rows if row[5] in outcomes]


def uncounted(rows, count_regex):
    """Backends whose wall time was compared but none of whose counts was."""
    compared = [row[0] for row in rows if row[3] is not None]

    def backends(counts):
        return {found.group(1) for label in compared
                if bool(re.search(count_regex, label)) == counts and (found := BACKEND.search(label))}

    return sorted(backends(False) - backends(True))


def asv_failures(statuses, base, head):
    """The asv commands whose exit status is not explained by the results (2: a benchmark failed)."""
    failed = any(value is None for values in (base, head) for value in (values or {}).values())
    return [f"{name} exited {status}" for name, status in statuses.items()
            if status != 0 and not (status == 2 and failed)]


def decide(base, head, rows, statuses, base_hash, head_hash, wall_factor, count_factor, count_regex):
    """(exit status, one-line summary)."""
    lost = [f"{row[0]} ({row[5]})" for row in named(rows, *LOST)]
    regressed = [f"{row[0]} ({row[3]:.3f}x)" for row in named(rows, "REGRESSION")]
    findings = "".join(f" {what}: {', '.join(items)}." for what, items in
                       (("Not run on HEAD", lost), ("Slower", regressed)) if items)
    failures = asv_failures(statuses, base, head)
    if failures:
        return 2, f"Failed to run: asv {'; '.join(failures)} (see the log above the table).{findings}"
    missing = [f"{name} {commit[:8]}" for name, commit, values in
               (("BASE", base_hash, base), ("HEAD", head_hash, head)) if broken(values)]
    if missing:
        return 2, (f"Failed to run: no results for {' and '.join(missing)} (it did not build or "
                   f"its benchmarks could not start; see the log). Not a regression.")
    if lost or regressed:
        return 1, (f"Regression (counts above {count_factor:g}x, wall time above {wall_factor:g}x, or "
                   f"a benchmark BASE measured that HEAD did not run):{findings}")
    only = [row[0] for row in named(rows, "failed on HEAD only")]
    if only:
        return 2, f"Failed on HEAD (BASE did not measure them either; not a regression): {', '.join(only)}."
    if count_regex:
        if not any(row[3] is not None and re.search(count_regex, row[0]) for row in rows):
            return 2, ("Failed to run: no deterministic count was compared (the counted tracks skip "
                       "without valgrind: apt-get install valgrind; ASV_GATE_COUNT_BENCH= gates wall "
                       "time only).")
        if gaps := uncounted(rows, count_regex):
            return 2, (f"Failed to run: wall time compared but no count for {', '.join(gaps)} (counted "
                       f"on neither commit; see the log for the skip reason).")
    compared = [row for row in rows if row[3] is not None]
    counts = sum(bool(count_regex and re.search(count_regex, row[0])) for row in compared)
    return 0, (f"No regression: {len(compared)} benchmarks compared ({counts} counts, "
               f"{len(compared) - counts} wall times), none above its limit (counts {count_factor:g}x, "
               f"wall time {wall_factor:g}x).")


def removed(base_suite, head_suite, wall_regex, count_regex):
    """Gated labels of BASE's suite that HEAD's suite no longer has (removed on purpose)."""
    return sorted(suite_labels(base_suite, wall_regex, count_regex)
                  - suite_labels(head_suite, wall_regex, count_regex))


def status_pair(text):
    name, _, status = text.rpartition("=")
    if not name or not re.fullmatch(r"-?\d+", status):
        raise argparse.ArgumentTypeError(f"expected NAME=STATUS, not {text!r}")
    return name, int(status)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir")
    parser.add_argument("machine")
    parser.add_argument("base_hash")
    parser.add_argument("head_hash")
    parser.add_argument("--wall-factor", type=float, required=True)
    parser.add_argument("--count-factor", type=float, required=True)
    parser.add_argument("--wall-regex", required=True)
    parser.add_argument("--count-regex", default="")
    parser.add_argument("--base-suite", required=True, help="benchmarks.json of BASE's own suite")
    parser.add_argument("--asv", type=status_pair, action="append", default=[], metavar="NAME=STATUS",
                        help="an asv command of this gate run and its exit status")
    return parser.parse_args(argv)


def main(argv):
    args = parse(argv)
    base, head = (load(args.results_dir, args.machine, commit) for commit in (args.base_hash, args.head_hash))
    rows = verdict(base or {}, head or {}, args.wall_factor, args.count_factor, args.count_regex)
    if broken(base) or broken(head):  # asv records every benchmark as failed: keep what was measured
        rows = [row for row in rows if measured(row[1]) or measured(row[2])]
    status, summary = decide(base, head, rows, dict(args.asv), args.base_hash, args.head_hash,
                             args.wall_factor, args.count_factor, args.count_regex)
    head_suite = suite(os.path.join(args.results_dir, "benchmarks.json"))
    base_suite = suite(args.base_suite)
    print(table(rows, {name: info.get("unit", "") for name, info in head_suite.items()}))
    print()
    gone = removed(base_suite, head_suite, args.wall_regex, args.count_regex) if head_suite else []
    if gone:
        print(f"Not in HEAD's suite (removed on purpose, not compared): {', '.join(gone)}.")
        print()
    print(summary)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
