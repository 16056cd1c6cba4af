#!/usr/bin/env python3
"""Choose the commits a benchmark run measures, before asv is started, so that a run with nothing
new to measure can say so and succeed (``asv run NEW`` exits 1 with "No commit hashes selected").

    python scripts/ci-select-commits.py RANGE MACHINE STEPS [--remeasure]

RANGE is what ``asv run`` takes: NEW (the commits of asv.conf.json's branches after the newest
one that has results for MACHINE), ALL, HASHFILE:path, or a git range (main~5..main, HEAD^!).
Commits that already have results for MACHINE are left out unless --remeasure; at most STEPS
commits are kept, evenly spread and newest first (asv's own --steps choice). Prints the chosen
full hashes, one a line (nothing when nothing is new); says what it did on stderr. Run from the
repository root with the Python that has asv.
"""

import argparse
import sys

from asv import results, util
from asv.config import Config
from asv.repo import get_repo


def measured(conf, machine):
    """Full hashes of the commits that have results for this machine."""
    try:
        return {r.commit_hash for r in results.iter_results_for_machine(conf.results_dir, machine)}
    except OSError:
        return set()


def commits_in(repo, conf, spec, done):
    """The commits RANGE names, newest first."""
    if spec == "NEW":
        return repo.get_new_branch_commits(conf.branches, done)
    if spec == "ALL":
        return repo.get_new_branch_commits(conf.branches, [])
    if spec.startswith("HASHFILE:"):
        with open(spec[len("HASHFILE:"):]) as names:
            return [repo.get_hash_from_name(name.strip()) for name in names if name.strip()]
    return repo.get_hashes_from_range(spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("range")
    parser.add_argument("machine")
    parser.add_argument("steps", type=int)
    parser.add_argument("--remeasure", action="store_true",
                        help="keep commits that already have results (asv --append-samples)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"STEPS must be at least 1, not {args.steps}")
    conf = Config.load("asv.conf.json")
    repo = get_repo(conf)
    done = measured(conf, args.machine)
    try:
        commits = commits_in(repo, conf, args.range, done)
    except (util.ProcessError, OSError) as error:
        print(f"ci-select-commits: cannot read the range {args.range!r}: {error}", file=sys.stderr)
        return 2
    new = [c for c in commits if c not in done]
    todo = commits if args.remeasure else new
    chosen = util.pick_n(todo, args.steps) if todo else []
    where = (f"{len(commits)} commit(s) on {', '.join(conf.branches)} after the newest one measured"
             if args.range == "NEW" else
             f"{len(commits)} commit(s), {len(commits) - len(new)} of them already measured")
    print(f"ci-select-commits: {args.range}: {where} on {args.machine}; measuring {len(chosen)}",
          file=sys.stderr)
    for commit in chosen:
        print(commit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
